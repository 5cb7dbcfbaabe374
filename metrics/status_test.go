package metrics

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// /status says which replica answers (pod, version, partitions, leases) and keeps the runs
// it finished, each with its outcome and its page in Port, as JSON and as HTML.
func TestStatusNamesTheReplica(t *testing.T) {
	t.Setenv("POD_NAME", "port-runner-7d9f-abcde")
	m := New()
	m.SetVersion("v1.2.3")
	ended := time.Now().Add(-time.Minute)
	src := &fakeSource{snap: Snapshot{SlotsCapacity: 4, Topic: "org_1.runs", Partitions: []int32{2, 0},
		Finished: []Finished{
			{RunID: "r_new", Action: "deploy", Outcome: OutcomeSuccess, Label: "exit code 0", Ended: ended,
				PortURL: "https://app.getport.io/organization/run?runId=r_new"},
			{RunID: "r_old", Action: "deploy", Outcome: OutcomeFailure, Label: "exit code 3", Ended: ended.Add(-time.Hour),
				PortURL: "javascript:alert(1)"},
		}}}
	defer m.SetSource(src)()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, wait, err := m.Serve(ctx, "127.0.0.1:0", src.Ready)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = wait() }()
	_, js := get(t, "http://"+addr+"/status")
	var st Status
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("/status JSON: %v\n%s", err, js)
	}
	r := st.Replica
	if r.Name != "port-runner-7d9f-abcde" || r.Version != "v1.2.3" || r.Topic != "org_1.runs" ||
		len(r.Partitions) != 2 || r.Partitions[0] != 0 || r.Partitions[1] != 2 || r.Leases == nil {
		t.Errorf("/status replica = %+v", r)
	}
	if !strings.Contains(js, `"leases": []`) {
		t.Errorf("/status has no leases field:\n%s", js)
	}
	if len(st.Finished) != 2 || st.Finished[0].RunID != "r_new" || st.Finished[0].Outcome != OutcomeSuccess ||
		st.Finished[0].PortURL != "https://app.getport.io/organization/run?runId=r_new" {
		t.Errorf("/status finished = %+v", st.Finished)
	}

	page := getHTML(t, "http://"+addr+"/status")
	for _, want := range []string{
		"port-runner-7d9f-abcde", "v1.2.3", `<span id="partitions">0, 2</span>`,
		`<a class="port-run" href="https://app.getport.io/organization/run?runId=r_new">r_new</a>`, "exit code 3",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the HTML status page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "javascript:") {
		t.Errorf("the HTML status page links a javascript: URL:\n%s", page)
	}
}

// Without POD_NAME the host name names the replica (a pod's host name is its name).
func TestReplicaNameFallsBackToHostname(t *testing.T) {
	t.Setenv("POD_NAME", "")
	if got := New().status(func() error { return nil }).Replica.Name; got == "" {
		t.Error("no replica name without POD_NAME")
	}
}

func getHTML(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// /status's leases are the runs this replica holds under its lease after their partitions
// moved on, not every run it holds.
func TestStatusListsHeldLeases(t *testing.T) {
	m := New()
	src := &fakeSource{snap: Snapshot{Runs: []Run{
		{RunID: "r_mine", Action: "deploy", State: "running"},
		{RunID: "r_held", Action: "deploy", State: "running", Lease: LeaseHeld},
		{RunID: "r_awaited", Action: "deploy", State: "awaiting", Lease: LeaseAwaited, Holder: "member-2"},
	}}}
	defer m.SetSource(src)()
	st := m.status(src.Ready)
	if len(st.Replica.Leases) != 1 || st.Replica.Leases[0] != "r_held" {
		t.Errorf("/status leases = %q, want [r_held]", st.Replica.Leases)
	}
}

// The browser page marks each finished run's outcome with its class, a run Port never took
// the termination of as not-closed (red, like a failure).
func TestStatusPageClassesOutcomes(t *testing.T) {
	var b strings.Builder
	st := Status{Finished: []Finished{
		{RunID: "r_ok", Outcome: OutcomeSuccess}, {RunID: "r_bad", Outcome: OutcomeFailure}, {RunID: "r_open", Outcome: OutcomeNotClosed},
	}}
	if err := statusPage.Execute(&b, struct {
		Status
		Now time.Time
	}{st, time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<td class="success">success</td>`, `<td class="failure">failure</td>`, `<td class="not-closed">not closed</td>`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the status page lacks %s:\n%s", want, b.String())
		}
	}
}
