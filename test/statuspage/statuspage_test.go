package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/port-runner/port-runner/internal/agent"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/kafkatest"
)

const (
	secret  = "test-client-secret-0123456789abcdef"
	podName = "port-runner-5f7c9d-x2k4q"
	appURL  = "https://app.getport.io"
)

// An agent runs one action run to its end; its /status page, loaded in Chromium, names the
// replica and its partitions and lists the finished run with the link to its page in Port.
func TestStatusPageInChromium(t *testing.T) {
	browser := chromium(t)
	t.Setenv("POD_NAME", podName)
	status := startAgent(t)

	var st metrics.Status
	waitcond.For(t, "the run finished on /status", 60*time.Second, func() bool {
		st = statusJSON(t, status)
		return len(st.Finished) > 0 && len(st.Replica.Partitions) == 2
	})
	if f := st.Finished[0]; f.RunID != "r_status" || f.Outcome != metrics.OutcomeSuccess {
		t.Fatalf("finished run on /status: %+v", f)
	}

	// As an on-call opens it: the plain URL, HTML because the browser asks for it.
	dom := dumpDOM(t, browser, status)
	checks := map[string]string{
		"the replica's name":    `<span id="replica">` + podName + `</span>`,
		"its partitions":        `<span id="partitions">0, 1</span>`,
		"the finished run":      `<a class="port-run" href="` + appURL + `/organization/run?runId=r_status">r_status</a>`,
		"the run's outcome":     `>success<`,
		"the replica's version": `<span id="version">`,
	}
	for what, want := range checks {
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

func statusJSON(t *testing.T, url string) metrics.Status {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st metrics.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, b)
	}
	return st
}

// startAgent runs an agent on a 2-partition topic with one run to do and serves its
// metrics handler on 127.0.0.1; it returns /status's URL.
func startAgent(t *testing.T) string {
	t.Helper()
	cluster := kafkatest.New(t)
	topic := cluster.Topic(t, 2)
	emu := emulator.New(emulator.Options{ClientID: "test-client", ClientSecret: secret, OrgID: "org_test", Topic: topic})
	ectx, cancelEmu := context.WithCancel(context.Background())
	t.Cleanup(cancelEmu)
	base, _, err := emu.Start(ectx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `
port: {baseURL: %q, appURL: %q, clientID: test-client, clientSecret: %q, orgID: org_test}
kafka: {brokers: [%q], topic: %q, group: %q, startOffset: earliest}
executor: {maxConcurrent: 2, shutdownTimeout: 1s}
actions:
  deploy: {command: ["/bin/sh", "-c", "echo deployed"]}
`, base, appURL, secret, strings.Join(cluster.Brokers, ","), topic, cluster.Group(t)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(runmsg.CompileSelector, exec.LookPath); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.SetVersion("v0.0.0-test")
	a, err := agent.New(cfg, agent.Deps{Logger: zaptest.NewLogger(t), Metrics: m, KafkaOpts: cluster.Opts, MetricsAddr: "-"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Run(ctx, context.Background()); err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	srv := httptest.NewServer(m.Handler(a.Ready))
	t.Cleanup(srv.Close)

	emu.RegisterRun("r_status", "deploy")
	msg, err := runmsg.Sign(secret, time.Now().Unix(), []byte(`{"action":"deploy","context":{"runId":"r_status"},"payload":{"properties":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	cluster.Produce(t, topic, []byte("r_status"), msg)
	return srv.URL + "/status"
}
