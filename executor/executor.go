// Package executor runs one Port action run as a child process: it builds the
// child's (minimal) environment, captures stdout and stderr through one pipe so
// their relative order survives, enforces timeouts and cancellation on the whole
// process group, and classifies how the command ended as a Port statusLabel.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
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
	// RunFile is written to a private temp file (0600) whose path is
	// PORT_RUN_FILE; the file is removed when Run returns.
	RunFile []byte
	// KillGrace is the time between SIGTERM and SIGKILL to the process group
	// on timeout or cancel; 0 means DefaultKillGrace.
	KillGrace time.Duration
	// Shim, when set, is the command prefix that runs the agent's binary as the
	// command's shim ([]string{exe, ShimCommand}): it takes the command's whole
	// process group down if the agent dies (see RunShim).
	Shim []string
	// OnStart, if set, is called once, right after the process Run starts (the shim, or
	// the command where no shim is used) is running, with its pid: every process of the
	// command descends from it while it lives.
	OnStart func(pid int)
}

// Result says how a run ended.
type Result struct {
	Success  bool
	ExitCode int    // -1 when the command did not exit normally (signal, start failure)
	Label    string // statusLabel for Port
	// Duration is the wall time of the Run call: preparation, the command
	// itself, and delivering its remaining output.
	Duration time.Duration
}

const (
	// DefaultKillGrace is used when Spec.KillGrace is 0.
	DefaultKillGrace = 10 * time.Second
	// drainTimeout bounds how long Run waits for EOF on the output pipe after
	// the command (and its process group) is gone: a process that left the
	// group (setsid, setpgid) may still hold the pipe and must not keep the
	// run open forever.
	drainTimeout = 2 * time.Second
	copyBufSize  = 32 << 10
)

// inherited lists the only agent variables a child gets. Everything else,
// notably the agent's Port and Kafka credentials, stays in the agent.
var inherited = []string{"PATH", "HOME", "LANG", "TZ"}

// Environ builds the child environment: PATH, HOME, LANG, TZ copied from the
// agent's environment (only if set), then PORT_RUN_ID, PORT_ACTION,
// PORT_RUN_FILE, then spec.Env in sorted key order. spec.Env may override the
// inherited four (replacing them in place) but not the three PORT_ variables
// above: a script must be able to trust them. Keys that are empty or contain
// '=' or NUL are dropped, as they cannot be represented in an environment.
// The child never inherits anything else; os.Environ is deliberately not used.
func Environ(spec Spec, runFilePath string) []string {
	type kv struct{ k, v string }
	var vars []kv
	index := map[string]int{}
	set := func(k, v string) {
		if i, ok := index[k]; ok {
			vars[i].v = v
			return
		}
		index[k] = len(vars)
		vars = append(vars, kv{k, v})
	}
	for _, k := range inherited {
		if v, ok := os.LookupEnv(k); ok {
			set(k, v)
		}
	}
	fixed := map[string]string{
		"PORT_RUN_ID":   spec.RunID,
		"PORT_ACTION":   spec.Action,
		"PORT_RUN_FILE": runFilePath,
	}
	set("PORT_RUN_ID", spec.RunID)
	set("PORT_ACTION", spec.Action)
	set("PORT_RUN_FILE", runFilePath)

	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := fixed[k]; ok || k == "" || strings.ContainsAny(k, "=\x00") {
			continue
		}
		set(k, spec.Env[k])
	}

	env := make([]string, len(vars))
	for i, p := range vars {
		env[i] = p.k + "=" + p.v
	}
	return env
}

