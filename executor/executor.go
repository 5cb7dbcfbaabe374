// Package executor runs one Port action run as a child process: it builds the
// child's (minimal) environment, captures stdout and stderr through one pipe so
// their relative order survives, enforces timeouts and cancellation on the whole
// process group, and classifies how the command ended as a Port statusLabel.
//
// Run only orchestrates. How a process is started, signalled and reaped is in
// process.go and per platform: process_linux.go and shim_linux.go (the exec shim,
// a child subreaper, Pdeathsig) and process_other.go (other unix: a plain process
// group, with the guarantees it lacks listed there).
package executor

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Spec describes one command to run.
type Spec struct {
	RunID, Action string
	// Argv is the command line; no shell is involved. Argv[0] is resolved
	// against the child's PATH (which spec.Env may override), not the agent's.
	Argv []string
	// Env holds configured extra variables (already evaluated).
	Env map[string]string
	// Dir is the working directory; "" means the agent's current directory.
	Dir string
	// Timeout bounds the run; 0 means no timeout.
	Timeout time.Duration
	// RunFile is written to a file (0600) in the run's directory (0700) whose
	// path is PORT_RUN_FILE.
	RunFile []byte
	// RunDir is the run's directory when the caller made it (RunsDir.NewRunDir, so it
	// can put files of its own there) and removes it; "" makes one that is removed when
	// Run returns.
	RunDir string
	// Isolation confines the command: sandbox, uid, limits (README "Isolation").
	Isolation Isolation
	// KillGrace is the time between SIGTERM and SIGKILL to the process group
	// on timeout or cancel; 0 means DefaultKillGrace.
	KillGrace time.Duration
	// Shim, when set, is the command prefix of the exec shim (see ShimFor and
	// package internal/shim): it takes every descendant of the command down
	// when the command ends, times out or the agent dies. Linux only.
	Shim []string
	// Fence and Held, when both set, keep the command alive only while the agent holds the
	// run's lease (README "Delivery"): the executor renews the shim every Fence/4 for as long
	// as Held says so, and the shim kills the command's tree Fence after the last renewal,
	// also when the agent is frozen and cannot act (package internal/shim). Once Held says
	// no, renewals stop for good. Without a shim the executor kills the group itself.
	Fence time.Duration
	Held  func() bool
	// Lasts, when set, says how long from now the held lease lasts whatever becomes of the
	// agent (0: only while renewed); Lasting, closed once it does, asks for a renewal at
	// once; OnLasting hears the first renewal that told the shim so (see leaseRenewal).
	Lasts     func() time.Duration
	Lasting   <-chan struct{}
	OnLasting func(lasts time.Duration)
	Renewals  *Renewals // when set, renews the lease (Fence) with all others'; else Run does
	// Reaper, when set, is the agent's child subreaper (NewReaper): it learns which
	// processes Run starts, so it never takes them for orphans.
	Reaper *Reaper
	// OnStart, when set, is called once, right after the process Run starts
	// (the shim, or the command where no shim is used) is running, with its
	// pid (with a Gate, once it passed, before the command may start). With the
	// shim, every process of the command is its descendant while it lives.
	OnStart func(pid int)
	// Gate, when set, holds the command back until it returns nil: Run first readies all it
	// can (the run's directory and file, its confinement, and with the shim the shim itself,
	// which sets the command up to its exec and waits for a go: shim.GateFlag; without one,
	// all but the fork), then calls Gate on the goroutine that called Run. Only if Gate
	// returns nil and ctx is not done does the command start; otherwise it never does, the
	// shim is ended, and Run returns a Result labelled "not started: " and Gate's error (or
	// ctx's cancel label).
	// The agent's gate is the run's start mark (README "Delivery").
	Gate func() error
	// panicAt, set only by tests, makes Run panic at that point of its own work (faultAt): what
	// it started must be ended and reaped, and what it holds let go, even after a bug of its own.
	panicAt string
}

// faultAt panics if a test asked for a panic at point (Spec.panicAt).
func (s *Spec) faultAt(point string) {
	if s.panicAt == point {
		panic("injected at " + point)
	}
}

// Result says how a run ended.
type Result struct {
	Success  bool
	ExitCode int    // -1 when the command did not exit normally (signal, start failure)
	Label    string // statusLabel for Port
	// Signal is the signal that ended the command, 0 when it exited.
	Signal syscall.Signal
	// Duration is the wall time of the Run call: preparation, the command
	// itself, and delivering its remaining output; not the wait in Spec.Gate.
	Duration time.Duration
	// limit is the limit the shim saw the command end at (LimitProcesses), "" for none.
	limit string
}

const (
	// DefaultKillGrace is used when Spec.KillGrace is 0: the agent's kill grace, which
	// a replica's drain counts (config.KillGrace is this one).
	DefaultKillGrace = 10 * time.Second
	// drainTimeout bounds how long Run waits for EOF on the output pipe after
	// the command (and its process group) is gone: a process that left the
	// group (setsid, setpgid) may still hold the pipe and must not keep the
	// run open forever.
	drainTimeout = 2 * time.Second
	copyBufSize  = 32 << 10
	// limitCheckInterval is how often a running command's run directory size and cgroup
	// counters are read (only when it has such limits).
	limitCheckInterval = 500 * time.Millisecond
	// watchAfter is how long a command runs before its process is watched on its own, not
	// only through its output's end (see supervise).
	watchAfter = 100 * time.Millisecond
)

