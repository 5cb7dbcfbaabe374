package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness"
)

// An agent runs one action run to its end; its /status page, loaded in a real headless
// Chromium as an on-call opens it after `kubectl port-forward pod/...`, names the replica
// and its partitions and lists the finished run with the link to its page in Port.
func TestStatusPageInChromium(t *testing.T) {
	const (
		podName = "port-runner-5f7c9d-x2k4q"
		appURL  = "https://app.getport.io"
	)
	browser := chromium(t)
	t.Setenv("POD_NAME", podName) // before harness.New: the registry reads it when made
	h := harness.New(t, 2)
	h.Metrics.SetVersion("v0.0.0-test")
	r := h.Start(t, h.Config(t, `
port: {appURL: `+appURL+`}
actions:
  deploy: {command: ["/bin/sh", "-c", "echo deployed"]}
`))
	h.NewRun(t, "r_status", "deploy")
	h.WaitClosed(t, "r_status")

	var st metrics.Status
	waitcond.For(t, "the run finished on /status, both partitions owned", time.Minute, func() bool {
		st = r.Status(t)
		return len(st.Finished) > 0 && len(st.Replica.Partitions) == 2
	})
	if f := st.Finished[0]; f.RunID != "r_status" || f.Outcome != metrics.OutcomeSuccess {
		t.Fatalf("finished run on /status: %+v", f)
	}

	// The plain URL: HTML because the browser asks for it.
	dom := dumpDOM(t, browser, r.MetricsURL(t)+"/status")
	for what, want := range map[string]string{
		"the replica's name":    `<span id="replica">` + podName + `</span>`,
		"its partitions":        `<span id="partitions">0, 1</span>`,
		"the finished run":      `<a class="port-run" href="` + appURL + `/organization/run?runId=r_status">r_status</a>`,
		"the run's outcome":     `<td class="success">success</td>`,
		"the replica's version": `<span id="version">v0.0.0-test</span>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("Chromium's DOM of /status lacks %s (%s):\n%s", what, want, dom)
		}
	}
}

// /status keeps what each run it finished came to, newest first: a success, a failure with
// Port's label, a run that failed after its command (a link left as its response file, which
// the agent refuses), and a run Port refused to close, which is not closed (it failed
// before: a refused run is let go as committable, which read as closed).
func TestStatusKeepsFinishedRuns(t *testing.T) {
	h := harness.New(t, 1)
	r := h.Start(t, h.Config(t, `
port: {appURL: https://app.getport.io}
executor: {maxConcurrent: 1, shutdownTimeout: 1s}
actions:
  deploy: {command: ["/bin/sh", "-c", "echo deployed"]}
  fails: {command: ["/bin/sh", "-c", "exit 3"]}
  link: {command: ["/bin/sh", "-c", "ln -s /etc/hostname \"$PORT_RESPONSE_FILE\""]}
`), harness.With(agent.WithClosingBudget(time.Second)))
	want := map[string][2]string{ // outcome, label
		"r_ok":   {metrics.OutcomeSuccess, "exit code 0"},
		"r_fail": {metrics.OutcomeFailure, "exit code 3"},
		"r_link": {metrics.OutcomeFailure, "exit code 0; $PORT_RESPONSE_FILE is a symbolic link, not a regular file"},
	}
	for _, id := range []string{"r_ok", "r_fail", "r_link"} {
		h.NewRun(t, id, map[string]string{"r_ok": "deploy", "r_fail": "fails", "r_link": "link"}[id])
		h.WaitClosed(t, id)
	}
	// Alone, so no other run's closing takes the two refusals (the full request and the
	// minimal fallback).
	h.Emu.RefuseClosings(422, 422)
	h.NewRun(t, "r_unclosed", "deploy")
	want["r_unclosed"] = [2]string{metrics.OutcomeNotClosed, "exit code 0"}

	var st metrics.Status
	waitcond.For(t, "four finished runs on /status", time.Minute, func() bool {
		st = r.Status(t)
		return len(st.Finished) == 4
	})
	for i, f := range st.Finished {
		w, ok := want[f.RunID]
		if !ok || f.Outcome != w[0] || f.Label != w[1] || f.PortURL != "https://app.getport.io/organization/run?runId="+f.RunID {
			t.Errorf("finished %d: %+v, want outcome %q label %q and its link", i, f, w[0], w[1])
		}
		if i > 0 && f.Ended.After(st.Finished[i-1].Ended) {
			t.Errorf("finished runs not newest first: %+v", st.Finished)
		}
	}
}

// chromium is Debian's chromium, or a skip (a failure under CI, which installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI: chromium is required for the /status page test (.ci/run installs Debian's chromium)")
	}
	t.Skip("no chromium on PATH: install Debian's chromium to load /status in a real browser")
	return ""
}

// dumpDOM loads url in a fresh headless Chromium profile and returns the DOM after load.
func dumpDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}
