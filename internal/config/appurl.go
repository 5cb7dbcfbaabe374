package config

import (
	"net/url"
	"strings"
)

// PortAppURL is the address of Port's web app, where each run has its page (README
// "Observability"): port.appURL, else the app beside port.baseURL's API
// (https://api.getport.io -> https://app.getport.io, https://api.us.getport.io ->
// https://app.us.getport.io); "" when neither says (an emulator, a proxy in front of the
// API), and /status then links nothing.
func (p Port) PortAppURL() string {
	if p.AppURL != "" {
		return strings.TrimSuffix(p.AppURL, "/")
	}
	u, err := url.Parse(p.BaseURL)
	if err != nil || u.Scheme != "https" {
		return ""
	}
	rest, ok := strings.CutPrefix(u.Host, "api.")
	if !ok {
		return ""
	}
	return "https://app." + rest
}

// ShownURL is a URL as problems and checks print it: its password, if any (a gateway in
// front of Port's API, https://user:password@host), is xxxxx. In one that does not parse
// (a password with a slash), all between the scheme and the last @ is.
func ShownURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	scheme, _, ok := strings.Cut(raw[:at], "://")
	if !ok {
		return "xxxxx" + raw[at:]
	}
	return scheme + "://xxxxx" + raw[at:]
}