// Run starts the command, copies its combined stdout+stderr to out in the
// order written, and returns when the command has ended and its output is
// fully delivered to out. It never panics; a start failure is a Result.
// out is only written from one goroutine at a time; a nil out discards.
func Run(ctx context.Context, spec Spec, out io.Writer) (res Result) {
	start := time.Now()
	defer func() {
		// Belt and braces: the agent must get a Result for every run.
		if r := recover(); r != nil {
			res = Result{ExitCode: -1, Label: fmt.Sprintf("could not start: internal error: %v", r)}
		}
		res.Duration = time.Since(start)
	}()
	if out == nil {
		out = io.Discard
	}
	fail := func(err error) Result {
		return Result{ExitCode: -1, Label: "could not start: " + err.Error()}
	}

	if err := context.Cause(ctx); err != nil {
		// Not started at all, so there is nothing to kill.
		return Result{ExitCode: -1, Label: cancelLabel(err)}
	}
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return fail(errors.New("empty command"))
	}
	if spec.Dir != "" {
		// exec reports a bad Dir as "fork/exec <binary>: no such file or
		// directory", which blames the wrong path; check it ourselves.
		fi, err := os.Stat(spec.Dir)
		if err != nil {
			return fail(fmt.Errorf("dir: %w", err))
		}
		if !fi.IsDir() {
			return fail(fmt.Errorf("dir %s: not a directory", spec.Dir))
		}
	}

	runFile, err := writeRunFile(spec.RunFile)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(runFile)

	env := Environ(spec, runFile)
	path, err := lookPath(spec.Argv[0], envValue(env, "PATH"), spec.Dir)
	if err != nil {
		return fail(err)
	}

	// One pipe for both streams: the kernel keeps the writes in the order
	// the command made them, which two pipes could not guarantee.
	pr, pw, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	cmdPath, cmdArgs, deathSig := path, spec.Argv, syscall.SIGKILL
	var extra []*os.File
	var shimStatus *os.File // the shim's start failure, if any (see RunShim)
	if len(spec.Shim) > 0 {
		cmdPath = spec.Shim[0]
		cmdArgs = append(append(append([]string{}, spec.Shim...), "--", path), spec.Argv...)
		deathSig = shimDeathSignal
		sr, sw, err := os.Pipe()
		if err != nil {
			pr.Close()
			pw.Close()
			return fail(err)
		}
		defer sr.Close()
		defer sw.Close()
		shimStatus, extra = sr, []*os.File{sw}
	}
	cmd := &exec.Cmd{
		Path:       cmdPath,
		Args:       cmdArgs,
		Env:        env,
		Dir:        spec.Dir,
		Stdout:     pw,
		Stderr:     pw,
		ExtraFiles: extra, // fd 3 in the shim
		SysProcAttr: &syscall.SysProcAttr{
			// Own process group, so a timeout or cancel reaches everything
			// the command started, and nothing of the agent.
			Setpgid: true,
			// Children die with the agent (see the thread note below); a shim
			// takes the rest of the group with it.
			Pdeathsig: deathSig,
		},
	}

	// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits,
	// not the process (https://go.dev/issue/27505). The Go runtime only ends
	// a thread when a goroutine exits while locked to it (LockOSThread
	// without Unlock, as some cgo/namespace code does). Locking only around
	// Start is not enough: after Unlock the forking thread goes back to the
	// pool, where such a goroutine may later run on it and end it, killing
	// our child mid-run. So the forking goroutine stays locked to its thread
	// until the child has been reaped; no other goroutine can run on (and
	// hence end) that thread meanwhile. The cost is one mostly idle OS
	// thread per running command. Unlock is deferred so that the lock count
	// is restored even if the caller itself holds a lock.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fail(err)
	}
	pw.Close() // the child has its copies; EOF must mean "every writer gone"
	for _, f := range extra {
		f.Close() // likewise: only the shim holds the status pipe now
	}
	pid := cmd.Process.Pid
	if spec.OnStart != nil {
		spec.OnStart(pid)
	}

	exited := make(chan struct{})
	go func() {
		waitExitNoReap(pid)
		close(exited)
	}()
	copied := make(chan struct{})
	go copyOutput(out, pr, copied)

	var timeoutC <-chan time.Time
	if spec.Timeout > 0 {
		t := time.NewTimer(spec.Timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	reason := "" // non-empty when we ended the command
	select {
	case <-exited:
	case <-timeoutC:
		reason = "timed out after " + humanDuration(spec.Timeout)
	case <-ctx.Done():
		reason = cancelLabel(context.Cause(ctx))
	}
	if reason != "" {
		grace := spec.KillGrace
		if grace <= 0 {
			grace = DefaultKillGrace
		}
		killGroup(pid, syscall.SIGTERM) // a shim passes it on to the command's group
		t := time.NewTimer(grace)
		select {
		case <-exited:
		case <-t.C:
			if len(spec.Shim) > 0 {
				// SIGKILL cannot be passed on: the shim kills the command's group itself.
				_ = syscall.Kill(pid, shimKillSignal)
			} else {
				killGroup(pid, syscall.SIGKILL)
			}
			<-exited
		}
		t.Stop()
	}

	// The leader has exited but is not reaped yet, so its pid still names
	// the process group and cannot have been reused: killing -pid is safe.
	// Kill whatever is left of the group in every case: a run is over when
	// its command is, and Port is told it ended, so nothing of it may keep
	// working (or writing to our pipe) unobserved.
	killGroup(pid, syscall.SIGKILL)
	waitErr := cmd.Wait()

	// Output already in the pipe is still delivered. Processes that left
	// the group may hold the write end; give them drainTimeout, then close
	// our end so Run always returns (they get EPIPE/SIGPIPE).
	dt := time.NewTimer(drainTimeout)
	select {
	case <-copied:
	case <-dt.C:
		pr.Close()
		<-copied
	}
	dt.Stop()
	pr.Close()

	res = classify(cmd.ProcessState, waitErr)
	if shimStatus != nil {
		// The shim keeps its status pipe from the command (close-on-exec), so with the shim
		// gone this read ends at once: empty, or why the command could not start.
		if msg, _ := io.ReadAll(io.LimitReader(shimStatus, 4096)); len(msg) > 0 {
			res = Result{ExitCode: -1, Label: "could not start: " + string(msg)}
		}
	}
	if reason != "" {
		res.Success = false
		res.Label = reason
	}
	return res
}

// copyOutput passes bytes through as they arrive; line splitting is the
// consumer's job. If out fails (or panics) the pipe is still drained, so the
// command is never blocked by a broken consumer.
func copyOutput(out io.Writer, pr *os.File, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, copyBufSize)
	broken := false
	write := func(p []byte) {
		defer func() {
			if recover() != nil {
				broken = true
			}
		}()
		if _, err := out.Write(p); err != nil {
			broken = true
		}
	}
	for {
		n, err := pr.Read(buf)
		if n > 0 && !broken {
			write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// waitExitNoReap blocks until pid has exited, leaving it a zombie
// (WNOWAIT), so the caller can still signal its process group without a
// pid-reuse race before cmd.Wait reaps it.
func waitExitNoReap(pid int) {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if e != syscall.EINTR {
			// 0, or ECHILD if it is somehow gone already: either way it
			// has exited and cmd.Wait will tell.
			return
		}
	}
}

func killGroup(pgid int, sig syscall.Signal) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, sig) // ESRCH: group already empty
	}
}

