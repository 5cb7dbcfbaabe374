//go:build linux

package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/port-runner/port-runner/test/harness"
)

// A rolling update that moves the group from groupProtocol classic to consumer (KIP-848):
// the first replica of the new protocol converts the group, while a classic replica still
// runs long runs on every partition. The classic replica goes on confirming its membership
// (its description of the group now comes from the consumer group's API), so its runs go
// on, are executed once and closed once, and are not cancelled; new runs close meanwhile.
func TestRollingMigrationToTheConsumerProtocol(t *testing.T) {
	const parts = 4
	f := newGroupFixture(t, parts)
	if f.env.Broker.Kind == harness.KindKfake {
		t.Skip("kfake does not convert a classic group that has members (KAFKA_BROKERS: a real broker)")
	}
	classic := f.config("classic", f.actions(longRun)+`
kafka: {groupProtocol: classic}
executor: {maxConcurrent: 16}
`)
	consumer := f.config("consumer", f.actions(longRun)+`
kafka: {groupProtocol: consumer}
executor: {maxConcurrent: 16}
`)
	f.start("A", classic)
	f.waitMembers(1, 60*time.Second)
	ids, _ := f.runsOnEveryPartition("migrate", 2*parts)
	f.ps.WaitFor("every run to start", 60*time.Second, func() bool { return f.record.started(ids) == len(ids) })

	f.start("B", consumer)
	f.ps.WaitFor("the converted group to have both replicas, each with partitions", 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gs, err := f.adm.DescribeConsumerGroups(ctx, f.env.Group)
		if err != nil {
			return false
		}
		g, ok := gs[f.env.Group]
		if !ok || g.Err != nil || len(g.Members) != 2 {
			return false
		}
		for _, m := range g.Members {
			if len(m.Assignment[f.env.Topic]) == 0 {
				return false
			}
		}
		return true
	})
	quick, produced := f.quickRuns("migrate")
	f.closedWithin(quick, produced, 20*time.Second)

	f.ranOnceUncut(ids)
	f.env.WaitCommittedToEnd(t, 3*time.Minute)
}
