package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

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
