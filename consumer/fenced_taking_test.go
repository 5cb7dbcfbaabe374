package consumer

import (
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestARunTakenDuringAHandoverStopsWhenFenced: a run whose Take was recording its start
// when its partition was handed over is leased (the handover commit carried the start). If
// its member is then fenced under KIP-848, onLost stops it and counts it (so the member
// rejoins under a new id), and Take's next check no longer holds it under the fenced id. (It
// escaped both: the run started under an id its waiters may have seen go.)
func TestARunTakenDuringAHandoverStopsWhenFenced(t *testing.T) {
	c := &Consumer{opts: withLeaseDefaults(Options{Topic: "runs", GroupProtocol: "consumer"}),
		ledger: newLedger(5 * time.Minute), members: newMembers(2*time.Second, 5*time.Second),
		runs: map[*Ticket]struct{}{}, log: zap.NewNop(), unknownPrior: map[topicPartition]bool{}}
	assignFresh(c.ledger, "runs", 0)
	r := rec("runs", 0, 0)
	p, ok, _ := c.ledger.add(r)
	if !ok {
		t.Fatal("add")
	}
	tk := c.newTicket(r, p)
	// Take begins: taking, start marked under member X; its own commit has not answered yet.
	tk.setTaking(true)
	lease := Lease{Holder: "X", Bound: time.Minute}
	m, err := c.ledger.markStarted(r, tk.pl, lease)
	if err != nil {
		t.Fatal(err)
	}
	// The partition is revoked; the handover commit (carrying the start) is accepted.
	parts := map[string][]int32{"runs": {0}}
	c.ledger.revoking(parts)
	tp := topicPartition{"runs", 0}
	s := c.ledger.toCommit(map[topicPartition]Lease{tp: lease})[tp]
	c.ledger.committed(tp, s)
	c.lose(c.ledger.release(parts), &handover{committed: map[topicPartition]bool{tp: true}}, false)
	if !tk.leased {
		t.Fatal("want the taking ticket leased by the handover")
	}
	// KIP-848 fence: onLost releases what is left (nothing) and stops leased runs.
	n := c.lose(c.ledger.release(map[string][]int32{}), nil, true)
	// Take's next check: covered, and member X is still memberID() (franz-go kept the id).
	covered, _ := c.ledger.committedVersion(m)
	holdErr := tk.hold("X")
	t.Logf("leased stopped by onLost: %d; Take covered=%v hold=%v; stopped=%v", n, covered, holdErr, tk.Stopped().Err())
	if n == 0 || holdErr == nil {
		t.Errorf("the taking leased run escaped onLost: counted %d (no rejoin asked), hold %v (run starts under the fenced id)", n, holdErr)
	}
}
