package portapi

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// A caller's client with a cookie jar: net/http adds the jar's cookies to the request's own
// headers, so those must be the request's, not the shared ones; every request carries the
// cookie once, and the shared headers stay as they were.
func TestCookieJarLeavesSharedHeadersAlone(t *testing.T) {
	f := newFakePort(t)
	var mu sync.Mutex
	var cookies []string
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		cookies = append(cookies, strings.Join(r.Header.Values("Cookie"), " | "))
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "lb", Value: "a", Path: "/"})
		w.WriteHeader(http.StatusOK)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newTestClient(t, f, func(o *Options) { o.HTTPClient = &http.Client{Jar: jar, Timeout: 5 * time.Second} })
	for range 3 {
		if _, err := c.CloseRun(context.Background(), "r_1", Closing{Message: "m", TerminationStatus: StatusSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"", "lb=a", "lb=a"}; !reflect.DeepEqual(cookies, want) {
		t.Errorf("Port got the cookies %q, want %q", cookies, want)
	}
	want := http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer tok1"},
		"Content-Type": {"application/json"}, "User-Agent": {"port-runner"}}
	if h := c.shared.forJSON("tok1"); !reflect.DeepEqual(h, want) {
		t.Errorf("the shared headers became %v, want %v", h, want)
	}
}
