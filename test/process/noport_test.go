//go:build linux

package process_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
	"github.com/port-runner/port-runner/test/harness"
)

// A replica that cannot reach Port (a wrong URL, a NetworkPolicy: a CrashLoopBackOff of a
// rollout's new pods) never takes a partition: it exits before it joins the group, and the
// runs of the replica that works go on untouched.
func TestReplicaWithoutPortNeverTakesAPartition(t *testing.T) {
	const parts = 4
	f := newGroupFixture(t, parts)
	f.start("A", f.config("A", f.actions(20)+"executor: {maxConcurrent: 8}\n"))
	f.waitMembers(1, 60*time.Second)
	ids, _ := f.runsOnEveryPartition("noport", parts)
	f.ps.WaitFor("every run to start", 60*time.Second, func() bool { return f.record.started(ids) == len(ids) })

	// B's Port refuses every connection.
	refused := "http://" + harness.RefusingAddr(t)
	b := f.start("B", f.config("B", f.actions(20)+fmt.Sprintf("port: {baseURL: %q}\n", refused)))
	// Until B gives up (the agent's 30s start check), the group is A alone, with every
	// partition, at every look.
	waitcond.For(t, "B to give up", 90*time.Second, func() bool {
		if state, assigned := f.members(); state != "" && (state != "Stable" || len(assigned) != 1 || len(assigned[0]) != parts) {
			t.Fatalf("the group changed while B could not reach Port: %s, partitions %v", state, assigned)
		}
		return b.Exited()
	})
	if st, _ := b.State(); st.ExitCode() != 1 {
		t.Errorf("B: %s, want exit status 1", st)
	}
	if log := b.Log(); !strings.Contains(log, "port api") {
		t.Errorf("B's log does not say Port was the problem:\n%s", log)
	}
	for i, r := range f.env.WaitAllClosed(t, ids, 60*time.Second) {
		if r.Status != "SUCCESS" {
			t.Errorf("%s: %s %q, want SUCCESS", ids[i], r.Status, r.StatusLabel)
		}
	}
	f.closedEach(ids)
}
