//go:build unix

package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RunsDir is one agent's place for run directories, ROOT/agent-XXXX/run-XXXX (a sandboxed
// run's may serve the next run, see cell), under a root that the agents of one uid on a
// machine share and that the sandbox keeps from every command (README "Isolation"). The
// agent holds a lock on its own directory while it lives; OpenRunsDir removes the
// directories of agents that no longer hold theirs: a crashed agent leaves run files
// behind, decrypted secret inputs included.
type RunsDir struct {
	root, dir string
	lock      *os.File // the agent's directory, flock'ed while it lives
	uid, gid  int      // the agent's: an idle cell's owner

	mu     sync.Mutex
	idle   []*cell          // cells free for the next run, the latest given back last
	held   map[string]*cell // by the run directory each holds
	closed bool
}

// DefaultRunsRoot is where run directories go unless executor.runsDir says otherwise:
// port-runner-<uid> under RunDirRoot ($RUNTIME_DIRECTORY, $TMPDIR, /dev/shm, or the system's temp dir).
func DefaultRunsRoot() string {
	return filepath.Join(RunDirRoot(), "port-runner-"+strconv.Itoa(os.Geteuid()))
}

// Agent directories' name prefixes: one being made (not locked yet), and one in use.
const (
	newAgentPrefix = ".new-agent-"
	agentPrefix    = "agent-"
)

// Swept is what OpenRunsDir did besides making the agent's directory: with the directories of
// agents that are gone, and to the open directories around it.
type Swept struct {
	Removed int
	// Left names the ones it could not remove (agents' directory names, which the agents
	// chose), and Reason is why the first of them stayed, or why none was looked at.
	Left   []string
	Reason error
	// Sticky are the world-writable directories OpenRunsDir made sticky (checkAncestors,
	// closeShared): the agent's to say, since some may not be its own.
	Sticky []string
}

