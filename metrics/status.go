package metrics

import (
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Status is /status's JSON.
type Status struct {
	Ready         bool   `json:"ready"`
	NotReady      string `json:"notReady,omitempty"` // why not
	SlotsBusy     int    `json:"slotsBusy"`
	SlotsCapacity int    `json:"slotsCapacity"`
	Runs          []Run  `json:"runs"`
	// Isolation is how this replica confines its commands.
	Isolation *Isolation `json:"isolation,omitempty"`
}

func (m *Metrics) status(ready func() error) Status {
	st := Status{Runs: []Run{}}
	if err := ready(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
	if s := m.currentSource(); s != nil {
		snap := s.Snapshot()
		st.SlotsBusy, st.SlotsCapacity = snap.SlotsBusy, snap.SlotsCapacity
		st.Runs = append(st.Runs, snap.Runs...)
		st.Isolation = snap.Isolation
	}
	sort.Slice(st.Runs, func(i, j int) bool { return st.Runs[i].Received.Before(st.Runs[j].Received) })
	return st
}

// serveStatus answers JSON, or HTML for a browser (Accept: text/html, or ?format=html).
func (m *Metrics) serveStatus(w http.ResponseWriter, r *http.Request, ready func() error) {
	st := m.status(ready)
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "html" ||
		(r.URL.Query().Get("format") == "" && strings.Contains(r.Header.Get("Accept"), "text/html")) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// html/template escapes every value: run ids and log lines come from untrusted input.
		_ = statusPage.Execute(w, struct {
			Status
			Now time.Time
		}{st, time.Now()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"age": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return now.Sub(t).Round(time.Second).String()
	},
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>port-runner status</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}pre{margin:0;font-size:.85em;white-space:pre-wrap}</style>
</head><body>
<h1>port-runner</h1>
<p>{{if .Ready}}Ready{{else}}Not ready: {{.NotReady}}{{end}} &middot; slots {{.SlotsBusy}}/{{.SlotsCapacity}} busy &middot; {{len .Runs}} run(s) held &middot; <a href="?format=json">JSON</a></p>
{{with .Isolation}}<p>Isolation (sandbox {{.Sandbox}}, {{.Shim}} shim{{if .LandlockABI}}, Landlock ABI {{.LandlockABI}}{{end}}): {{range $i, $p := .Protections}}{{if $i}}, {{end}}{{$p}}{{else}}none{{end}}{{if .Missing}}; not in force: {{range $i, $p := .Missing}}{{if $i}}, {{end}}{{$p}}{{end}}{{end}}</p>{{end}}
<table><tr><th>run</th><th>action</th><th>state</th><th>waiting / running for</th><th>pid</th><th>message</th><th>last lines</th></tr>
{{range .Runs}}<tr><td>{{.RunID}}</td><td>{{.Action}}</td><td>{{.State}}</td>
<td>{{if .Started.IsZero}}{{age $.Now .Received}}{{else}}{{age $.Now .Started}}{{end}}</td>
<td>{{if .PID}}{{.PID}}{{end}}</td><td>{{.Topic}}/{{.Partition}}@{{.Offset}}</td>
<td><pre>{{range .LastLines}}{{.}}
{{end}}</pre></td></tr>
{{else}}<tr><td colspan="7">No runs.</td></tr>{{end}}
</table></body></html>
`))
