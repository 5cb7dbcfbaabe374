package metrics

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// statusPage is /status for a browser: which replica, its runs, the runs it finished.
// Element ids (replica, version, partitions, runs, finished) and the port-run class are
// what a reader's tools (and the browser test) find things by.
var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"age": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return now.Sub(t).Round(time.Second).String()
	},
	// class is an outcome's CSS class: OutcomeNotClosed reads "not-closed".
	"class": func(outcome string) string { return strings.ReplaceAll(outcome, " ", "-") },
	"join": func(ps []int32) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = fmt.Sprint(p)
		}
		return strings.Join(s, ", ")
	},
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>port-runner {{.Replica.Name}}</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}pre{margin:0;font-size:.85em;white-space:pre-wrap}.failure,.not-closed{color:#b00}</style>
</head><body>
<h1>port-runner <span id="replica">{{.Replica.Name}}</span></h1>
<p>version <span id="version">{{.Replica.Version}}</span> &middot; topic {{.Replica.Topic}}, partitions <span id="partitions">{{join .Replica.Partitions}}</span>{{if not .Replica.Partitions}}none (a standby){{end}} &middot; leases {{len .Replica.Leases}}</p>
<p>{{if .Ready}}Ready{{else}}Not ready: {{.NotReady}}{{end}} &middot; slots {{.SlotsBusy}}/{{.SlotsCapacity}} busy &middot; {{len .Runs}} run(s) held &middot; <a href="?format=json">JSON</a></p>
{{with .Isolation}}<p>Isolation (sandbox {{.Sandbox}}, {{.Shim}} shim{{if .LandlockABI}}, Landlock ABI {{.LandlockABI}}{{end}}): {{range $i, $p := .Protections}}{{if $i}}, {{end}}{{$p}}{{else}}none{{end}}{{if .Missing}}; not in force: {{range $i, $p := .Missing}}{{if $i}}, {{end}}{{$p}}{{end}}{{end}}</p>{{end}}
<h2>Runs held</h2>
<table id="runs"><tr><th>run</th><th>action</th><th>state</th><th>waiting / running for</th><th>pid</th><th>message</th><th>last lines</th></tr>
{{range .Runs}}<tr><td>{{.RunID}}</td><td>{{.Action}}</td><td>{{.State}}{{with .Outcome}} ({{.}}){{end}}</td>
<td>{{if .Started.IsZero}}{{age $.Now .Received}}{{else}}{{age $.Now .Started}}{{end}}</td>
<td>{{if .PID}}{{.PID}}{{end}}</td><td>{{.Topic}}/{{.Partition}}@{{.Offset}}</td>
<td><pre>{{range .LastLines}}{{.}}
{{end}}</pre></td></tr>
{{else}}<tr><td colspan="7">No runs.</td></tr>{{end}}
</table>
<h2>Finished here</h2>
<table id="finished"><tr><th>run</th><th>action</th><th>outcome</th><th>label</th><th>ended</th></tr>
{{range .Finished}}<tr><td>{{if .PortURL}}<a class="port-run" href="{{.PortURL}}">{{.RunID}}</a>{{else}}{{.RunID}}{{end}}</td><td>{{.Action}}</td>
<td class="{{class .Outcome}}">{{.Outcome}}</td><td>{{.Label}}</td><td>{{age $.Now .Ended}} ago</td></tr>
{{else}}<tr><td colspan="5">None yet.</td></tr>{{end}}
</table></body></html>
`))
