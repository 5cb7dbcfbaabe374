package agent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/test/harness"
)

// A command that prints $PORT_RUN_FILE shows a secret input as a JSON string holds it (a
// quote and a backslash escaped), and an object secret's numbers as numbers: Port's log
// gets neither.
func TestSecretInputsMaskedAsTheRunFileHoldsThem(t *testing.T) {
	h := harness.New(t, 1)
	pw := `hun"ter\2-Q7`
	creds := `{"user":"svc-deployer","pin":482913,"admin":true}`
	encPW, err := runmsg.EncryptSecret(harness.Secret, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	encCreds, err := runmsg.EncryptSecret(harness.Secret, []byte(creds))
	if err != nil {
		t.Fatal(err)
	}
	script := harness.Script(t, "cat \"$PORT_RUN_FILE\"; echo\necho \"pin=$PIN\"\n")
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`  deploy:
    command: [%q]
    env: {PIN: .properties.creds.pin}
`, script)))
	h.Emu.RegisterRun("r_esc", "deploy")
	msg := fmt.Sprintf(`{"action":"deploy","context":{"runId":"r_esc"},"payload":{"properties":{"pw":%q,"creds":%q},"action":{"userInputs":{"properties":{"pw":{"type":"string","encryption":"aes256-gcm"},"creds":{"type":"object","encryption":"aes256-gcm"}}}}}}`, encPW, encCreds)
	h.Produce(t, []byte("r_esc"), h.Sign(t, msg))
	h.Start(t, cfg)
	log := logText(h.WaitClosed(t, "r_esc"))
	for _, leak := range []string{`hun\"ter\\2-Q7`, "482913", "svc-deployer"} {
		if strings.Contains(log, leak) {
			t.Errorf("Port's log shows %s:\n%s", leak, log)
		}
	}
	if !strings.Contains(log, `"pw":"***"`) || !strings.Contains(log, "pin=***") {
		t.Errorf("want the run file's password and the pin masked:\n%s", log)
	}
}
