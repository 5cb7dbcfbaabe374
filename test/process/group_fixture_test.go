//go:build linux

package process_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/test/harness"
)

// The fixture of the tests of runs outliving the group's changes (README "Delivery"): agent
// processes in one group, runs produced onto chosen partitions, each execution of a command
// recorded from its start to the death of its whole process tree, and the group as its
// coordinator describes it.

// recordScript is the actions' command: $1 the record file, $2 a directory for locks, $3
// how long the first execution of a run lasts (later ones, reruns, last 1s). Before it
// writes its start line it takes a lock on a file of its own that every process of its
// tree inherits (the sleep too), so the lock is free only once the whole tree is dead:
// also when the tree is killed by SIGKILL, when no trap can write an end line.
const recordScript = `#!/bin/sh
lock="$2/$PORT_RUN_ID.$$"
exec 9>"$lock"
flock 9
secs="$3"
if grep -q "^start $PORT_RUN_ID " "$1" 2>/dev/null; then secs=1; fi
echo "start $PORT_RUN_ID $(date +%s.%N) $lock" >> "$1"
sleep "$secs"
echo "end $PORT_RUN_ID $(date +%s.%N) $lock" >> "$1"
`

// groupFixture is one test's world: an Env, its agents' processes, the command's record.
type groupFixture struct {
	t       *testing.T
	env     *harness.Env
	ps      *harness.Processes
	bin     string
	dir     string
	cmdDir  string // the commands' script, record and locks (their sandbox allows it)
	record  *execRecord
	script  string
	parts   int
	produce *kgo.Client // onto a partition of the test's choosing
	adm     *kadm.Client
}

func newGroupFixture(t *testing.T, partitions int) *groupFixture {
	t.Helper()
	// These tests mostly wait (runs of 30-40s, session timeouts, drains), each on a broker,
	// topic, group, emulator and directories of its own, its agents and commands of the test's
	// uid: they run beside each other (package documentation).
	t.Parallel()
	if testing.Short() {
		t.Skip("runs of many seconds: skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux (flock, SIGSTOP, the exec shim)")
	}
	env := harness.New(t, partitions)
	if len(env.Broker.Opts) > 0 {
		t.Skip("the agent processes get only a config file; run on a PLAINTEXT broker")
	}
	f := &groupFixture{t: t, env: env, ps: harness.NewProcesses(t), bin: harness.Binary(t), dir: t.TempDir(), parts: partitions}
	if err := os.Chmod(f.dir, 0o777); err != nil { // agents may run commands as another uid
		t.Fatal(err)
	}
	// The commands' own directory: their sandbox may read and write it, not the rest of
	// f.dir (the agents' configs).
	f.cmdDir = filepath.Join(f.dir, "cmd")
	if err := os.Mkdir(f.cmdDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.cmdDir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	f.script = filepath.Join(f.cmdDir, "record.sh")
	if err := os.WriteFile(f.script, []byte(recordScript), 0o755); err != nil {
		t.Fatal(err)
	}
	locks := filepath.Join(f.cmdDir, "locks")
	if err := os.Mkdir(locks, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locks, 0o777); err != nil {
		t.Fatal(err)
	}
	f.record = watchRecord(t, filepath.Join(f.cmdDir, "record"))
	f.produce = env.Broker.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	f.adm = env.Broker.Admin(t)
	return f
}

// actions is the overlay of two actions running the record script for secs, one per
// onInterrupted setting, and quick_action, which runs /bin/true. The record script's
// sandbox lets it read and write f.cmdDir (its script, record and locks).
func (f *groupFixture) actions(secs int) string {
	cmd := fmt.Sprintf("[%q, %q, %q, %q]", f.script, f.record.path, filepath.Join(f.cmdDir, "locks"), strconv.Itoa(secs))
	sandbox := fmt.Sprintf("{read: [%[1]q], write: [%[1]q]}", f.cmdDir)
	return fmt.Sprintf(`
actions:
  rerun_action: {command: %[1]s, onInterrupted: rerun, sandbox: %[2]s}
  fail_action: {command: %[1]s, onInterrupted: fail, sandbox: %[2]s}
  quick_action: {command: ["/bin/true"]}
`, cmd, sandbox)
}

// config writes an agent's config file (the Env's base with overlay) and returns its path.
func (f *groupFixture) config(name, overlay string) string {
	dir := filepath.Join(f.dir, "config-"+name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	return f.env.ConfigFile(f.t, dir, overlay)
}

// start starts an agent process.
func (f *groupFixture) start(name, cfgPath string) *harness.Process {
	return f.ps.Agent(name, f.bin, cfgPath, harness.ProcessOptions{})
}

// newRun registers a run of action in Port and produces its signed message onto partition.
func (f *groupFixture) newRun(id, action string, partition int32) time.Time {
	f.t.Helper()
	f.env.Emu.RegisterRun(id, action)
	return f.produceCopy(id, f.env.Sign(f.t, harness.RunMessage(id, action)), partition)
}

// produceCopy produces value as the message of run id onto partition, and returns when.
func (f *groupFixture) produceCopy(id string, value []byte, partition int32) time.Time {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at := time.Now()
	rec := &kgo.Record{Topic: f.env.Topic, Partition: partition, Key: []byte(id), Value: value}
	if err := f.produce.ProduceSync(ctx, rec).FirstErr(); err != nil {
		f.t.Fatalf("producing %s onto partition %d: %v", id, partition, err)
	}
	return at
}

// quickRuns produces a run of quick_action on every partition.
func (f *groupFixture) quickRuns(prefix string) (ids []string, produced map[string]time.Time) {
	produced = map[string]time.Time{}
	for p := range int32(f.parts) {
		id := fmt.Sprintf("r_%s_quick_%d", prefix, p)
		ids = append(ids, id)
		produced[id] = f.newRun(id, "quick_action", p)
	}
	return ids, produced
}

// closedWithin waits for the runs and checks that each ended SUCCESS within d of being
// produced.
func (f *groupFixture) closedWithin(ids []string, produced map[string]time.Time, d time.Duration) {
	f.t.Helper()
	for i, r := range f.env.WaitAllClosed(f.t, ids, 60*time.Second) {
		took := r.EndedAt.Sub(produced[ids[i]])
		f.t.Logf("%s: closed %s after it was produced: %s", ids[i], took.Round(time.Millisecond), r.Status)
		if took > d || r.Status != "SUCCESS" {
			f.t.Errorf("%s: %s %q %s after it was produced; want SUCCESS within %s", ids[i], r.Status, r.StatusLabel, took.Round(time.Millisecond), d)
		}
	}
}

// runsOnEveryPartition produces n runs (n a multiple of the partitions) spread evenly over
// the partitions: a round of rerun_action on every partition, then of fail_action, and so on.
func (f *groupFixture) runsOnEveryPartition(prefix string, n int) (ids []string, produced map[string]time.Time) {
	produced = map[string]time.Time{}
	for i := range n {
		id := fmt.Sprintf("r_%s_%d", prefix, i)
		action := []string{"rerun_action", "fail_action"}[(i/f.parts)%2]
		produced[id] = f.newRun(id, action, int32(i%f.parts))
		ids = append(ids, id)
	}
	return ids, produced
}

// members is how the group's coordinator describes it now: "" unless stable, else the
// partitions of each member.
func (f *groupFixture) members() (state string, assigned [][]int32) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	groups, err := f.adm.DescribeGroups(ctx, f.env.Group)
	if err != nil {
		return "", nil
	}
	g, ok := groups[f.env.Group]
	if !ok || g.Err != nil {
		return "", nil
	}
	for _, m := range g.Members {
		var ps []int32
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range ca.Topics {
				if tp.Topic == f.env.Topic {
					ps = append(ps, tp.Partitions...)
				}
			}
		}
		assigned = append(assigned, ps)
	}
	return g.State, assigned
}

