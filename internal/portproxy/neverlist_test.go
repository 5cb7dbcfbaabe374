package portproxy_test

import (
	"testing"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/emulator"
)

// TestNeverList: with an allow list that covers every route, a command still cannot end
// another run or a workflow node run, read the Kafka credentials or reach any
// authentication route, whatever the letter case of the path's segments.
func TestNeverList(t *testing.T) {
	f := newFixture(t)
	f.emu.RegisterRun("r_1", "act")
	node, _, err := f.emu.PrepareNodeRun("release", "build", emulator.CreateNodeRunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := config.ParseAllowRules([]string{"/v1/**"})
	if err != nil {
		t.Fatal(err)
	}
	token, revoke := f.proxy.Register("r_1", "act", "microservice", all)
	defer revoke()
	nodePath := "/workflows/nodes/runs/" + node.ID
	// The agent's own token request happens here, so what follows counts only the proxied.
	f.call(t, token, "GET", "/actions/runs/r_1", "").want(t, "GET own run", 200, "")
	before := len(f.emu.Requests())
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", nodePath, `{"status":"COMPLETED","result":"SUCCESS"}`},
		{"PUT", nodePath, `{"status":"COMPLETED","result":"FAILED"}`},
		{"PATCH", nodePath, `{"Result":"SUCCESS"}`},
		{"PATCH", "/Workflows/NODES/runs/" + node.ID, `{"status":"COMPLETED"}`},
		{"PATCH", nodePath, `not json, cannot be checked`},
		{"POST", nodePath + "/logs", `{"logs":[{"level":"INFO","message":"x"}],"terminationStatus":"SUCCESS"}`},
		{"GET", "/kafka-credentials", ""},
		{"GET", "/Kafka-Credentials", ""},
		{"GET", "/%6bafka-credentials", ""},
		{"POST", "/auth/access_token", `{"clientId":"cid","clientSecret":"secret"}`},
		{"POST", "/Auth/access_token", `{"clientId":"cid","clientSecret":"secret"}`},
		{"POST", "/AUTH/access_token", `{"clientId":"cid","clientSecret":"secret"}`},
		{"GET", "/apps", ""},
		{"POST", "/apps", `{"name":"mine"}`},
		{"POST", "/Apps/app_1/rotate-secret", ""},
		{"POST", "/rotate-credentials/someone@example.com", ""},
		{"PATCH", "/Actions/Runs/r_1", `{"status":"SUCCESS"}`},
		{"POST", "/ACTIONS/runs/r_1/Logs", `{"message":"done","terminationStatus":"SUCCESS"}`},
	} {
		f.call(t, token, c.method, c.path, c.body).want(t, c.method+" "+c.path+" "+c.body, 403, "forbidden")
	}
	for _, r := range f.emu.Requests()[before:] {
		t.Errorf("a refused request reached Port: %s %s", r.Method, r.Path)
	}
	if run, _ := f.emu.Run(node.ID); run.Status != "IN_PROGRESS" || run.Terminations != 0 {
		t.Fatalf("the node run ended through the proxy: %+v", run)
	}
	if run, _ := f.emu.Run("r_1"); run.Status != "IN_PROGRESS" || run.Terminations != 0 {
		t.Fatalf("the run ended through the proxy: %+v", run)
	}
	// What the never-list leaves alone still goes through: reading the node run, and the
	// run's own progress.
	f.call(t, token, "GET", nodePath, "").want(t, "GET "+nodePath, 200, "")
	f.call(t, token, "PATCH", "/actions/runs/r_1", `{"statusLabel":"halfway"}`).want(t, "PATCH own run label", 200, "")
}
