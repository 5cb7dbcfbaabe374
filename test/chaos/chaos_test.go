package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
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
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/test/kafkatest"
)

const (
	clientID   = "chaos-client"
	secret     = "chaos-client-secret-0123456789abcdef"
	orgID      = "org_chaos"
	actionName = "chaos"
	partitions = 6

	defaultRuns     = 200
	maxSleepMs      = 500
	shutdownTimeout = 3 * time.Second
	// shutdownMargin is what a SIGTERMed agent may take beyond shutdownTimeout:
	// closing the cancelled runs in Port, the final commit, leaving the group.
	shutdownMargin = 7 * time.Second

	statusInProgress = "IN_PROGRESS"
	statusSuccess    = "SUCCESS"
	statusFailure    = "FAILURE"
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

// TestChaos is issue 4's acceptance test; see the package documentation.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("chaos test: needs Linux (/proc, Pdeathsig)")
	}
	n := defaultRuns
	if s := os.Getenv("CHAOS_RUNS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 8 {
			t.Fatalf("CHAOS_RUNS=%q: want an integer >= 8", s)
		}
		n = v
	}
	testStart := time.Now()

	cluster := kafkatest.New(t)
	if len(cluster.Opts) > 0 {
		t.Skip("chaos test: the agent subprocesses get only a config file; run it on a PLAINTEXT broker")
	}
	topic := cluster.Topic(t, partitions)
	group := cluster.Group(t)
	t.Logf("broker: %s %v, topic %s, group %s, %d runs", cluster.Kind, cluster.Brokers, topic, group, n)

	emu := emulator.New(emulator.Options{ClientID: clientID, ClientSecret: secret, OrgID: orgID, Topic: topic})
	emuCtx, stopEmu := context.WithCancel(context.Background())
	emuSrv, err := emu.Serve(emuCtx, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	baseURL := emuSrv.URL()
	t.Cleanup(func() { stopEmu(); _ = emuSrv.Wait() })

	dir := t.TempDir()
	bin := buildAgent(t, dir)
	idsFile := filepath.Join(dir, "ids")
	pidsDir := filepath.Join(dir, "pids")
	logDir := filepath.Join(dir, "logs")
	for _, d := range []string{pidsDir, logDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(dir, "chaos.sh")
	if err := os.WriteFile(script, []byte(chaosScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(agentConfig(baseURL, cluster.Brokers, topic, group, script, idsFile, pidsDir)), 0o644); err != nil {
		t.Fatal(err)
	}

	fl := newFleet(t, bin, cfgPath, logDir)
	a, b, c := fl.start("A"), fl.start("B"), fl.start("C")

	// The runs: ids sort in production order; sleeps 0-500 ms.
	ids := make([]string, n)
	width := max(4, len(strconv.Itoa(n-1)))
	for i := range ids {
		ids[i] = fmt.Sprintf("r_chaos_%0*d", width, i)
	}

	// Produce steadily, in batches, so the kills land mid-flow. The pacing shapes the
	// load; nothing waits on it.
	producer := cluster.Client(t)
	prodCtx, stopProducing := context.WithCancel(context.Background())
	var prodWG sync.WaitGroup
	var prodErr error
	var produced time.Duration
	prodDone := make(chan struct{})
	t.Cleanup(func() { stopProducing(); prodWG.Wait() })
	prodWG.Go(func() {
		defer close(prodDone)
		start := time.Now()
		prodErr = produce(prodCtx, producer, emu, topic, ids)
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

	ended := func() int {
		k := 0
		for _, r := range emu.Runs() {
			if r.Status != statusInProgress {
				k++
			}
		}
		return k
	}

	// SIGKILL A after about a quarter of the runs ended, while it runs commands (so some
	// runs are interrupted mid-way).
	var aRunning int
	fl.waitFor("25% of the runs ended and A running commands", 60*time.Second+time.Duration(n)*30*time.Millisecond, func() bool {
		producerFailed()
		if ended() < n/4 {
			return false
		}
		aRunning = commandsOf(a.cmd.Process.Pid, script)
		return aRunning > 0
	})
	tKillA := time.Now()
	t.Logf("%s: %d/%d runs ended; SIGKILL A (running %d commands)", since(testStart), ended(), n, aRunning)
	a.signal(syscall.SIGKILL)
	if !a.wait(10 * time.Second) {
		t.Fatalf("A did not die within 10s of SIGKILL")
	}

	// SIGTERM B after about half ended: it must drain and exit 0 within shutdownTimeout.
	var bRunning int
	fl.waitFor("50% of the runs ended and B running commands", 90*time.Second+time.Duration(n)*30*time.Millisecond, func() bool {
		producerFailed()
		if ended() < n/2 {
			return false
		}
		bRunning = commandsOf(b.cmd.Process.Pid, script)
		return bRunning > 0
	})
	t.Logf("%s: %d/%d runs ended; SIGTERM B (running %d commands)", since(testStart), ended(), n, bRunning)
	termB := time.Now()
	b.signal(syscall.SIGTERM)
	if !b.wait(shutdownTimeout + shutdownMargin) {
		t.Errorf("B still running %s after SIGTERM (shutdownTimeout %s + margin %s)", since(termB), shutdownTimeout, shutdownMargin)
	} else {
		t.Logf("B exited %s after SIGTERM: %s", b.exitTime.Sub(termB).Round(time.Millisecond), b.state)
	}
	b.wantExit0()

	// A new agent joins.
	d := fl.start("D")
	t.Logf("%s: %d/%d runs ended; D started", since(testStart), ended(), n)

	// Every run ends. The deadline leaves room for A's session timeout (45s by default),
	// during which A's partitions have no owner.
	allDeadline := 90*time.Second + time.Duration(n)*30*time.Millisecond
	fl.waitFor("every run to end in Port", allDeadline, func() bool {
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

	// Stop C and D: both drain and exit 0.
	termCD := time.Now()
	c.signal(syscall.SIGTERM)
	d.signal(syscall.SIGTERM)
	for _, p := range []*agentProc{c, d} {
		if !p.wait(shutdownTimeout + shutdownMargin - time.Since(termCD)) {
			t.Errorf("%s still running %s after SIGTERM", p.name, since(termCD))
			continue
		}
		t.Logf("%s exited %s after SIGTERM: %s", p.name, p.exitTime.Sub(termCD).Round(time.Millisecond), p.state)
		p.wantExit0()
	}

	// 1. Port: exactly one termination per run, none rejected; only the expected outcomes.
	var (
		success, interrupted, cancelled int
		badTerminations, rejected       []string
		otherOutcome                    []string
		successIDs                      = map[string]bool{}
		rejectedTotal                   int
	)
	for _, id := range ids {
		r, ok := emu.Run(id)
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

	// 2. The ids file: no run executed to completion twice; every SUCCESS ran.
	counts, err := readIDs(idsFile)
	if err != nil {
		t.Fatalf("ids file: %v", err)
	}
	var dups, unknown, missing []string
	known := make(map[string]bool, n)
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

	// 3. No command process left running. Pdeathsig is delivered asynchronously: poll.
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

	// 4. The group's committed offsets reach the end of every partition.
	adm := kadm.NewClient(cluster.Client(t))
	var behind []string
	deadline = time.Now().Add(10 * time.Second)
	for {
		behind, err = uncommitted(adm, topic, group)
		if err == nil && len(behind) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("offsets: %v", err)
	} else if len(behind) > 0 {
		t.Errorf("%d of %d partition(s) not committed to their end: %s", len(behind), partitions, strings.Join(behind, "; "))
	}

	t.Logf("timings: all runs ended %s after start, test body %s", tAllEnded.Sub(testStart).Round(time.Millisecond), since(testStart))
}

// agentConfig is the agents' config file (all agents share it).
func agentConfig(baseURL string, brokers []string, topic, group, script, idsFile, pidsDir string) string {
	q := make([]string, len(brokers))
	for i, b := range brokers {
		q[i] = strconv.Quote(b)
	}
	return fmt.Sprintf(`port:
  baseURL: %q
  clientID: %q
  clientSecret: %q
  orgID: %q
  requestsPerSecond: 500
kafka:
  brokers: [%s]
  topic: %q
  group: %q
  startOffset: earliest
executor:
  maxConcurrent: 8
  shutdownTimeout: %s
logs:
  flushInterval: 200ms
metrics:
  addr: "127.0.0.1:0"
actions:
  %s:
    command: [%q, %q, %q]
    env:
      SLEEP_MS: .properties.sleepMs
    onInterrupted: fail
`, baseURL, clientID, secret, orgID, strings.Join(q, ", "), topic, group, shutdownTimeout, actionName, script, idsFile, pidsDir)
}

// buildAgent builds ./cmd/port-runner into dir, with the exec shim beside it as shipped.
func buildAgent(t *testing.T, dir string) string {
	t.Helper()
	for _, name := range []string{"port-runner-shim", "port-runner"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
		}
	}
	return filepath.Join(dir, "port-runner")
}

// produce registers each run in the emulator (as Port does before publishing it) and
// produces its signed message keyed by run id, in 20 batches spread over n*10ms: about
// as fast as three agents consume, so the kills land while runs are still arriving.
func produce(ctx context.Context, cl *kgo.Client, emu *emulator.Emulator, topic string, ids []string) error {
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
			value, err := runmsg.Sign(secret, time.Now().Unix(), []byte(body))
			if err != nil {
				return fmt.Errorf("sign %s: %w", id, err)
			}
			emu.RegisterRun(id, actionName)
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(id), Value: value})
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

// fleet starts and tracks the agent processes.
type fleet struct {
	t       *testing.T
	bin     string
	cfgPath string
	logDir  string
	env     []string
	spawn   chan func()

	mu     sync.Mutex
	agents []*agentProc
}

// agentProc is one agent process.
type agentProc struct {
	name     string
	logPath  string
	cmd      *exec.Cmd
	signaled bool // the test signalled it: exiting is expected
	done     chan struct{}
	state    *os.ProcessState
	exitTime time.Time
	t        *testing.T
}

func newFleet(t *testing.T, bin, cfgPath, logDir string) *fleet {
	home := os.Getenv("HOME")
	if home == "" {
		home = t.TempDir()
	}
	f := &fleet{
		t: t, bin: bin, cfgPath: cfgPath, logDir: logDir,
		env:   []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "PORT_RUNNER_LOG_LEVEL=info"},
		spawn: make(chan func()),
	}
	// Agents get Pdeathsig, which fires when the forking OS thread exits: fork them from
	// one goroutine locked to its thread for the whole test, so they die with the test
	// process and never with a thread the Go runtime retires.
	spawnerDone := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for fn := range f.spawn {
			fn()
		}
		close(spawnerDone)
	}()
	// Cleanups run last-registered first: this one runs after every agent was killed.
	t.Cleanup(func() { close(f.spawn); <-spawnerDone })
	t.Cleanup(f.printLogsOnFailure)
	return f
}

// start starts an agent; it is SIGKILLed and waited for at the test's cleanup.
func (f *fleet) start(name string) *agentProc {
	f.t.Helper()
	logPath := filepath.Join(f.logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		f.t.Fatal(err)
	}
	cmd := exec.Command(f.bin, "run", "--config", f.cfgPath)
	cmd.Env = f.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error)
	f.spawn <- func() { started <- cmd.Start() }
	if err := <-started; err != nil {
		logFile.Close()
		f.t.Fatalf("start agent %s: %v", name, err)
	}
	p := &agentProc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{}), t: f.t}
	go func() {
		_ = cmd.Wait()
		p.exitTime = time.Now()
		p.state = cmd.ProcessState
		logFile.Close()
		close(p.done)
	}()
	f.t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	f.mu.Lock()
	f.agents = append(f.agents, p)
	f.mu.Unlock()
	f.t.Logf("agent %s started (pid %d), log %s", name, cmd.Process.Pid, logPath)
	return p
}

