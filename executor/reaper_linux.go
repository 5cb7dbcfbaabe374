package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/port-runner/port-runner/internal/shim"
)

// Reaper makes the agent a child subreaper, the backstop for a run whose shim died before
// its command's tree did (the shim SIGKILLed by its command where nothing stops that:
// sandbox off, or a kernel without Landlock's signal scoping). The tree's orphans are then
// reparented to the agent, and the Reaper kills and reaps every child of the agent that is
// not a process Run started: only the agent's own descendants, never anything else. Every
// child the agent has must therefore come from Run with Spec.Reaper set.
type Reaper struct {
	self int
	// interval is how often the Reaper looks for orphans besides when a shim ended by a
	// signal (reaperInterval); children lists the agent's children (childrenOf). Tests
	// change them to force an interleaving.
	interval time.Duration
	children func(ppid int) []int
	// listen starts or stops passing SIGCHLD to a channel (listenSIGCHLD); tests record it.
	listen func(c chan<- os.Signal, on bool)
	// forks is held for reading from the fork of a process Run starts until it is in
	// started, and for writing while a sweep picks what to kill: a sweep never takes a
	// process Run has just started for an orphan. The registration itself takes mu, never
	// forks for writing: a sweep waiting for forks would get in between.
	forks sync.RWMutex
	mu    sync.Mutex // started, starts
	// started holds each registered pid's start (a count): a run that reaped its process
	// forgets the pid only if no later start took it meanwhile (pids are reused).
	started map[int]uint64
	starts  uint64
	killed  map[int]bool // killed by a sweep, reaped once they exit; Run's goroutine's alone
	kick    chan struct{}
	onKill  func(n int)
}

// reaperInterval is how often the Reaper looks for orphans besides when a shim ended by a
// signal (the one way they appear).
const reaperInterval = 5 * time.Second

// NewReaper makes this process a child subreaper. onKill (may be nil) hears how many
// orphans each sweep killed.
func NewReaper(onKill func(n int)) (*Reaper, error) {
	if err := shim.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1); err != nil {
		return nil, fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
	}
	return &Reaper{self: os.Getpid(), interval: reaperInterval, children: childrenOf, listen: listenSIGCHLD,
		started: map[int]uint64{}, killed: map[int]bool{}, kick: make(chan struct{}, 1), onKill: onKill}, nil
}

// Run sweeps until ctx ends. A sweep reads /proc (see childrenOf) and holds up every start,
// so it runs when a shim died by a signal, every reaperInterval, and on SIGCHLD only while
// orphans it killed are not all reaped yet (one may have forked before it died: its child
// comes to the agent next). Only then does it listen for SIGCHLD at all: every run's shim
// sends one as it ends, and each heard costs the agent a wake-up of the runtime's signal
// thread and of this goroutine (about two context switches a run) for nothing.
func (r *Reaper) Run(ctx context.Context) {
	sigs := make(chan os.Signal, 1)
	listening := false
	defer func() {
		if listening {
			r.listen(sigs, false)
		}
	}()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		var sigC <-chan os.Signal
		if listening {
			sigC = sigs
		}
		select {
		case <-ctx.Done():
			return
		case <-sigC:
		case <-r.kick:
		case <-t.C:
		}
		for {
			// An orphan hands its own children to the agent as it dies, which may be after
			// the sweep that reaps it listed the agent's children: look again until a sweep
			// reaps nothing.
			for r.sweep() {
			}
			waiting := len(r.killed) > 0 // killed is this goroutine's alone
			if waiting == listening {
				break
			}
			listening = waiting
			r.listen(sigs, listening)
			if !listening {
				break
			}
			// A killed orphan that ended before we listened sent its SIGCHLD unheard: sweep again.
		}
	}
}

// listenSIGCHLD is Reaper.listen: it starts (on) or stops passing SIGCHLD to c.
func listenSIGCHLD(c chan<- os.Signal, on bool) {
	if on {
		signal.Notify(c, syscall.SIGCHLD)
	} else {
		signal.Stop(c)
	}
}

