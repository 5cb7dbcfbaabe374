package config

import (
	"testing"
	"time"
)

// Where a run's page in Port is: port.appURL, else the app beside the API's region.
func TestPortAppURL(t *testing.T) {
	for _, c := range []struct{ base, app, want string }{
		{"https://api.getport.io", "", "https://app.getport.io"},
		{"https://api.getport.io/", "", "https://app.getport.io"},
		{"https://api.us.getport.io", "", "https://app.us.getport.io"},
		{"https://api.getport.io", "https://port.example.com/", "https://port.example.com"},
		{"http://127.0.0.1:8080", "", ""},       // an emulator: nothing to link to
		{"https://port-proxy.internal", "", ""}, // a proxy: say it with port.appURL
		{"https://apiary.example.com", "", ""},  // not an api. host
		{"::not a url", "", ""},
	} {
		if got := (Port{BaseURL: c.base, AppURL: c.app}).PortAppURL(); got != c.want {
			t.Errorf("baseURL %q appURL %q: PortAppURL() = %q, want %q", c.base, c.app, got, c.want)
		}
	}
}

func TestValidateAppURL(t *testing.T) {
	for _, c := range []struct {
		app string
		ok  bool
	}{{"", true}, {"https://app.getport.io", true}, {"app.getport.io", false}, {"ftp://x", false}} {
		var problems []error
		validatePort(Port{BaseURL: "https://api.getport.io", ClientID: "id", ClientSecret: "s", AppURL: c.app, RunStatusInterval: Duration(30 * time.Second)}, func(err error) { problems = append(problems, err) })
		if ok := len(problems) == 0; ok != c.ok {
			t.Errorf("port.appURL %q: problems %v, want ok=%v", c.app, problems, c.ok)
		}
	}
}