// OpenRunsDir makes (or takes) root, removes what dead agents left in it and makes this
// agent's directory. traversable: other uids (the runs' own, under runAs) may pass through
// root and the agent's directory to their run's, never list them; the directories all runs
// share are then made sticky (closeShared).
func OpenRunsDir(root string, traversable bool) (r *RunsDir, swept Swept, err error) {
	mode := os.FileMode(0o700)
	if traversable {
		mode = 0o711
	}
	if err := os.MkdirAll(root, mode); err != nil {
		return nil, Swept{}, fmt.Errorf("runs directory: %w", err)
	}
	sticky, err := checkAncestors(root, traversable)
	if err != nil {
		return nil, Swept{}, fmt.Errorf("runs directory: %w", err)
	}
	if traversable {
		shared, err := closeShared()
		if err != nil {
			return nil, Swept{}, err
		}
		sticky = append(sticky, shared...)
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, Swept{}, fmt.Errorf("runs directory: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return nil, Swept{}, fmt.Errorf("runs directory %s: not a directory of this agent's uid", root)
	}
	if err := os.Chmod(root, mode); err != nil {
		return nil, Swept{}, fmt.Errorf("runs directory: %w", err)
	}
	swept = sweep(root)
	swept.Sticky = sticky
	// Made under a name sweep leaves alone and locked before it gets its real name, so
	// another agent starting now never takes it for a dead one's.
	tmp, err := os.MkdirTemp(root, newAgentPrefix+"*")
	if err != nil {
		return nil, swept, fmt.Errorf("runs directory: %w", err)
	}
	lock, err := lockDir(tmp, true)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, swept, fmt.Errorf("runs directory: %w", err)
	}
	dir := filepath.Join(root, agentPrefix+strings.TrimPrefix(filepath.Base(tmp), newAgentPrefix))
	if err := os.Rename(tmp, dir); err != nil {
		lock.Close()
		os.RemoveAll(tmp)
		return nil, swept, fmt.Errorf("runs directory: %w", err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		lock.Close()
		os.RemoveAll(dir)
		return nil, swept, fmt.Errorf("runs directory: %w", err)
	}
	return &RunsDir{root: root, dir: dir, lock: lock, uid: os.Geteuid(), gid: os.Getegid(), held: map[string]*cell{}}, swept, nil
}

// sweep removes the directories of agents that hold no lock on them any more (and the
// unfinished ones of agents that died while making theirs).
func sweep(root string) Swept {
	var s Swept
	entries, err := os.ReadDir(root)
	if err != nil {
		s.Reason = err // none looked at; the next agent to start tries again
		return s
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(root, name)
		switch {
		case strings.HasPrefix(name, agentPrefix):
		case strings.HasPrefix(name, newAgentPrefix):
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < time.Minute {
				continue // another agent may be making it right now
			}
		default:
			continue
		}
		lock, err := lockDir(path, false)
		if err != nil {
			continue // its agent lives
		}
		if err := removeAll(path); err != nil {
			s.Left = append(s.Left, name)
			if s.Reason == nil {
				s.Reason = err
			}
		} else {
			s.Removed++
		}
		lock.Close()
	}
	return s
}

// lockDir takes dir's flock (exclusive; wait: block until it is free, else fail at once).
func lockDir(dir string, wait bool) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Root is the directory every agent of this uid keeps its runs under.
func (r *RunsDir) Root() string { return r.root }

// NewRunDir is a run directory (0700, empty) of the run's own until ReleaseRunDir: an
// idle cell, or a new one.
func (r *RunsDir) NewRunDir() (string, error) {
	r.mu.Lock()
	var c *cell
	if n := len(r.idle); n > 0 {
		c, r.idle = r.idle[n-1], r.idle[:n-1]
	}
	r.mu.Unlock()
	if c == nil {
		// A new name no other run could know; 0700 (MkdirTemp's mode).
		dir, err := os.MkdirTemp(r.dir, "run-*")
		if err != nil {
			return "", fmt.Errorf("run directory: %w", err)
		}
		c = &cell{dir: dir}
	}
	c.served = false
	r.mu.Lock()
	r.held[c.dir] = c
	r.mu.Unlock()
	return c.dir, nil
}

// cellOf is the cell holding run directory dir, nil when NewRunDir did not make it.
func (r *RunsDir) cellOf(dir string) *cell {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held[dir]
}

// served says run directory dir's run may give it back: its sandboxed command ran under
// the cell's ruleset and its shim ended by itself, so nothing of it is left.
func (r *RunsDir) served(dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.held[dir]; c != nil {
		c.served = true
	}
}

// ReleaseRunDir ends run directory dir: cleared for the next run when NewRunDir made it and
// it served a run that may give it back, else removed with what is in it (files: names of
// the caller's inside dir, as RemoveRunDir takes). A nil RunsDir only removes.
func (r *RunsDir) ReleaseRunDir(dir string, files ...string) error {
	if r == nil {
		return RemoveRunDir(dir, files...)
	}
	r.mu.Lock()
	c := r.held[dir]
	delete(r.held, dir)
	served := c != nil && c.served
	r.mu.Unlock()
	if c == nil {
		return RemoveRunDir(dir, files...)
	}
	keep := served && c.clear(files, r.uid, r.gid)
	r.mu.Lock()
	if keep && !r.closed && len(r.idle) < maxIdleCells {
		r.idle, c = append(r.idle, c), nil
	}
	r.mu.Unlock()
	if c != nil {
		return c.drop(files)
	}
	return nil
}

// Close removes the agent's directory, with whatever a run left in it; the error is its
// removal's (an idle cell's own is part of it).
func (r *RunsDir) Close() error {
	r.mu.Lock()
	idle := r.idle
	r.idle, r.closed = nil, true
	r.mu.Unlock()
	for _, c := range idle {
		_ = c.drop(nil) // what stays is in r.dir, removed next
	}
	err := removeAll(r.dir)
	r.lock.Close()
	return err
}