// Run starts the command, copies its combined stdout+stderr to out in the
// order written, and returns when the command has ended and its output is
// fully delivered to out. It never panics; a start failure is a Result.
// out is only written from one goroutine at a time; a nil out discards.
func Run(ctx context.Context, spec Spec, out io.Writer) (res Result) {
	start := time.Now()
	var gateWait time.Duration // no part of the run (Result.Duration)
	var p *process             // the process Run started, from its fork on
	defer func() {
		// Belt and braces: the agent must get a Result for every run.
		if r := recover(); r != nil {
			res = panicked(r, p.began(spec))
		}
		res.Duration = time.Since(start) - gateWait
	}()
	if out == nil {
		out = io.Discard
	}
	if err := context.Cause(ctx); err != nil {
		// Not started at all, so there is nothing to kill.
		return Result{ExitCode: -1, Label: CancelLabel(err)}
	}
	prep, err := prepare(spec)
	if err != nil {
		return startFailure(err)
	}
	if spec.RunDir == "" {
		defer spec.Isolation.Runs.ReleaseRunDir(prep.runDir) // a nil Runs only removes
	}
	var confinement confined
	conf := &confinement
	if err := confine(conf, spec, prep); err != nil {
		return startFailure(err)
	}
	defer conf.release()

	if spec.Gate != nil && !shimGates(spec) {
		if label := passGate(ctx, spec, &gateWait); label != "" {
			return Result{ExitCode: -1, Label: label}
		}
	}
	// One pipe for both streams: the kernel keeps the writes in the order
	// the command made them, which two pipes could not guarantee.
	pr, pw, err := outputPipe()
	if err != nil {
		return startFailure(err)
	}
	defer pr.Close()
	var copied chan struct{} // closed once the output's copy is over; nil until it runs
	// p ended and reaped, and its output's copy waited for, on every path: a panic's too.
	defer func() { p.end(spec, prep.runDir, conf, pr, copied) }()
	if err := startLocked(spec, prep, conf, pw, &p); err != nil {
		return startFailure(err)
	}
	gated := spec.Gate != nil && shimGates(spec) // not passed above: the shim holds the command
	if gated {
		if label := passGate(ctx, spec, &gateWait); label != "" {
			return Result{ExitCode: -1, Label: label} // end refuses the shim: its command never starts
		}
	}
	if spec.OnStart != nil {
		spec.OnStart(p.pid)
	}
	if gated {
		p.goAhead()
	}
	copied = make(chan struct{})
	go copyOutput(out, pr, copied)

	reason := supervise(ctx, spec, p, conf, copied) // non-empty when we ended the command
	res = conf.label(p.finish())
	p.reaped(spec, prep.runDir, conf)
	drain(pr, copied)
	if reason != "" {
		res.Success = false
		res.Label = reason
	}
	return res
}

// startLocked starts the process (*p, set from its fork on) under the Reaper's fork lock
// (Reaper.starting), which it lets go on every path, a panic's too: held, it would hold up
// the next sweep for good, and every later start behind it.
func startLocked(spec Spec, prep prepared, conf *confined, pw childFD, p **process) (err error) {
	spec.Reaper.starting() // a nil Reaper does nothing
	defer func() {
		if *p == nil {
			spec.Reaper.register(0)
			return
		}
		(*p).reaper = spec.Reaper.register((*p).pid)
	}()
	defer pw.Close() // the child has its copies; EOF must mean "every writer gone"
	*p, err = startProcess(spec, prep, conf, pw)
	spec.faultAt("forked")
	return err
}

// panicked is the Result of a Run that panicked (a bug: of Run's, or of a function of its
// caller's in Spec): like a start failure where the command never started, else its own.
func panicked(r any, began bool) Result {
	label := fmt.Sprintf("internal error: %v", r)
	if !began {
		label = "could not start: " + label
	}
	return Result{ExitCode: -1, Label: label}
}

// prepared is what a command needs before it can start.
type prepared struct {
	path   string   // Argv[0] resolved against the child's PATH
	env    []string // the child's whole environment
	runDir string   // the run's directory, holding PORT_RUN_FILE
}

func prepare(spec Spec) (prepared, error) {
	if err := checkCommand(spec); err != nil {
		return prepared{}, err
	}
	if spec.Dir != "" {
		// exec reports a bad Dir as "fork/exec <binary>: no such file or
		// directory", which blames the wrong path; check it ourselves.
		fi, err := os.Stat(spec.Dir)
		if err != nil {
			return prepared{}, fmt.Errorf("dir: %w", err)
		}
		if !fi.IsDir() {
			return prepared{}, fmt.Errorf("dir %s: not a directory", spec.Dir)
		}
	}
	runDir, runFile, err := writeRunFile(spec)
	if err != nil {
		return prepared{}, err
	}
	env := Environ(spec, runFile)
	if spec.Isolation.confines() {
		env, err = runHome(env, runDir, spec.Env)
	}
	var path string
	if err == nil {
		path, err = lookPath(spec.Argv[0], envValue(env, "PATH"), spec.Dir)
	}
	if err != nil {
		if spec.RunDir == "" {
			_ = spec.Isolation.Runs.ReleaseRunDir(runDir)
		}
		return prepared{}, err
	}
	return prepared{path: path, env: env, runDir: runDir}, nil
}

func startFailure(err error) Result {
	return Result{ExitCode: -1, Label: "could not start: " + err.Error()}
}