func (p *agentProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *agentProc) signal(sig syscall.Signal) {
	p.signaled = true
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Errorf("%s to agent %s: %v", sig, p.name, err)
	}
}

// wait reports whether the agent exited within timeout.
func (p *agentProc) wait(timeout time.Duration) bool {
	timer := time.NewTimer(max(timeout, 0))
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		return false
	}
}

func (p *agentProc) wantExit0() {
	p.t.Helper()
	if p.exited() && p.state.ExitCode() != 0 {
		p.t.Errorf("agent %s: %s, want exit status 0", p.name, p.state)
	}
}

// waitFor polls cond every 50ms until it holds; it fails the test at the deadline or
// when an agent the test did not signal exits.
func (f *fleet) waitFor(what string, timeout time.Duration, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		f.mu.Lock()
		for _, p := range f.agents {
			if !p.signaled && p.exited() {
				f.mu.Unlock()
				f.t.Fatalf("waiting for %s: agent %s exited on its own: %s", what, p.name, p.state)
			}
		}
		f.mu.Unlock()
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fleet) printLogsOnFailure() {
	if !f.t.Failed() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.agents {
		f.t.Logf("---- agent %s (%s), log %s ----\n%s", p.name, p.state, p.logPath, tail(p.logPath, 15, 20))
	}
}

