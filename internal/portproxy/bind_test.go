package portproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/portproxy"
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

// A run's token works only from that run's own processes (README "Runs and each other").
func TestTokenBoundToTheRunsProcesses(t *testing.T) {
	f := newBoundFixture(t, 5*time.Second)
	f.emu.RegisterRun("r_a", "act")
	f.emu.RegisterRun("r_b", "act")
	tokA, revokeA := f.proxy.Register("r_a", "act", "", nil)
	defer revokeA()
	tokB, revokeB := f.proxy.Register("r_b", "act", "", nil)
	defer revokeB()

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
