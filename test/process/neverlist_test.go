//go:build linux

package process_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
)

// probeScript calls Port's API through the agent's proxy as a command can, each route the
// proxy must never forward whatever portAPI.allow says, and one it forwards (the run
// itself), writing "ROUTE CODE" lines to $1/codes. $2 is another workflow node run's id.
const probeScript = `out=$1 node=$2
call() {
  code=$(curl -q -sS -o /dev/null -w '%{http_code}' -X "$1" -H "Authorization: Bearer $PORT_API_TOKEN" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$PORT_API_URL$2")
  echo "$1 $2 $code" >> "$out/codes"
}
call GET "/actions/runs/$PORT_RUN_ID"
call PATCH "/workflows/nodes/runs/$node" '{"status":"COMPLETED","result":"SUCCESS"}'
call GET /kafka-credentials
call POST /Auth/access_token '{"clientId":"test-client","clientSecret":"guess"}'`

// TestProxyNeverList: with portAPI.allow: ["/v1/**"], a command reached Port through the
// agent's proxy to end another workflow node run, read the organization's Kafka password,
// and call /v1/Auth/access_token (the authentication block compared case-sensitively). Each
// must be answered 403 and never reach Port.
func TestProxyNeverList(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	broker := plaintextBroker(t)
	h := harness.New(t, 1, harness.WithBroker(broker))
	node, _, err := h.Emu.PrepareNodeRun("release", "build", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dir := sharedDir(t)
	out := writableDir(t, dir)
	probe := writeScript(t, dir, "probe.sh", probeScript)
	cfg := h.ConfigFile(t, dir, fmt.Sprintf(`actions:
  probe: {command: [%q, %q, %q], portAPI: {allow: ["/v1/**"]}, sandbox: {write: [%[2]q]}}
`, probe, out, node.ID))
	ps := harness.NewProcesses(t)
	ps.Agent("agent", harness.Binary(t), cfg, harness.ProcessOptions{Home: dir, AsNobody: true})
	h.NewRun(t, "r_probe", "probe")
	if run := waitClosed(t, ps, h, "r_probe"); run.Status != "SUCCESS" {
		t.Fatalf("the probe run: %+v", run)
	}
	// The run closed after its command ended: the file is complete.
	codes := strings.TrimSpace(readFile(t, filepath.Join(out, "codes")))
	want := strings.Join([]string{
		"GET /actions/runs/r_probe 200",
		"PATCH /workflows/nodes/runs/" + node.ID + " 403",
		"GET /kafka-credentials 403",
		"POST /Auth/access_token 403",
	}, "\n")
	if codes != want {
		t.Errorf("answers:\n%s\nwant:\n%s", codes, want)
	}
	for _, r := range h.Emu.Requests() {
		p := strings.ToLower(r.Path)
		if strings.Contains(p, "kafka-credentials") || (strings.Contains(p, "/workflows/nodes/runs/") && r.Method != "GET") ||
			(strings.Contains(p, "/auth/") && r.Path != "/v1/auth/access_token") {
			t.Errorf("a refused request reached Port: %s %s", r.Method, r.Path)
		}
	}
	if run, _ := h.Emu.Run(node.ID); run.Status != "IN_PROGRESS" {
		t.Errorf("the other node run was ended through the proxy: %+v", run)
	}
}
