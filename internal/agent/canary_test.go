package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// A canary secret input, printed by its command every way a command can, never reaches the
// agent's own log (debug included), /status or /metrics, nor Port unmasked; nor does the
// run's token or the client secret.
func TestCanarySecretReachesNoOutputOfTheAgent(t *testing.T) {
	h := harness.New(t, 1)
	pw := "cAnAry-Qx9-w0rd"
	dir := t.TempDir()
	tokFile, goFile := filepath.Join(dir, "token"), filepath.Join(dir, "go")
	script := harness.Script(t, fmt.Sprintf(`
printf '%%s' "$PORT_API_TOKEN" > %[1]q
echo "pw=$PW token=$PORT_API_TOKEN"
echo "::port-status-label::label $PW"
echo "::port-link::https://example.invalid/$PW"
echo "::port-summary::summary $PW"
echo "::port-output::key=$PW"
printf '{"pw":"%%s"}' "$PW" > "$PORT_RESPONSE_FILE"
curl -s -o /dev/null -H "Authorization: Bearer $PORT_API_TOKEN" "$PORT_API_URL/blueprints/$PW/entities/$PW?t=$PORT_API_TOKEN&p=$PW"
curl -s -o /dev/null -X POST -H "Authorization: Bearer $PORT_API_TOKEN" -H 'Content-Type: application/json' "$PORT_API_URL/actions/runs/$PORT_RUN_ID/logs" -d "{\"message\":\"via proxy $PW\"}"
curl -s -o /dev/null -X POST -H "Authorization: Bearer $PORT_API_TOKEN" "$PORT_API_URL/$PW/$PORT_API_TOKEN"
echo "::port-link::$PW$PW"
echo "$PW" >&2
while [ ! -e %[2]q ]; do sleep 0.05; done
exit 3
`, tokFile, goFile))
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`  deploy:
    command: [%q]
    env: {PW: .properties.pw, DB_URL: '"postgres://u:" + .properties.pw + "@db/x"'}
    sandbox: off
`, script)))
	cfg.Metrics.Addr = "127.0.0.1:0"
	produceSecretRun(t, h, "r_canary", "deploy", pw)
	a := h.Start(t, cfg)
	base := a.MetricsURL(t)
	var pages []string
	get := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitcond.For(t, "the run's last lines on /status", 30*time.Second, func() bool {
		s := get("/status")
		return strings.Contains(s, "via proxy") || strings.Contains(s, "***\\n") || strings.Count(s, "***") >= 3
	})
	pages = append(pages, get("/status"), get("/status?format=html"), get("/metrics"))
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	run := h.WaitClosed(t, "r_canary")
	pages = append(pages, get("/status"), get("/status?format=html"), get("/metrics"))
	tok, err := os.ReadFile(tokFile)
	if err != nil || len(tok) < 8 {
		t.Fatalf("the command's token: %q, %v", tok, err)
	}
	port := fmt.Sprintf("%s\n%s\n%s\n%s\n%v\n%v\n%v", logText(run), run.StatusLabel, strings.Join(run.Link, " "), run.Summary, run.Response, run.Output, run.ExternalRunID)
	for where, text := range map[string]string{"the agent's log": a.LogText(), "Port": port, "/status, /metrics": strings.Join(pages, "\n")} {
		for what, v := range map[string]string{"the secret input": pw, "the run's token": string(tok), "the client secret": harness.Secret} {
			if strings.Contains(text, v) {
				t.Errorf("%s shows %s:\n%s", where, what, text)
			}
		}
	}
	t.Logf("Port: %s", port)
}
