package portproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/portproxy"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// The test binary doubles as a run's command: PROXY_HELPER=post sends one log POST to
// PROXY_URL with PROXY_TOKEN and prints the status code; PROXY_HELPER=spawn runs a child
// that does the same (a descendant of the bound process); PROXY_HELPER=wait waits for stdin
// to close (a run's process that makes no request).
func TestMain(m *testing.M) {
	switch os.Getenv("PROXY_HELPER") {
	case "post":
		req, _ := http.NewRequest("POST", os.Getenv("PROXY_URL")+"/actions/runs/"+os.Getenv("PROXY_RUN")+"/logs", strings.NewReader(`{"message":"from `+os.Getenv("PROXY_WHO")+`"}`))
		req.Header.Set("Authorization", "Bearer "+os.Getenv("PROXY_TOKEN"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
		os.Exit(0)
	case "spawn":
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "PROXY_HELPER=post")
		c.Stdout = os.Stdout
		if err := c.Run(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	case "wait":
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "spawnhold":
		spawnHold()
	case "hold":
		hold()
	}
	os.Exit(m.Run())
}

func newBoundFixture(t *testing.T, bindWait time.Duration) *fixture {
	t.Helper()
	if !portproxy.ProcessBindingSupported() {
		t.Skip("process binding needs Linux /proc")
	}
	f := newFixture(t)
	api, err := portapi.New(portapi.Options{BaseURL: f.emuURL, ClientID: "cid", ClientSecret: "secret", RequestsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = portproxy.New(forwardVia(api), portproxy.Options{Logger: zaptest.NewLogger(t), BindToProcess: true, BindWait: bindWait})
	ctx, cancel := context.WithCancel(context.Background())
	url, wait, err := f.proxy.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = wait() })
	f.url = url
	return f
}

// helper starts the test binary in mode with the proxy's URL, token and run id; its stdout
// is the returned buffer once wait returns.
func helper(t *testing.T, f *fixture, mode, token, runID, who string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "PROXY_HELPER="+mode, "PROXY_URL="+f.url, "PROXY_TOKEN="+token, "PROXY_RUN="+runID, "PROXY_WHO="+who)
	var out bytes.Buffer
	c.Stdout = &out
	c.Stderr = os.Stderr
	if mode == "wait" {
		c.Stdin = strings.NewReader("") // replaced below: an open pipe
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		c.Stdin = pr
		t.Cleanup(func() { pw.Close(); pr.Close() })
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c, &out
}

func status(t *testing.T, c *exec.Cmd, out *bytes.Buffer) string {
	t.Helper()
	if err := c.Wait(); err != nil {
		t.Fatalf("helper: %v (%s)", err, out)
	}
	return strings.TrimSpace(out.String())
}

// twoBoundRuns is a binding proxy with runs a and b registered, and their tokens.
func twoBoundRuns(t *testing.T, a, b string) (f *fixture, tokA, tokB string) {
	t.Helper()
	f = newBoundFixture(t, 5*time.Second)
	f.emu.RegisterRun(a, "act")
	f.emu.RegisterRun(b, "act")
	tokA, revokeA := f.proxy.Register(a, "act", "", nil)
	t.Cleanup(revokeA)
	tokB, revokeB := f.proxy.Register(b, "act", "", nil)
	t.Cleanup(revokeB)
	return f, tokA, tokB
}

// A run's token works only from that run's own processes (README "Runs and each other").
func TestTokenBoundToTheRunsProcesses(t *testing.T) {
	f, tokA, tokB := twoBoundRuns(t, "r_a", "r_b")

	// Run A's command itself: its first request waits for Bind, then passes.
	a, outA := helper(t, f, "post", tokA, "r_a", "a")
	f.proxy.Bind(tokA, a.Process.Pid)
	if got := status(t, a, outA); got != "200" {
		t.Fatalf("run A's own process: %s, want 200", got)
	}
	// A descendant of run B's root passes; run B's process with A's stolen token does not.
	b, outB := helper(t, f, "spawn", tokB, "r_b", "b")
	f.proxy.Bind(tokB, b.Process.Pid)
	if got := status(t, b, outB); got != "200" {
		t.Fatalf("run B's child: %s, want 200", got)
	}

	rootA, _ := helper(t, f, "wait", "", "", "")
	f.proxy.Bind(tokA, rootA.Process.Pid) // a second Bind does not move the token
	thief, outT := helper(t, f, "spawn", tokA, "r_a", "thief")
	f.proxy.Bind(tokB, thief.Process.Pid) // ignored too: B is bound already
	if got := status(t, thief, outT); got != "401" {
		t.Fatalf("another run's process with a stolen token: %s, want 401", got)
	}
	// The test process is no process of any run.
	f.call(t, tokA, "POST", "/actions/runs/r_a/logs", `{"message":"from the test"}`).want(t, "the agent's side", 401, "unauthorized")

	if run, _ := f.emu.Run("r_a"); len(run.Logs) != 1 || run.Logs[0].Message != "from a" {
		t.Fatalf("run A's log %+v, want only its own line", run.Logs)
	}
	_ = rootA.Process.Kill()
	_ = rootA.Wait()
}

// A token never bound (the command did not start) is refused after BindWait.
func TestUnboundTokenRefused(t *testing.T) {
	f := newBoundFixture(t, 100*time.Millisecond)
	f.emu.RegisterRun("r_a", "act")
	tok, revoke := f.proxy.Register("r_a", "act", "", nil)
	defer revoke()
	start := time.Now()
	f.call(t, tok, "POST", "/actions/runs/r_a/logs", `{"message":"x"}`).want(t, "unbound", 401, "unauthorized")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("refused after %s, before BindWait", d)
	}
}

// spawnHold (PROXY_HELPER=spawnhold) starts a "hold" child and exits once that child's
// first request is answered (PROXY_OUT has a line): the child goes on, reparented away.
func spawnHold() {
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "PROXY_HELPER=hold")
	if err := c.Start(); err != nil {
		os.Exit(1)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(os.Getenv("PROXY_OUT")); bytes.Contains(b, []byte("\n")) {
			os.Exit(0)
		}
	}
	os.Exit(1)
}

