package agent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/test/harness"
)

// A numeric secret that a command writes into its response as a JSON number is masked
// however long it is: read as a float64, a number of more than 15 digits went to Port
// rounded (12345678901234567891 as 12345678901234567000), which the mask no longer matched,
// showing all but its last digits.
func TestALongNumericSecretInTheResponseIsMasked(t *testing.T) {
	h := harness.New(t, 1)
	pw := "12345678901234567891"
	script := harness.Script(t, `printf '{"token":%s,"id":98765432109876543210}' "$PW" > "$PORT_RESPONSE_FILE"`)
	cfg := h.Config(t, harness.Actions(fmt.Sprintf(`  deploy:
    command: [%q]
    env: {PW: .properties.pw}
`, script)))
	produceSecretRun(t, h, "r_num", "deploy", pw)
	h.Start(t, cfg)
	h.WaitClosed(t, "r_num")
	var got []byte // as sent: the emulator's Response is decoded into float64s
	for _, rq := range h.Emu.Requests() {
		if rq.Method == "PATCH" && strings.HasSuffix(rq.Path, "/r_num/response") {
			got = rq.Body
		}
	}
	if strings.Contains(string(got), pw[:12]) {
		t.Errorf("Port's response shows the secret: %s", got)
	}
	// A number that is no secret goes to Port as the command wrote it, not rounded.
	if !strings.Contains(string(got), `"token":"***"`) || !strings.Contains(string(got), "98765432109876543210") {
		t.Errorf("Port's response is %s, want the token masked and the id as written", got)
	}
}

// produceSecretRun registers run id of action in Port and produces its signed message, as
// Port sends a synchronous action's run: its input pw a Port-managed secret input.
func produceSecretRun(t *testing.T, h *harness.Env, id, action, pw string) {
	t.Helper()
	enc, err := runmsg.EncryptSecret(harness.Secret, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	h.Emu.RegisterRun(id, action)
	msg := fmt.Sprintf(`{"action":%q,"context":{"runId":%q},"payload":{"properties":{"pw":%q},"action":{"invocationMethod":{"type":"WEBHOOK","agent":true,"synchronized":true},"userInputs":{"properties":{"pw":{"type":"string","encryption":"aes256-gcm"}}}}}}`, action, id, enc)
	h.Produce(t, []byte(id), h.Sign(t, msg))
}
