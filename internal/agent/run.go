package agent

import (
	"context"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/consumer"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// run is one record's run on its way through this replica: the one model of its state
// (README "Delivery"). The steps (steps.go, steps_run.go) move it on, one short function
// each, and say what comes next; its phase (lifecycle.go) is what shutdown, /status and the
// metrics read, and its lease (lease.go) what its way in keeps of it.
type run struct {
	lease runLease
	raw   []byte
	shape shape  // how raw reads
	id    string // the run's id as its way in knew it before decoding (a claim's); "" if none
	at    runAt
	where string    // topic/partition@offset, for logs
	sent  time.Time // the message's time: its signature's, else the record's
	msg   runmsg.Run
	act   *action
	life  *runLife
	log   *zap.Logger
	// stop ends at the first signal (nothing new starts); work when running commands must
	// stop (shutdownTimeout, a second signal); report outlives work for the closings.
	stop, work, report context.Context
	claimed            bool         // holds the run id in a.seen
	old                bool         // signed longer ago than security.maxMessageAge
	interrupted        bool         // an earlier holder took it and can no longer act on it
	rerun              bool         // onInterrupted: rerun
	slot               func()       // gives the pool slot back; nil when none is held
	taking             *pendingTake // its take under way (take); nil: none (try)
	watched            *watched     // its Port watch, from its take's success (runGate)
	ex                 executed
}

// step is one step of a run's life: it acts, and returns the verdict.
type step func(a *Agent, r *run) verdict

// verdict is what a step decided: the next step, or the end: finished (decided here: closed
// in Port, or skipped for good; the record may be committed past) or left (the next holder
// decides it).
type verdict struct {
	next     step
	finished bool
}

func then(s step) verdict { return verdict{next: s} }

var (
	finished = verdict{finished: true}
	left     = verdict{}
)

// arrival is a run as its way in hands it over: its message, its lease, and where it came
// from (for /status and logs).
type arrival struct {
	lease runLease
	raw   []byte
	shape shape  // how raw reads (a run message unless said)
	id    string // a claimed run's id, from the claim; "" for a run message
	at    runAt
	where string    // e.g. topic/partition@offset
	sent  time.Time // the message's time when it carries no signature
}

// shape is how a way in's bytes read (decode): a run message (the runs topic; signed), or one
// run or node run of Port's claim-pending answers (unsigned: the authenticated answer vouches
// for it).
type shape int

const (
	shapeMessage shape = iota
	shapeClaimedRun
	shapeClaimedNodeRun
)

// arrive takes one arrived run through the lifecycle and ends its lease: finished, or left
// for the next holder (a run not taken because the agent stops is the next holder's). Every
// way in calls it, one goroutine per run: stop ends at the first signal, work when running
// commands must stop, report outlives work for the closings.
func (a *Agent) arrive(stop, work, report context.Context, in arrival) {
	r := &run{lease: in.lease, raw: in.raw, shape: in.shape, id: in.id, at: in.at, where: in.where, sent: in.sent,
		stop: stop, work: work, report: report, log: a.log}
	r.lease.release(a.live(r, decode))
}

// handle is the Kafka way in's arrival: one consumed record under its ticket's lease.
func (a *Agent) handle(stop, work, report context.Context, t *consumer.Ticket) {
	rec := t.Record
	a.arrive(stop, work, report, arrival{lease: kafkaLease{t}, raw: rec.Value,
		at:    runAt{rec.Topic, rec.Partition, rec.Offset},
		where: recordAt(rec.Topic, rec.Partition, rec.Offset), sent: rec.Timestamp})
}

// recordAt is where a record is, as the agent's log says it ("at"): topic/partition@offset.
// Built in a buffer on the stack: fmt.Sprintf boxed its arguments, for every run.
func recordAt(topic string, partition int32, offset int64) string {
	var buf [64]byte
	b := append(buf[:0], topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, '@')
	b = strconv.AppendInt(b, offset, 10)
	return string(b)
}

// live drives r from first to its end, then lets go of what it held here, and says whether
// it finished.
func (a *Agent) live(r *run, first step) (done bool) {
	defer func() { a.letGo(r, done) }()
	v := then(first)
	for v.next != nil {
		v = v.next(a, r)
	}
	return v.finished
}

// letGo gives back what the run held here: its slot, its id, its place in lives; a run
// decided here joins its way in's memory of run ids.
func (a *Agent) letGo(r *run, done bool) {
	if r.slot != nil {
		r.life.dropSlot()
		r.slot()
	}
	if done && r.msg.ID != "" {
		r.lease.handled(r.msg.ID, r.sent)
	}
	if r.life != nil {
		if done {
			r.life.to(phaseCommittable)
		}
		r.life.leave()
	}
	if r.claimed {
		a.seen.end(r.msg.ID, done)
	}
}

// received notes the decoded run: its action, its logs, its place in lives.
func (a *Agent) received(r *run, msg runmsg.Run, act *action) {
	r.msg, r.act = msg, act
	if !msg.SignedAt.IsZero() {
		r.sent = msg.SignedAt
		// A message signed long ago may be a replay (verified signatures only: an
		// unverified timestamp proves nothing): Port decides whether its run is still open.
		r.old = time.Since(msg.SignedAt) > a.cfg.Security.MaxMessageAge.D()
	}
	// Derived when first written to: a run that goes well writes only "run started" and "run
	// closed", which spell these fields out rather than make every run clone a core.
	r.log = a.log.WithLazy(zap.String("run_id", msg.ID), zap.String("action", msg.Action))
	r.life = a.lives.receive(r.at, msg.ID, msg.Action, r.lease)
	// Port requests about this run (retries, token refreshes) log its action too.
	r.report = portapi.WithLogFields(r.report, zap.String("action", msg.Action))
}

// count adds the message to messages_total{outcome}.
func (a *Agent) count(outcome string) { a.metrics.CountMessages(outcome, 1) }