func classify(ps *os.ProcessState, waitErr error) Result {
	if ps == nil {
		msg := "unknown end"
		if waitErr != nil {
			msg = waitErr.Error()
		}
		return Result{ExitCode: -1, Label: "wait failed: " + msg}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Result{ExitCode: -1, Label: "killed by signal " + ws.Signal().String()}
	}
	code := ps.ExitCode()
	return Result{Success: code == 0, ExitCode: code, Label: "exit code " + strconv.Itoa(code)}
}

// cancelLabel turns a context cause into a statusLabel. A plain cancel is
// what the agent does on shutdown; any other cause explains itself.
func cancelLabel(cause error) string {
	if cause == nil || cause == context.Canceled {
		return "cancelled: agent shutting down"
	}
	return "cancelled: " + cause.Error()
}

// humanDuration formats d like time.Duration.String without the noise of
// zero trailing units: 10m0s -> 10m, 1h0m0s -> 1h, 1m30s and 500ms unchanged.
func humanDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") || strings.HasSuffix(s, "h0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func writeRunFile(data []byte) (string, error) {
	// CreateTemp opens with O_EXCL and mode 0600: private to the agent's
	// user, and never an existing file.
	f, err := os.CreateTemp("", "port-run-*.json")
	if err != nil {
		return "", fmt.Errorf("run file: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("run file: %w", err)
	}
	return f.Name(), nil
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// lookPath resolves file like exec.LookPath, but against the child's PATH
// rather than the agent's. A name with a slash is used as given (relative to
// dir, where the child will be). Relative PATH entries (including empty
// ones, which mean ".") are skipped, as exec.LookPath refuses such results
// (exec.ErrDot): the run's working directory must not pick the binary.
func lookPath(file, pathEnv, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if dir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := checkExecutable(p); err != nil {
			return "", &exec.Error{Name: file, Err: err}
		}
		return file, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, file)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return os.ErrNotExist
		}
		return err
	}
	if fi.IsDir() {
		return syscall.EISDIR
	}
	if fi.Mode()&0o111 == 0 {
		return os.ErrPermission
	}
	return nil
}
