//go:build linux

package process_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/test/harness"
)

const (
	actionName = "chaos"
	partitions = 6

	defaultRuns     = 200
	maxSleepMs      = 500
	shutdownTimeout = 3 * time.Second
	// shutdownMargin is what a SIGTERMed agent may take beyond shutdownTimeout:
	// closing the cancelled runs in Port, the final commit, leaving the group.
	shutdownMargin = 7 * time.Second

	statusSuccess = "SUCCESS"
	statusFailure = "FAILURE"
)

// chaosScript is the action's command: $1 is the ids file, $2 the pids dir. The id is
// appended after the sleep, so a run killed mid-way may or may not have appended it; what
// must never happen is that it appears twice. It also leaves a grandchild that never ends
// by itself (a subshell, so its command line names the script): it must die with its run,
// and with a killed agent too, which Pdeathsig alone would not do.
const chaosScript = `#!/bin/sh
echo $$ >> "$2/$PORT_RUN_ID.pid"
( while :; do sleep 1; done ) &
echo $! >> "$2/$PORT_RUN_ID.gc"
sleep "$(awk -v ms="${SLEEP_MS:-0}" 'BEGIN { printf "%.3f", ms / 1000 }')"
echo "$PORT_RUN_ID" >> "$1"
echo "run $PORT_RUN_ID slept ${SLEEP_MS}ms"
`

// TestChaos proves the delivery guarantees (README "Delivery") with real agent processes,
// not goroutines; see the package documentation.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("chaos test: needs Linux (/proc, Pdeathsig)")
	}
	n := chaosRuns(t)
	testStart := time.Now()
	f := newChaosFixture(t)
	h, script := f.h, f.script
	t.Logf("broker: %s %v, topic %s, group %s, %d runs", h.Broker.Kind, h.Broker.Brokers, h.Topic, h.Group, n)

	ps := harness.NewProcesses(t)
	bin := harness.Binary(t)
	start := func(name string) *harness.Process { return ps.Agent(name, bin, f.cfgPath, harness.ProcessOptions{}) }
	a, b, c := start("A"), start("B"), start("C")

	// The runs: ids sort in production order; sleeps 0-500 ms.
	ids := make([]string, n)
	width := max(4, len(strconv.Itoa(n-1)))
	for i := range ids {
		ids[i] = fmt.Sprintf("r_chaos_%0*d", width, i)
	}

	// Produce steadily, in batches, so the kills land mid-flow. The pacing shapes the
	// load; nothing waits on it.
	producer := h.Broker.Client(t)
	prodCtx, stopProducing := context.WithCancel(context.Background())
	var prodWG sync.WaitGroup
	var prodErr error
	var produced time.Duration
	prodDone := make(chan struct{})
	t.Cleanup(func() { stopProducing(); prodWG.Wait() })
	prodWG.Go(func() {
		defer close(prodDone)
		start := time.Now()
		prodErr = produce(prodCtx, producer, h, ids)
		produced = time.Since(start)
	})
	// producerFailed stops a wait early when the producer gave up.
	producerFailed := func() {
		select {
		case <-prodDone:
			if prodErr != nil {
				t.Fatalf("producer: %v", prodErr)
			}
		default:
		}
	}

	ended := func() int { return h.ClosedCount(ids) }

	// SIGKILL A after about a quarter of the runs ended, while it runs commands (so some
	// runs are interrupted mid-way).
	var aRunning int
	ps.WaitFor("25% of the runs ended and A running commands", 60*time.Second+time.Duration(n)*30*time.Millisecond, func() bool {
		producerFailed()
		if ended() < n/4 {
			return false
		}
		aRunning = commandsOf(a.Pid(), script)
		return aRunning > 0
	})
	tKillA := time.Now()
	t.Logf("%s: %d/%d runs ended; SIGKILL A (running %d commands)", since(testStart), ended(), n, aRunning)
	a.Signal(t, syscall.SIGKILL)
	if !a.Wait(10 * time.Second) {
		t.Fatalf("A did not die within 10s of SIGKILL")
	}

	// SIGTERM B after about half ended: it must drain and exit 0 within shutdownTimeout.
	var bRunning int
	ps.WaitFor("50% of the runs ended and B running commands", 90*time.Second+time.Duration(n)*30*time.Millisecond, func() bool {
		producerFailed()
		if ended() < n/2 {
			return false
		}
		bRunning = commandsOf(b.Pid(), script)
		return bRunning > 0
	})
	t.Logf("%s: %d/%d runs ended; SIGTERM B (running %d commands)", since(testStart), ended(), n, bRunning)
	termB := time.Now()
	b.Signal(t, syscall.SIGTERM)
	if !b.Wait(shutdownTimeout + shutdownMargin) {
		t.Errorf("B still running %s after SIGTERM (shutdownTimeout %s + margin %s)", since(termB), shutdownTimeout, shutdownMargin)
	} else {
		st, at := b.State()
		t.Logf("B exited %s after SIGTERM: %s", at.Sub(termB).Round(time.Millisecond), st)
	}
	b.WantExit0(t)

	// A new agent joins.
	d := start("D")
	t.Logf("%s: %d/%d runs ended; D started", since(testStart), ended(), n)

	// Every run ends. The deadline leaves room for A's session timeout (15s by default),
	// during which A's partitions have no owner.
	allDeadline := 90*time.Second + time.Duration(n)*30*time.Millisecond
	ps.WaitFor("every run to end in Port", allDeadline, func() bool {
		producerFailed()
		return ended() == n
	})
	tAllEnded := time.Now()
	t.Logf("%s: all %d runs ended (%s after SIGKILL A)", since(testStart), n, tAllEnded.Sub(tKillA).Round(time.Millisecond))
	prodWG.Wait()
	if prodErr != nil {
		t.Fatalf("producer: %v", prodErr)
	}
	t.Logf("produced %d runs in %s", n, produced.Round(time.Millisecond))

	// 4. The group's committed offsets reach the end of every partition, while C and D run
	// (Port shows a run ended once its closing request is answered, a moment before its
	// agent finishes it in its ledger: stopped in that moment, the agent hands the run over
	// as leased, not finished, and nobody is left to commit past it), and after they stop.
	h.WaitCommittedToEnd(t, 30*time.Second)

	// Stop C and D: both drain and exit 0.
	termCD := time.Now()
	c.Signal(t, syscall.SIGTERM)
	d.Signal(t, syscall.SIGTERM)
	for _, p := range []*harness.Process{c, d} {
		if !p.Wait(shutdownTimeout + shutdownMargin - time.Since(termCD)) {
			t.Errorf("%s still running %s after SIGTERM", p.Name, since(termCD))
			continue
		}
		st, at := p.State()
		t.Logf("%s exited %s after SIGTERM: %s", p.Name, at.Sub(termCD).Round(time.Millisecond), st)
		p.WantExit0(t)
	}

	successIDs := checkPort(t, h, ids)
	checkIDsFile(t, f.idsFile, ids, successIDs)
	checkNoCommandLeft(t, f.pidsDir, script)
	h.WaitCommittedToEnd(t, 10*time.Second)

	t.Logf("timings: all runs ended %s after start, test body %s", tAllEnded.Sub(testStart).Round(time.Millisecond), since(testStart))
}