// waitMembers waits until the group is stable with n members that share every partition.
func (f *groupFixture) waitMembers(n int, timeout time.Duration) {
	f.t.Helper()
	f.ps.WaitFor(fmt.Sprintf("the group to be stable with %d members sharing the %d partitions", n, f.parts), timeout, func() bool {
		state, assigned := f.members()
		if state != "Stable" || len(assigned) != n {
			return false
		}
		total := 0
		for _, ps := range assigned {
			if len(ps) == 0 {
				return false
			}
			total += len(ps)
		}
		return total == f.parts
	})
}

// closedEach checks what every run must show whatever happened to the group: one accepted
// termination and no refused one, executions that never overlap and all ended, and Port's
// termination after the last of them was last seen alive. It returns the runs.
func (f *groupFixture) closedEach(ids []string) map[string]emulator.RunState {
	f.t.Helper()
	execs := f.record.executions()
	out := map[string]emulator.RunState{}
	for _, id := range ids {
		r, _ := f.env.Emu.Run(id)
		out[id] = r
		if r.Terminations != 1 || r.RejectedTerminations != 0 {
			f.t.Errorf("%s: %d terminations, %d refused; want 1 and 0", id, r.Terminations, r.RejectedTerminations)
		}
		ex := execs[id]
		for i, e := range ex {
			if e.end.IsZero() {
				f.t.Errorf("%s: execution %d (started %s) still running", id, i, e.start.Format(stampLayout))
				continue
			}
			if i > 0 && ex[i-1].overlaps(e) {
				f.t.Errorf("%s: execution %d started at %s, while execution %d was alive at %s", id, i,
					e.start.Format(stampLayout), i-1, ex[i-1].alive.Format(stampLayout))
			}
		}
		if r.EndedAt == nil {
			f.t.Errorf("%s: not closed in Port", id)
		} else if n := len(ex); n > 0 && r.EndedAt.Before(ex[n-1].alive) {
			f.t.Errorf("%s: Port closed it at %s, while its last execution was alive at %s (%s %q)", id,
				r.EndedAt.Format(stampLayout), ex[n-1].alive.Format(stampLayout), r.Status, r.StatusLabel)
		}
		f.t.Logf("%s: %d execution(s), %s %q", id, len(ex), r.Status, r.StatusLabel)
	}
	return out
}