// starting is called before Run forks a process, and register once it has (or has failed
// to): a sweep meanwhile waits. Both take a nil Reaper (none): then they do nothing.
func (r *Reaper) starting() {
	if r != nil {
		r.forks.RLock()
	}
}

// register registers the process Run started (pid 0: the start failed) and returns its
// ticket, whose ended Run calls once it has reaped it. A value, not a closure: nothing to
// allocate per run.
func (r *Reaper) register(pid int) reaperTicket {
	if r == nil {
		return reaperTicket{}
	}
	defer r.forks.RUnlock()
	if pid <= 0 {
		return reaperTicket{}
	}
	r.mu.Lock()
	r.starts++
	t := reaperTicket{r: r, pid: pid, start: r.starts}
	r.started[pid] = t.start
	r.mu.Unlock()
	return t
}

// reaperTicket is a process started under the Reaper (register); the zero value: none.
type reaperTicket struct {
	r     *Reaper
	pid   int
	start uint64
}

// ended: the ticket's process has been reaped; signaled: it died by a signal (a killed shim
// leaves orphans), so a sweep runs at once.
func (t reaperTicket) ended(signaled bool) {
	if t.r != nil {
		t.r.ended(t.pid, t.start, signaled)
	}
}

// ended: the process of start, pid, has been reaped (see reaperTicket.ended).
func (r *Reaper) ended(pid int, start uint64, signaled bool) {
	r.mu.Lock()
	if r.started[pid] == start {
		delete(r.started, pid)
	}
	r.mu.Unlock()
	if signaled {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// sweep kills the agent's children that Run did not start, and reaps those that died; it
// says whether it reaped any.
func (r *Reaper) sweep() (reaped bool) {
	r.forks.Lock()
	r.mu.Lock()
	var victims []int
	for _, pid := range r.children(r.self) {
		if _, ours := r.started[pid]; !ours && !r.killed[pid] {
			victims = append(victims, pid)
		}
	}
	r.mu.Unlock()
	// Each is the agent's child until the agent reaps it (below), so its pid cannot be
	// another process's by now: the kill reaches only what it names.
	for _, pid := range victims {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		r.killed[pid] = true
	}
	for pid := range r.killed {
		if got, err := syscall.Wait4(pid, nil, syscall.WNOHANG, nil); got == pid || err == syscall.ECHILD {
			delete(r.killed, pid)
			reaped = true
		}
	}
	r.forks.Unlock()
	if len(victims) > 0 && r.onKill != nil {
		r.onKill(len(victims))
	}
	return reaped
}

// childrenOf is the pids whose parent is ppid: from its threads' children lists
// (/proc/PID/task/TID/children), which cost a read per thread; else (a kernel without
// CONFIG_PROC_CHILDREN) from every process's stat, a read per process of the machine. A
// list can miss a child reparented while it is read: the next sweep finds it.
func childrenOf(ppid int) []int {
	if pids, ok := threadChildren(ppid); ok {
		return pids
	}
	return scanChildren(ppid)
}

// threadChildren reads the children lists of ppid's threads; ok is false where the kernel
// has none.
func threadChildren(ppid int) (pids []int, ok bool) {
	task := "/proc/" + strconv.Itoa(ppid) + "/task"
	threads, err := os.ReadDir(task)
	if err != nil {
		return nil, false
	}
	for _, th := range threads {
		b, err := os.ReadFile(task + "/" + th.Name() + "/children")
		if errors.Is(err, fs.ErrNotExist) {
			if _, statErr := os.Stat(task + "/" + th.Name()); statErr == nil {
				return nil, false // the thread is there, its children list is not
			}
			continue // the thread ended
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				pids = append(pids, pid)
			}
		}
	}
	return pids, true
}

// scanChildren is childrenOf from every process's /proc/PID/stat.
func scanChildren(ppid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		name := e.Name()
		if name[0] < '1' || name[0] > '9' {
			continue
		}
		pid := 0
		for _, c := range name {
			if c < '0' || c > '9' {
				pid = 0
				break
			}
			pid = pid*10 + int(c-'0')
		}
		if pid > 1 && shim.ParentOf(pid) == ppid {
			out = append(out, pid)
		}
	}
	return out
}