// chaosRuns is CHAOS_RUNS, or defaultRuns.
func chaosRuns(t *testing.T) int {
	t.Helper()
	s := os.Getenv("CHAOS_RUNS")
	if s == "" {
		return defaultRuns
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 8 {
		t.Fatalf("CHAOS_RUNS=%q: want an integer >= 8", s)
	}
	return n
}

// chaosFixture is the test's Env and the agents' shared config: the chaos action's script,
// which records into idsFile and pidsDir.
type chaosFixture struct {
	h                                 *harness.Env
	cfgPath, script, idsFile, pidsDir string
}

func newChaosFixture(t *testing.T) chaosFixture {
	t.Helper()
	broker := harness.NewBroker(t)
	if len(broker.Opts) > 0 {
		t.Skip("chaos test: the agent subprocesses get only a config file; run it on a PLAINTEXT broker")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out") // where the commands record, in their sandbox (sandbox.write)
	f := chaosFixture{h: harness.New(t, partitions, harness.WithBroker(broker)),
		script: filepath.Join(dir, "chaos.sh"), idsFile: filepath.Join(out, "ids"), pidsDir: filepath.Join(out, "pids")}
	if err := os.MkdirAll(f.pidsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.script, []byte(chaosScript), 0o755); err != nil {
		t.Fatal(err)
	}
	f.cfgPath = f.h.ConfigFile(t, dir, fmt.Sprintf(`
port: {requestsPerSecond: 500}
executor: {maxConcurrent: 8, shutdownTimeout: %s}
actions:
  %s:
    command: [%q, %q, %q]
    env: {SLEEP_MS: .properties.sleepMs}
    onInterrupted: fail
    sandbox: {write: [%q]}
`, shutdownTimeout, actionName, f.script, f.idsFile, f.pidsDir, out))
	return f
}

// checkPort: in Port, exactly one termination per run, none rejected, and only the expected
// outcomes. It returns the runs that succeeded.
func checkPort(t *testing.T, h *harness.Env, ids []string) map[string]bool {
	t.Helper()
	var (
		success, interrupted, cancelled int
		badTerminations, rejected       []string
		otherOutcome                    []string
		successIDs                      = map[string]bool{}
		rejectedTotal                   int
	)
	for _, id := range ids {
		r, ok := h.Emu.Run(id)
		if !ok {
			t.Errorf("run %s unknown to the emulator", id)
			continue
		}
		if r.Terminations != 1 {
			badTerminations = append(badTerminations, fmt.Sprintf("%s: %d terminations (%s %q)", id, r.Terminations, r.Status, r.StatusLabel))
		}
		if r.RejectedTerminations != 0 {
			rejectedTotal += r.RejectedTerminations
			rejected = append(rejected, fmt.Sprintf("%s: %d rejected (%s %q)", id, r.RejectedTerminations, r.Status, r.StatusLabel))
		}
		switch {
		case r.Status == statusSuccess:
			success++
			successIDs[id] = true
		case r.Status == statusFailure && strings.HasPrefix(r.StatusLabel, "interrupted:"):
			interrupted++
		case r.Status == statusFailure && strings.HasPrefix(r.StatusLabel, "cancelled:"):
			cancelled++
		default:
			otherOutcome = append(otherOutcome, fmt.Sprintf("%s: %s %q", id, r.Status, r.StatusLabel))
		}
	}
	t.Logf("outcomes: %d SUCCESS, %d FAILURE interrupted, %d FAILURE cancelled, %d other", success, interrupted, cancelled, len(otherOutcome))
	if len(badTerminations) > 0 {
		t.Errorf("%d run(s) without exactly one termination: %s", len(badTerminations), sample(badTerminations))
	}
	if len(rejected) > 0 {
		t.Errorf("%d rejected termination(s) on %d run(s): %s", rejectedTotal, len(rejected), sample(rejected))
	}
	if len(otherOutcome) > 0 {
		t.Errorf("%d run(s) ended other than SUCCESS or FAILURE interrupted:/cancelled:: %s", len(otherOutcome), sample(otherOutcome))
	}

	return successIDs
}

// checkIDsFile: no run executed to completion twice; every SUCCESS ran.
func checkIDsFile(t *testing.T, idsFile string, ids []string, successIDs map[string]bool) {
	t.Helper()
	counts, err := readIDs(idsFile)
	if err != nil {
		t.Fatalf("ids file: %v", err)
	}
	var dups, unknown, missing []string
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
	}
	for id, k := range counts {
		if k > 1 {
			dups = append(dups, fmt.Sprintf("%s x%d", id, k))
		}
		if !known[id] {
			unknown = append(unknown, id)
		}
	}
	for id := range successIDs {
		if counts[id] == 0 {
			missing = append(missing, id)
		}
	}
	slices.Sort(dups)
	slices.Sort(unknown)
	slices.Sort(missing)
	t.Logf("ids file: %d distinct ids, %d duplicated", len(counts), len(dups))
	if len(dups) > 0 {
		t.Errorf("%d run id(s) executed to completion more than once: %s", len(dups), sample(dups))
	}
	if len(unknown) > 0 {
		t.Errorf("%d unexpected id(s) in the ids file: %s", len(unknown), sample(unknown))
	}
	if len(missing) > 0 {
		t.Errorf("%d SUCCESS run(s) never appended their id (SUCCESS without a completed command): %s", len(missing), sample(missing))
	}

}

// checkNoCommandLeft: no command process is left running (Pdeathsig is delivered
// asynchronously: it polls), and none started twice.
func checkNoCommandLeft(t *testing.T, pidsDir, script string) {
	t.Helper()
	var err error
	var leftovers []string
	var started int
	deadline := time.Now().Add(5 * time.Second)
	for {
		leftovers, started, err = liveCommands(pidsDir, script)
		if err != nil {
			t.Fatalf("pids: %v", err)
		}
		if len(leftovers) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	reexecuted, err := reexecutions(pidsDir)
	if err != nil {
		t.Fatalf("pids: %v", err)
	}
	t.Logf("processes recorded: %d (commands and their grandchildren) for %d runs; %d run(s) started more than once", started, countFiles(pidsDir), len(reexecuted))
	if len(reexecuted) > 0 {
		t.Errorf("%d run(s) whose command started more than once (onInterrupted: fail never re-executes a started run): %s", len(reexecuted), sample(reexecuted))
	}
	if len(leftovers) > 0 {
		t.Errorf("%d command process(es) still running 5s after every agent stopped: %s", len(leftovers), sample(leftovers))
	}

}

// produce registers each run in the emulator (as Port does before publishing it) and
// produces its signed message keyed by run id, in 20 batches spread over n*10ms: about
// as fast as three agents consume, so the kills land while runs are still arriving.
func produce(ctx context.Context, cl *kgo.Client, h *harness.Env, ids []string) error {
	const batches = 20
	size := (len(ids) + batches - 1) / batches
	tick := time.NewTicker(time.Duration(len(ids)) * 10 * time.Millisecond / batches)
	defer tick.Stop()
	for start := 0; start < len(ids); start += size {
		if start > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		var recs []*kgo.Record
		for _, id := range ids[start:min(start+size, len(ids))] {
			body := fmt.Sprintf(`{"action":%q,"resourceType":"run","context":{"runId":%q},"payload":{"properties":{"sleepMs":%d}}}`,
				actionName, id, rand.IntN(maxSleepMs+1))
			value, err := runmsg.Sign(h.ClientSecret, time.Now().Unix(), []byte(body))
			if err != nil {
				return fmt.Errorf("sign %s: %w", id, err)
			}
			h.Emu.RegisterRun(id, actionName)
			recs = append(recs, &kgo.Record{Topic: h.Topic, Key: []byte(id), Value: value})
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := cl.ProduceSync(pctx, recs...).FirstErr()
		cancel()
		if err != nil {
			return fmt.Errorf("produce batch at %d: %w", start, err)
		}
	}
	return nil
}

// readIDs counts the lines of the ids file.
func readIDs(path string) (map[string]int, error) {
	counts := map[string]int{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return counts, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			counts[line]++
		}
	}
	return counts, sc.Err()
}

// reexecutions lists the runs whose command recorded more than one pid.
func reexecutions(pidsDir string) ([]string, error) {
	ents, err := os.ReadDir(pidsDir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".pid") {
			continue // grandchildren (.gc)
		}
		b, err := os.ReadFile(filepath.Join(pidsDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if k := len(strings.Fields(string(b))); k > 1 {
			out = append(out, fmt.Sprintf("%s x%d", strings.TrimSuffix(e.Name(), ".pid"), k))
		}
	}
	slices.Sort(out)
	return out, nil
}

func countFiles(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".pid") {
			n++
		}
	}
	return n
}

// liveCommands returns the command processes still running: every pid the script
// recorded, plus any process whose command line names the script (in case one was
// caught before it wrote its pid). It also returns how many pids were recorded.
func liveCommands(pidsDir, script string) (live []string, recorded int, err error) {
	ents, err := os.ReadDir(pidsDir)
	if err != nil {
		return nil, 0, err
	}
	seen := map[int]bool{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(pidsDir, e.Name()))
		if err != nil {
			return nil, 0, err
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue // a line being written when its agent died
			}
			recorded++
			seen[pid] = true
			if desc, ok := running(pid, script); ok {
				live = append(live, fmt.Sprintf("pid %d (%s): %s", pid, strings.TrimSuffix(e.Name(), ".pid"), desc))
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || seen[pid] {
			continue
		}
		if desc, ok := running(pid, script); ok {
			live = append(live, fmt.Sprintf("pid %d (no pid file): %s", pid, desc))
		}
	}
	return live, recorded, nil
}

// commandsOf counts the live command processes whose parent is the agent with that pid.
func commandsOf(agentPid int, script string) int {
	procs, _ := os.ReadDir("/proc")
	k := 0
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ok := running(pid, script); !ok {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command's parent is the agent, or the agent's exec shim (a child of the agent).
		if ppid := parentOf(stat); ppid == agentPid || parentOfPid(ppid) == agentPid {
			k++
		}
	}
	return k
}

// running reports whether pid is a live (not zombie) process running the script.
func running(pid int, script string) (string, bool) {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return "", false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return "", false
	}
	state := stat[i+2]
	if state == 'Z' || state == 'X' || state == 'x' {
		return "", false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(script)) {
		return "", false // gone, or the pid now belongs to another process
	}
	return fmt.Sprintf("state %c, %s", state, strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")), true
}

func sample(s []string) string {
	const show = 10
	if len(s) <= show {
		return strings.Join(s, "; ")
	}
	return strings.Join(s[:show], "; ") + fmt.Sprintf("; ... (%d more)", len(s)-show)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// parentOf reads the ppid from a /proc/<pid>/stat line; fields after "(comm)": state, ppid, ...
func parentOf(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return ppid
}

func parentOfPid(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	return parentOf(stat)
}
