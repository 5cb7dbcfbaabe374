package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServe(t *testing.T) {
	m := New()
	var ready atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	addr, wait, err := m.Serve(ctx, "127.0.0.1:0", func() error {
		if !ready.Load() {
			return errors.New("consumer group not joined")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "not joined") {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	ready.Store(true)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
	m.RunsTotal.WithLabelValues("create_microservice", "success").Inc()
	m.ObservePortRequest("run_logs", 429)
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`port_runner_runs_total{action="create_microservice",result="success"} 1`,
		`port_runner_port_requests_total{code="429",endpoint="run_logs"} 1`,
		`port_runner_messages_total{outcome="bad_signature"} 0`,
		"port_runner_runs_in_flight 0", "port_runner_log_bytes_dropped_total 0", "go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("server stop: %v", err)
	}
}

type fakeSource struct {
	snap  Snapshot
	ready error
}

func (f *fakeSource) Snapshot() Snapshot { return f.snap }
func (f *fakeSource) Ready() error       { return f.ready }

// The saturation metrics and /status come from the attached Source; detaching removes
// them, and a second source replaces the first instead of doubling its series.
func TestSourceMetricsAndStatus(t *testing.T) {
	m := New()
	m.SetVersion("v9.9.9")
	now := time.Now()
	src := &fakeSource{snap: Snapshot{SlotsBusy: 2, SlotsCapacity: 8, Actions: []string{"deploy", "create"},
		Runs: []Run{
			{RunID: "r_1", Action: "create", State: StateRunning, Received: now.Add(-time.Minute), Started: now, PID: 42,
				LastLines: []string{"<script>alert(1)</script>"}},
			{RunID: "r_2", Action: "create", State: StateWaiting, Received: now.Add(-30 * time.Second)},
			{RunID: "r_3", Action: "deploy", State: StateClosing, Received: now.Add(-time.Hour), Ended: now.Add(-20 * time.Second)},
		},
		Isolation: &Isolation{Sandbox: "auto", Protections: []string{"filesystem", "signals"}, Missing: []string{"run_uid"}, LandlockABI: 7, Shim: "C"}}}
	other := &fakeSource{snap: Snapshot{SlotsCapacity: 1}}
	detachOther := m.SetSource(other)
	detach := m.SetSource(src)
	detachOther() // no longer the attached one: must not remove src
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, wait, err := m.Serve(ctx, "127.0.0.1:0", src.Ready)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`port_runner_executor_slots{state="busy"} 2`, `port_runner_executor_slots{state="free"} 6`,
		`port_runner_executor_capacity 8`,
		`port_runner_runs_waiting{action="create"} 1`, `port_runner_runs_waiting{action="deploy"} 0`,
		`port_runner_ready 1`,
		`port_runner_build_info{commit="`, `version="v9.9.9"`, `goversion="go`,
		`port_runner_isolation_protection{protection="filesystem"} 1`, `port_runner_isolation_protection{protection="signals"} 1`,
		`port_runner_isolation_protection{protection="run_uid"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := strings.Count(body, "\nport_runner_executor_capacity "); n != 1 {
		t.Errorf("executor_capacity exported %d times", n)
	}
	if !strings.Contains(body, "port_runner_runs_closing_oldest_seconds 2") { // about 20s
		t.Errorf("runs_closing_oldest_seconds is not about 20s:\n%s", grepLines(body, "closing"))
	}
	if !strings.Contains(body, "port_runner_runs_waiting_oldest_seconds 3") { // about 30s
		t.Errorf("runs_waiting_oldest_seconds is not about 30s:\n%s", grepLines(body, "oldest"))
	}

	_, js := get(t, base+"/status")
	var st Status
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("/status JSON: %v\n%s", err, js)
	}
	if !st.Ready || st.SlotsBusy != 2 || len(st.Runs) != 3 || st.Runs[0].RunID != "r_3" || st.Runs[1].PID != 42 ||
		st.Runs[2].State != StateWaiting {
		t.Errorf("/status = %+v", st)
	}
	if iso := st.Isolation; iso == nil || iso.Sandbox != "auto" || strings.Join(iso.Protections, ",") != "filesystem,signals" ||
		strings.Join(iso.Missing, ",") != "run_uid" || iso.LandlockABI != 7 || iso.Shim != "C" {
		t.Errorf("/status isolation = %+v", st.Isolation)
	}
	req, _ := http.NewRequest("GET", base+"/status", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), "r_2") ||
		strings.Contains(string(page), "<script>alert") || !strings.Contains(string(page), "&lt;script&gt;") {
		t.Errorf("HTML status page does not show the runs escaped:\n%s", page)
	}

	src.ready = errors.New("consumer group not joined")
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "port_runner_ready 0") {
		t.Error("ready stays 1 when not ready")
	}
	detach()
	if _, body := get(t, base+"/metrics"); strings.Contains(body, "port_runner_executor_slots") {
		t.Error("a detached source still shows")
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func grepLines(body, word string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// net/http/pprof is served only when asked for (metrics.pprof), never by default.
func TestPprofOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		m := New()
		m.Pprof = on
		ctx, cancel := context.WithCancel(context.Background())
		addr, wait, err := m.Serve(ctx, "127.0.0.1:0", func() error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		code, body := get(t, "http://"+addr+"/debug/pprof/cmdline")
		if on && (code != 200 || !strings.Contains(body, "metrics.test")) {
			t.Errorf("pprof on: /debug/pprof/cmdline = %d %q", code, body)
		}
		if !on && code != 404 {
			t.Errorf("pprof off: /debug/pprof/cmdline = %d, want 404", code)
		}
		if code, _ := get(t, "http://"+addr+"/debug/pprof/goroutine?debug=1"); on != (code == 200) {
			t.Errorf("pprof %v: /debug/pprof/goroutine = %d", on, code)
		}
		cancel()
		if err := wait(); err != nil {
			t.Error(err)
		}
	}
}