// lookups counts Port's answers to GET requests for run id (the run's lookups and watches).
func (f *groupFixture) lookups(id string) int {
	n := 0
	for _, r := range f.env.Emu.Requests() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/runs/"+id) {
			n++
		}
	}
	return n
}

const stampLayout = "15:04:05.000"

// execution is one execution of a command: its start line, and the end of its whole tree.
// end is when a poll first found the tree dead, up to a poll (more under load) after it
// died; alive is the latest time the tree is known to have lived (its lock held at a poll,
// or its end line). Checks of order use alive, so that a late poll never fails a test.
type execution struct {
	start, end, alive time.Time
	lock              string
}

// overlaps says whether next started while e was still alive.
func (e execution) overlaps(next execution) bool { return next.start.Before(e.alive) }

// execRecord reads the record script's lines as they come, and watches each execution's
// lock to see when its whole process tree died (an end line says it first when the script
// got that far).
type execRecord struct {
	t    testing.TB
	path string

	mu    sync.Mutex
	execs map[string][]*execution // run id -> its executions, in order
	byLck map[string]*execution
	read  int64 // bytes of the record read so far
}

// watchRecord polls the record every 5ms until the test ends.
func watchRecord(t testing.TB, path string) *execRecord {
	x := &execRecord{t: t, path: path, execs: map[string][]*execution{}, byLck: map[string]*execution{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			x.poll()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return x
}

// poll reads new lines, and notes the end of every execution whose lock is free.
func (x *execRecord) poll() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if b, err := os.ReadFile(x.path); err == nil && int64(len(b)) > x.read {
		fresh := b[x.read:]
		if n := strings.LastIndexByte(string(fresh), '\n'); n >= 0 { // whole lines only
			x.read += int64(n + 1)
			for _, line := range strings.Split(string(fresh[:n]), "\n") {
				x.line(line)
			}
		}
	}
	now := time.Now() // before the checks: a lock found held was held at now or later
	for lock, e := range x.byLck {
		if e.end.IsZero() {
			if lockFree(lock) {
				e.end = now
			} else {
				e.alive = now
			}
		}
		if !e.end.IsZero() {
			delete(x.byLck, lock)
		}
	}
}

func (x *execRecord) line(line string) {
	f := strings.Fields(line)
	if len(f) != 4 {
		x.t.Errorf("record: bad line %q", line)
		return
	}
	secs, err := strconv.ParseFloat(f[2], 64)
	if err != nil {
		x.t.Errorf("record: bad time in %q", line)
		return
	}
	at := time.Unix(0, int64(secs*1e9))
	switch f[0] {
	case "start":
		e := &execution{start: at, alive: at, lock: f[3]}
		x.execs[f[1]] = append(x.execs[f[1]], e)
		x.byLck[f[3]] = e
	case "end":
		if e, ok := x.byLck[f[3]]; ok {
			if at.After(e.alive) {
				e.alive = at
			}
			if e.end.IsZero() {
				e.end = at
			}
		}
	}
}

// lockFree says whether the lock of an execution can be taken: its whole tree is dead.
func lockFree(path string) bool {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	return syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

// executions is a copy of what the record says so far.
func (x *execRecord) executions() map[string][]execution {
	x.poll()
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string][]execution{}
	for id, es := range x.execs {
		for _, e := range es {
			out[id] = append(out[id], *e)
		}
	}
	return out
}

// started is how many executions started, of the given runs.
func (x *execRecord) started(ids []string) int {
	execs := x.executions()
	n := 0
	for _, id := range ids {
		n += len(execs[id])
	}
	return n
}

// running is the runs of ids with an execution under way.
func (x *execRecord) running(ids []string) []string {
	execs := x.executions()
	var out []string
	for _, id := range ids {
		if ex := execs[id]; len(ex) > 0 && ex[len(ex)-1].end.IsZero() {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// ranOnceUncut waits for the long runs ids to be closed, and checks that each succeeded,
// was not cancelled, and was executed once (closedEach besides).
func (f *groupFixture) ranOnceUncut(ids []string) {
	f.t.Helper()
	runs := f.env.WaitAllClosed(f.t, ids, 3*longRun*time.Second)
	for i, r := range runs {
		if r.Status != "SUCCESS" || strings.Contains(r.StatusLabel, "cancel") {
			f.t.Errorf("%s: %s %q, want SUCCESS and not cancelled", ids[i], r.Status, r.StatusLabel)
		}
	}
	f.closedEach(ids)
	for id, ex := range f.record.executions() {
		if len(ex) != 1 {
			f.t.Errorf("%s: %d executions, want 1", id, len(ex))
		}
	}
}