// hold (PROXY_HELPER=hold) posts a log line with PROXY_TOKEN for PROXY_RUN, waits until its
// parent is gone, then posts one with PROXY_TOKEN2 for PROXY_RUN2 on the same connection;
// each answer's status (and whether the connection was reused) goes as a line to PROXY_OUT.
func hold() {
	ppid := os.Getppid()
	post := func(token, run string) {
		req, _ := http.NewRequest("POST", os.Getenv("PROXY_URL")+"/actions/runs/"+run+"/logs", strings.NewReader(`{"message":"held"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		reused := false
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused },
		}))
		line := "error"
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // read to its end: the connection is kept
			resp.Body.Close()
			line = fmt.Sprintf("%d reused=%v", resp.StatusCode, reused)
		}
		f, err := os.OpenFile(os.Getenv("PROXY_OUT"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			os.Exit(1)
		}
		fmt.Fprintln(f, line)
		f.Close()
	}
	post(os.Getenv("PROXY_TOKEN"), os.Getenv("PROXY_RUN"))
	for deadline := time.Now().Add(30 * time.Second); os.Getppid() == ppid; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			os.Exit(1)
		}
	}
	post(os.Getenv("PROXY_TOKEN2"), os.Getenv("PROXY_RUN2"))
	os.Exit(0)
}

// A connection's verdict holds for the run it was checked for, not for that run's root pid:
// once the pid is another run's root (pids wrap around), a process that kept a connection
// checked for the earlier run, and is no process of the new one, is refused the new run's
// token on it. Here the new run is bound to the earlier root's pid once that process is
// gone, as a reused pid would be.
func TestAConnectionsVerdictIsTheRunsNotThePids(t *testing.T) {
	f, tokA, tokC := twoBoundRuns(t, "r_a", "r_c")
	out := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := exec.Command(os.Args[0])
	p.Env = append(os.Environ(), "PROXY_HELPER=spawnhold", "PROXY_URL="+f.url, "PROXY_OUT="+out,
		"PROXY_TOKEN="+tokA, "PROXY_RUN=r_a", "PROXY_TOKEN2="+tokC, "PROXY_RUN2=r_c")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	f.proxy.Bind(tokA, p.Process.Pid)
	if err := p.Wait(); err != nil {
		t.Fatalf("the earlier run's root: %v", err)
	}
	f.proxy.Bind(tokC, p.Process.Pid) // the new run, rooted at the pid the earlier one had
	var lines []string
	waitcond.For(t, "both answers to the kept connection", 30*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		lines = strings.Fields(string(b))
		return len(lines) >= 4
	})
	if lines[0] != "200" {
		t.Fatalf("the earlier run's own process: %v, want 200 first", lines)
	}
	if lines[3] != "reused=true" {
		t.Skipf("the second request did not reuse the connection (%v): nothing to check", lines)
	}
	if lines[2] != "401" {
		t.Fatalf("the new run's token on a connection checked for the earlier run, from no process of the new run: %v, want 401", lines[2:])
	}
}
