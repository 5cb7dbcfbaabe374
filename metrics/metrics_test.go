package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
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
	m.ObserveLags(map[int32]int64{2: 5})
	m.ObserveLags(map[int32]int64{3: 17}) // partition 2 went elsewhere
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`port_runner_runs_total{action="create_microservice",result="success"} 1`,
		`port_runner_port_requests_total{code="429",endpoint="run_logs"} 1`,
		`port_runner_consumer_lag{partition="3"} 17`,
		`port_runner_messages_total{outcome="bad_signature"} 0`,
		"port_runner_runs_in_flight 0", "port_runner_log_bytes_dropped_total 0", "go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, `port_runner_consumer_lag{partition="2"}`) {
		t.Error("/metrics still shows the lag of a partition no longer owned")
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("server stop: %v", err)
	}
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
