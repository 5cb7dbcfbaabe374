package reporter

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
)

const (
	clientID     = "reporter-test-client"
	clientSecret = "reporter-test-secret-0123456789"
)

// waitLimit bounds every wait on a condition and every closing: only a run that never ends
// reaches it. TestNoRequestOverOneMiB closes 7 MB of log in 1.5 s with -race on a quiet
// machine and took over 10 s at a load average of 14.
const waitLimit = 60 * time.Second

type env struct {
	e   *emulator.Emulator
	api *portapi.Client
}

// newEnv starts the Port API emulator on loopback and a real portapi client for it.
func newEnv(t *testing.T, mod func(*portapi.Options)) *env {
	t.Helper()
	return newEnvOf(t, emulator.Options{}, mod)
}

// newEnvOf is newEnv with the emulator's options (its credentials are the suite's).
func newEnvOf(t *testing.T, eo emulator.Options, mod func(*portapi.Options)) *env {
	t.Helper()
	eo.ClientID, eo.ClientSecret, eo.OrgID = clientID, clientSecret, "org_test"
	e := emulator.New(eo)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	base := srv.URL
	opts := portapi.Options{BaseURL: base, ClientID: clientID, ClientSecret: clientSecret, RequestsPerSecond: 1000}
	if mod != nil {
		mod(&opts)
	}
	api, err := portapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{e: e, api: api}
}

func (v *env) run(id string) string {
	v.e.RegisterRun(id, "create_microservice")
	return id
}

// runRequests are the requests that reached the emulator for one run.
func (v *env) runRequests(id string) []emulator.Request {
	var out []emulator.Request
	for _, r := range v.e.Requests() {
		if strings.HasPrefix(r.Path, "/v1/actions/runs/"+id) {
			out = append(out, r)
		}
	}
	return out
}

func (v *env) logPosts(id string) []emulator.Request {
	var out []emulator.Request
	for _, r := range v.runRequests(id) {
		if r.Method == "POST" && r.Path == "/v1/actions/runs/"+id+"/logs" {
			out = append(out, r)
		}
	}
	return out
}

func (v *env) state(t *testing.T, id string) emulator.RunState {
	t.Helper()
	s, ok := v.e.Run(id)
	if !ok {
		t.Fatalf("run %s unknown to the emulator", id)
	}
	return s
}

func (v *env) waitRun(t *testing.T, id string, what string, cond func(emulator.RunState) bool) emulator.RunState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	s, err := v.e.WaitRun(ctx, id, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v (logs %q)", what, err, s.Logs)
	}
	return s
}

// logLines is the run's log in Port as lines, across every accepted log request.
func logLines(s emulator.RunState) []string {
	var out []string
	for _, l := range s.Logs {
		out = append(out, strings.Split(l.Message, "\n")...)
	}
	return out
}

func closeRun(t *testing.T, rl *RunLog, o Outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := rl.Close(ctx, o); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func write(t *testing.T, rl *RunLog, s string) {
	t.Helper()
	n, err := rl.Write([]byte(s))
	if err != nil || n != len(s) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(s))
	}
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("line %d of %d = %.200q, want %.200q", i, len(got), got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
}

// head is at most the first n of lines.
func head(lines []string, n int) []string { return lines[:min(n, len(lines))] }

// checkClosedOnce asserts the run has exactly one termination and every log request fit.
func checkClosedOnce(t *testing.T, v *env, id, status, label string) emulator.RunState {
	t.Helper()
	s := v.state(t, id)
	if s.Terminations != 1 || s.RejectedTerminations != 0 {
		t.Fatalf("terminations %d, rejected %d; want 1, 0", s.Terminations, s.RejectedTerminations)
	}
	if s.Status != status || s.StatusLabel != label {
		t.Fatalf("status %q label %q; want %q %q", s.Status, s.StatusLabel, status, label)
	}
	last := s.Logs[len(s.Logs)-1]
	if last.TerminationStatus != status {
		t.Fatalf("the last log entry has terminationStatus %q, want %q", last.TerminationStatus, status)
	}
	for i, l := range s.Logs[:len(s.Logs)-1] {
		if l.TerminationStatus != "" {
			t.Fatalf("log entry %d of %d terminates the run", i, len(s.Logs))
		}
	}
	for _, r := range v.runRequests(id) {
		if len(r.Body) > 1<<20 || r.Status == 413 {
			t.Fatalf("%s %s: body of %d bytes, answered %d", r.Method, r.Path, len(r.Body), r.Status)
		}
	}
	return s
}

type nopAPI struct{}

func (nopAPI) AppendLog(context.Context, string, string) error { return nil }

func (nopAPI) CloseRun(context.Context, string, portapi.Closing) (bool, error) {
	return false, nil
}

func (nopAPI) PatchRun(context.Context, string, portapi.RunPatch) error { return nil }

func (nopAPI) AppendLogFrom(_ context.Context, _ string, _ <-chan struct{}, take func() (string, bool)) (bool, error) {
	return sendTaken(take, func(string) error { return nil })
}

func (nopAPI) PatchRunFrom(_ context.Context, _ string, _ <-chan struct{}, take func() (portapi.RunPatch, bool)) (bool, error) {
	return sendTaken(take, func(portapi.RunPatch) error { return nil })
}

// BenchmarkRunLogWrite measures lines per second through Write (splitting, masking,
// batching) with a Port that answers at once; writes come in pipe-sized chunks.
func BenchmarkRunLogWrite(b *testing.B) {
	for _, masks := range []int{0, 5} {
		b.Run(fmt.Sprintf("masks=%d", masks), func(b *testing.B) {
			var secrets []string
			for i := range masks {
				secrets = append(secrets, fmt.Sprintf("secret-value-%d-abcdef", i))
			}
			rep := New(nopAPI{}, Options{MaxBytesPerRun: math.MaxInt})
			rl := rep.Start(context.Background(), "r_bench", secrets)
			const perChunk = 400 // ~32 KiB, a pipe read
			var chunk []byte
			for i := range perChunk {
				chunk = fmt.Appendf(chunk, "2026-01-02T03:04:05Z step %03d: compiling package github.com/x/y/z\n", i)
			}
			b.SetBytes(int64(len(chunk)) / perChunk)
			b.ResetTimer()
			lines := 0
			for lines < b.N {
				if _, err := rl.Write(chunk); err != nil {
					b.Fatal(err)
				}
				lines += perChunk
			}
			if err := rl.Close(context.Background(), Outcome{Success: true}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// OnLine sees the lines as Port gets them: masked, without workflow commands.
func TestOnLineSeesMaskedLines(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	rep := New(nopAPI{}, Options{FlushInterval: time.Hour, Mask: []string{"cfg-secret-1"},
		OnLine: func(runID, line string) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, runID+": "+line)
		}})
	rl := rep.Start(context.Background(), "r_online", []string{"run-token-XYZ"})
	write(t, rl, "a cfg-secret-1 b\n::add-mask::v4lue\n::port-status-label::x\nrun-token-XYZ v4lue\n")
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	equalLines(t, got, []string{"r_online: a *** b", "r_online: *** ***"})
	closeRun(t, rl, Outcome{Success: true})
}
