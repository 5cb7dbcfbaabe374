package agent_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
)

// maxLogLine bounds every agent log line (message and fields, as JSON) whatever a message or
// a command holds: an error or a log quotes at most a short prefix of such a value.
const maxLogLine = 4 << 10

// TestLogsEchoAShortPrefix: messages and a command with values of 60 KB to 1 MB (a timestamp,
// an action name, a secret input's name, a request path) leave only short log lines, and a
// good run after them closes.
func TestLogsEchoAShortPrefix(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	h := harness.New(t, 1)
	big, half := strings.Repeat("7", 900<<10), strings.Repeat("s", 400<<10)
	// A 60 KB path, 15 times a log line's bound: under the 64 KiB the proxy takes of a
	// request's line and headers (README "Scripts calling Port").
	script := harness.Script(t, `path=$(head -c 60000 /dev/zero | tr '\0' 'p')
curl -q -sS -o /dev/null -w 'proxy: %{http_code}\n' -H "Authorization: Bearer $PORT_API_TOKEN" "$PORT_API_URL/$path"
echo done`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`  deploy:
    command: [%q]
`, script)))
	h.Emu.RegisterRun("r_bigts", "deploy")
	h.Produce(t, []byte("r_bigts"), []byte(`{"action":"deploy","context":{"runId":"r_bigts"},"headers":{"X-Port-Signature":"v1,x","X-Port-Timestamp":"`+big+`x"}}`))
	h.Produce(t, []byte("r_bigaction"), h.Sign(t, `{"action":"`+big+`","context":{"runId":"r_bigaction"},"payload":{"properties":{}}}`))
	h.Emu.RegisterRun("r_bigsecret", "deploy")
	h.Produce(t, []byte("r_bigsecret"), h.Sign(t, `{"action":"deploy","context":{"runId":"r_bigsecret"},"payload":{"properties":{"`+half+`":1},"action":{"userInputs":{"properties":{"`+half+`":{"type":"string","encryption":"aes256-gcm"}}}}}}`))
	h.NewRun(t, "r_good", "deploy")
	a := h.Start(t, cfg, harness.TestLogLevel(zapcore.InfoLevel))
	good := h.WaitClosed(t, "r_good")
	secret := h.WaitClosed(t, "r_bigsecret")
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if good.Status != "SUCCESS" || !strings.Contains(logText(good), "proxy: 403") {
		t.Errorf("the good run: %s %q, log:\n%.2000s", good.Status, good.StatusLabel, logText(good))
	}
	if secret.Status != "FAILURE" || len(secret.StatusLabel) > maxLogLine {
		t.Errorf("the run with a 400 KiB secret input name: %s, label of %d bytes", secret.Status, len(secret.StatusLabel))
	}
	entries := a.Logs.All()
	for _, e := range entries {
		fields, _ := json.Marshal(e.ContextMap())
		if n := len(e.Message) + len(fields); n > maxLogLine {
			t.Errorf("a log line of %d bytes: %s %.300s", n, e.Message, fields)
		}
	}
	t.Logf("%d log lines, none over %d bytes", len(entries), maxLogLine)
}

func logText(r emulator.RunState) string {
	var b strings.Builder
	for _, e := range r.Logs {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}
