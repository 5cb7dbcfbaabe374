package agent

import "github.com/port-runner/port-runner/metrics"

// source is the agent as metrics.Source.
type source struct {
	a     *Agent
	ready func() error
}

// Snapshot is the run lifecycle as the metrics and /status show it. Busy slots are the runs
// holding one of the pool's running slots: a run takes one once its action's own limit lets
// it start, and holds it until it is closed. (Runs queued for their action's limit, and the
// consumer's reservations while it waits for records, hold admissions, not slots: an idle
// replica shows free.)
func (s source) Snapshot() metrics.Snapshot {
	runs := s.a.lives.list()
	for i := range runs {
		if s.a.watch.cancelled(runs[i].RunID) {
			runs[i].Outcome = cancelledInPort
		}
	}
	iso := s.a.iso.status()
	snap := metrics.Snapshot{
		SlotsBusy: s.a.lives.slotsBusy(), SlotsCapacity: s.a.cfg.Executor.MaxConcurrent,
		Actions: s.a.cfg.ActionNames(), Runs: runs, Isolation: &iso,
		Topic: s.a.kafka.Topic, Finished: s.a.lives.finishedList(s.a.cfg.Port.PortAppURL()),
	}
	if s.a.consumer != nil {
		for p := range s.a.consumer.Unstarted() { // one entry per partition owned
			snap.Partitions = append(snap.Partitions, p)
		}
	}
	return snap
}

func (s source) Ready() error { return s.ready() }
