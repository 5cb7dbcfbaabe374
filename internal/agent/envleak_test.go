package agent_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness"
)

// An env expression that fails on a secret input must not carry the value
// anywhere: gojq quotes it in its error ("expected an object but got: string (\"p@ss...\")").
// The statusLabel, the run's log and the agent's own log lines name the env key and the kind
// of problem only.
func TestEnvErrorCarriesNoValue(t *testing.T) {
	h := harness.New(t, 1)
	cfg := h.Config(t, harness.Actions(`
  deploy:
    command: ["true"]
    env: {DB_PASSWORD: .properties.password.value}
`))
	for i, env := range []map[string]string{
		{"DB_PASSWORD": ".properties.password.value"},
		{"DIV": ".properties.password / 0"},
		{"RAISE": "error(.properties.password)"},
		{"ITER": ".properties.password[]"},
		{"ADD": ".properties.password + 1"},
	} {
		ac := cfg.Actions["deploy"]
		ac.Env = env
		cfg.Actions["deploy"] = ac
		id := fmt.Sprintf("r_env%d", i)
		var key string
		for k := range env {
			key = k
		}
		h.Emu.RegisterRun(id, "deploy")
		h.Produce(t, []byte(id), h.Sign(t, fmt.Sprintf(`{"action":"deploy","context":{"runId":%q},"payload":{"properties":{"password":%q,"n":1}}}`, id, secretInput)))
		a := h.Start(t, cfg)
		run := h.WaitClosed(t, id)
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		all.WriteString(run.StatusLabel + "\n")
		for _, e := range run.Logs {
			all.WriteString(e.Message + "\n")
		}
		if run.Status != "FAILURE" || !strings.Contains(run.StatusLabel, key) {
			t.Errorf("%s: run %s %q, want FAILURE naming %s", key, run.Status, run.StatusLabel, key)
		}
		for _, part := range []string{secretInput, "p@ssw0rd", "TAIL"} {
			if strings.Contains(all.String(), part) {
				t.Errorf("%s: the run shows the value (%q):\n%s", key, part, all.String())
			}
		}
		for _, e := range a.Logs.All() {
			line, _ := json.Marshal(e.ContextMap())
			if strings.Contains(e.Message+string(line), "p@ssw0rd") {
				t.Errorf("%s: agent log line carries the value: %s %s", key, e.Message, line)
			}
		}
		t.Logf("%s: statusLabel %q", key, run.StatusLabel)
	}
}

// Masking covers every path into the log, also the command's own requests
// to its run's log and label through the proxy.
func TestProxiedRunTextIsMasked(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	h := harness.New(t, 1)
	script := harness.Script(t, `set -eu
echo "::add-mask::later-$DB_PASSWORD"
post() { curl -q -sS -o /dev/null -w '%{http_code}' -X "$1" -H "Authorization: Bearer $PORT_API_TOKEN" -H 'Content-Type: application/json' "$PORT_API_URL/actions/runs/$PORT_RUN_ID$2" -d "$3"; }
echo "log: $(post POST /logs "{\"message\":\"via proxy $DB_PASSWORD and later-$DB_PASSWORD \\u0070@ss\"}")"
echo "patch: $(post PATCH "" "{\"summary\":\"sum $DB_PASSWORD\",\"link\":[\"https://x.example/?t=$DB_PASSWORD\"]}")"
`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`
  deploy:
    command: [%q]
    env: {DB_PASSWORD: .properties.password}
`, script)))
	h.Emu.RegisterRun("r_masked", "deploy")
	h.Produce(t, []byte("r_masked"), h.Sign(t, fmt.Sprintf(`{"action":"deploy","context":{"runId":"r_masked"},"payload":{"properties":{"password":%q}}}`, secretInput)))
	stop := h.Start(t, cfg).Stop
	run := h.WaitClosed(t, "r_masked")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, e := range run.Logs {
		all.WriteString(e.Message + "\n")
	}
	all.WriteString(run.Summary + "\n" + strings.Join(run.Link, "\n"))
	if strings.Contains(all.String(), "p@ssw0rd") {
		t.Fatalf("the secret input reached the run:\n%s", all.String())
	}
	for _, want := range []string{"log: 200", "patch: 200", "via proxy *** and *** p@ss", "sum ***", "https://x.example/?t=***"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("run lacks %q:\n%s", want, all.String())
		}
	}
}

// secretInput is a secret input's value, which must show nowhere.
const secretInput = "p@ssw0rd-0123456789-TAIL"
