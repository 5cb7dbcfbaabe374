package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifyWriter collects output and signals when a line has been seen, so
// tests can act on the command's progress instead of sleeping.
type notifyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func newNotifyWriter() *notifyWriter { return &notifyWriter{lines: make(chan string, 1024)} }

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	before := w.buf.Len()
	w.buf.Write(p)
	// Report complete lines only.
	all := w.buf.String()
	start := strings.LastIndex(all[:before], "\n") + 1
	for _, l := range strings.SplitAfter(all[start:], "\n") {
		if strings.HasSuffix(l, "\n") {
			select {
			case w.lines <- strings.TrimSuffix(l, "\n"):
			default:
			}
		}
	}
	return len(p), nil
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func run(t *testing.T, ctx context.Context, spec Spec) (Result, string) {
	t.Helper()
	w := newNotifyWriter()
	res := Run(ctx, spec, w)
	return res, w.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs. A zombie counts as gone:
// orphans are reparented to pid 1, which in a container may never reap them.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// Format: pid (comm) state ...; comm may contain spaces or parens.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func firstInt(t *testing.T, out string) int {
	t.Helper()
	line, _, _ := strings.Cut(out, "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("no pid on first line of output %q", out)
	}
	return pid
}

func TestExitCodes(t *testing.T) {
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "echo hello"}})
	if !res.Success || res.ExitCode != 0 || res.Label != "exit code 0" || out != "hello\n" {
		t.Errorf("success: got %+v, out %q", res, out)
	}
	res, _ = run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "exit 3"}})
	if res.Success || res.ExitCode != 3 || res.Label != "exit code 3" {
		t.Errorf("exit 3: got %+v", res)
	}
	if res.Duration <= 0 {
		t.Errorf("duration not set: %+v", res)
	}
}

func TestKilledBySignal(t *testing.T) {
	res, _ := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "kill -SEGV $$"}})
	if res.Success || res.ExitCode != -1 || res.Label != "killed by signal "+syscall.SIGSEGV.String() {
		t.Errorf("got %+v", res)
	}
}

func TestInterleavedOrder(t *testing.T) {
	script := `i=0; while [ $i -lt 200 ]; do
		if [ $((i % 2)) -eq 0 ]; then echo "line $i"; else echo "line $i" >&2; fi
		i=$((i + 1))
	done`
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", script}})
	if !res.Success {
		t.Fatalf("got %+v, out %q", res, out)
	}
	var want strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if out != want.String() {
		t.Errorf("output out of order or incomplete:\n%s", out)
	}
}

func TestLargeOutputFullyDelivered(t *testing.T) {
	// More than the pipe buffer and the copy buffer, ending right at exit.
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c",
		`i=0; while [ $i -lt 20000 ]; do echo "0123456789abcdef $i"; i=$((i + 1)); done`}})
	if !res.Success {
		t.Fatalf("got %+v", res)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 20000 || lines[19999] != "0123456789abcdef 19999" {
		t.Errorf("got %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute:             "10m",
		90 * time.Second:             "1m30s",
		500 * time.Millisecond:       "500ms",
		time.Hour:                    "1h",
		time.Hour + time.Second:      "1h0m1s",
		10 * time.Second:             "10s",
		2*time.Hour + 30*time.Minute: "2h30m",
		1500 * time.Millisecond:      "1.5s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
