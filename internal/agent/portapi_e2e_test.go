package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// TestEndToEndScriptCallsPort: a run's script upserts an entity with curl through
// $PORT_API_URL and $PORT_API_TOKEN (README "Scripts calling Port"). Port ends up with the
// entity tied to the run, the token never shows in the run's log, and it is dead once the
// run has ended.
func TestEndToEndScriptCallsPort(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	h := harness.New(t, 1)
	dir := t.TempDir()
	tokenFile, urlFile := filepath.Join(dir, "token"), filepath.Join(dir, "url")
	script := harness.Script(t, `set -eu
printf '%s' "$PORT_API_TOKEN" > "$1"
printf '%s' "$PORT_API_URL" > "$2"
echo "token: $PORT_API_TOKEN"
code=$(curl -q -sS -o /dev/null -w '%{http_code}' -X POST \
  -H "Authorization: Bearer $PORT_API_TOKEN" -H 'Content-Type: application/json' \
  "$PORT_API_URL/blueprints/microservice/entities?upsert=true" \
  -d "{\"identifier\":\"$SERVICE_NAME\",\"title\":\"$SERVICE_NAME\",\"properties\":{\"region\":\"$REGION\"}}")
echo "upsert: $code"
[ "$code" = 201 ]
echo "other run: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PORT_API_TOKEN" "$PORT_API_URL/actions/runs/r_other")"
echo "close it myself: $(curl -q -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PORT_API_TOKEN" -H 'Content-Type: application/json' \
  "$PORT_API_URL/actions/runs/$PORT_RUN_ID/logs" -d '{"message":"x","terminationStatus":"SUCCESS"}')"
`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  create_microservice:
    command: [%q, %q, %q]
    env: {SERVICE_NAME: .properties.name, REGION: .properties.region}
`, script, tokenFile, urlFile)))
	// The config refuses PORT_ names; even if one got through, the agent's values win.
	ac := cfg.Actions["create_microservice"]
	ac.Env["PORT_API_TOKEN"] = `"spoofed"`
	ac.Env["PORT_API_URL"] = `"http://127.0.0.1:1/v1"`
	cfg.Actions["create_microservice"] = ac

	h.Emu.RegisterRun("r_api", "create_microservice")
	h.Emu.RegisterRun("r_other", "create_microservice")
	h.Produce(t, nil, h.Sign(t, `{"action":"create_microservice","resourceType":"run","status":"TRIGGERED","context":{"entity":null,"blueprint":"microservice","runId":"r_api"},"payload":{"entity":null,"properties":{"name":"billing","region":"eu-west-1"}}}`))
	stop := h.Start(t, cfg).Stop
	run := h.WaitClosed(t, "r_api")

	var log strings.Builder
	for _, e := range run.Logs {
		log.WriteString(e.Message + "\n")
	}
	if run.Status != "SUCCESS" || run.Terminations != 1 || run.RejectedTerminations != 0 {
		t.Fatalf("run: status %s %q, %d terminations, %d rejected; log:\n%s", run.Status, run.StatusLabel, run.Terminations, run.RejectedTerminations, log.String())
	}
	en, ok := h.Emu.Entity("microservice", "billing")
	if !ok || en.RunID != "r_api" || en.Properties["region"] != "eu-west-1" {
		t.Fatalf("entity %+v (found %v), want billing tied to r_api", en, ok)
	}

	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, err := os.ReadFile(urlFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 64 || string(token) == "spoofed" {
		t.Fatalf("PORT_API_TOKEN %q, want the agent's 64 hex digits", token)
	}
	if !strings.HasPrefix(string(proxyURL), "http://127.0.0.1:") || !strings.HasSuffix(string(proxyURL), "/v1") || strings.HasSuffix(string(proxyURL), ":1/v1") {
		t.Fatalf("PORT_API_URL %q, want the agent's loopback proxy", proxyURL)
	}
	for _, want := range []string{"token: ***\n", "upsert: 201\n", "other run: 403\n", "close it myself: 403\n"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("run log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), string(token)) {
		t.Errorf("the run token appears in the run's log:\n%s", log.String())
	}
	if other, _ := h.Emu.Run("r_other"); other.Status != "IN_PROGRESS" || len(other.Logs) != 0 {
		t.Errorf("the script reached another run: %+v", other)
	}

	// The run is over: its token is revoked (before the closing request), the agent still serves.
	req, _ := http.NewRequest("GET", string(proxyURL)+"/actions/runs/r_api", nil)
	req.Header.Set("Authorization", "Bearer "+string(token))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"error":"unauthorized"`) {
		t.Fatalf("token after the run: HTTP %d %s, want 401 unauthorized", resp.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("agent stopped with error: %v", err)
	}
}