// tail returns the last warning and error lines of an agent's log (at most problems)
// and its last lines.
func tail(path string, lines, problems int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var bad []string
	for _, l := range all {
		if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) ||
			strings.Contains(l, `"level":"fatal"`) || strings.Contains(l, `"level":"panic"`) || strings.HasPrefix(l, "panic:") {
			bad = append(bad, l)
		}
	}
	if len(bad) > problems {
		bad = bad[len(bad)-problems:]
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return fmt.Sprintf("warnings/errors (%d shown):\n%s\nlast %d lines:\n%s", len(bad), strings.Join(bad, "\n"), len(all), strings.Join(all, "\n"))
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

// uncommitted returns the partitions whose committed offset is not the end offset.
func uncommitted(adm *kadm.Client, topic, group string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	var behind []string
	for p := range int32(partitions) {
		end, ok := ends.Lookup(topic, p)
		if !ok || end.Err != nil {
			return nil, fmt.Errorf("end offset of partition %d: %v", p, end.Err)
		}
		at := int64(-1)
		if o, ok := committed.Lookup(topic, p); ok {
			if o.Err != nil {
				return nil, fmt.Errorf("committed offset of partition %d: %w", p, o.Err)
			}
			at = o.At
		}
		if end.Offset == 0 && at <= 0 {
			continue // an empty partition needs no commit
		}
		if at != end.Offset {
			behind = append(behind, fmt.Sprintf("partition %d committed %d, end %d", p, at, end.Offset))
		}
	}
	return behind, nil
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
