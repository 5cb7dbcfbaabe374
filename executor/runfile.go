package executor

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// runFileName is PORT_RUN_FILE's name inside its run's directory.
const runFileName = "run.json"

// shmDir is Linux's (and containers') memory-backed tmpfs.
const shmDir = "/dev/shm"

// RunDirRoot is where per-run directories go: the service's runtime directory when systemd
// (RuntimeDirectory=) or the chart names one in $RUNTIME_DIRECTORY (its first, when a list;
// an absolute path), on a memory tmpfs (/run, the chart's emptyDir); else $TMPDIR when the user set it, else /dev/shm when it is a
// writable directory, else the system's temp dir. Creating and removing a run's directory on
// tmpfs costs a few microseconds; on a disk-backed /tmp it was the largest part of the
// agent's own CPU per run (BENCHMARKS.md, "agent CPU per run"). Run directories out of
// /dev/shm leave it to the sandboxed commands' shared memory (README "Isolation").
func RunDirRoot() string {
	if first, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); filepath.IsAbs(first) {
		return first // systemd sets an absolute path; anything else is not its
	}
	if os.Getenv("TMPDIR") != "" {
		return os.TempDir()
	}
	if fi, err := os.Stat(shmDir); err == nil && fi.IsDir() && syscall.Access(shmDir, 2 /* W_OK */) == nil {
		return shmDir
	}
	return os.TempDir()
}

// writeRunFile writes the run context into the run's directory, made here unless the
// caller made it, and returns both paths; the directory's maker removes it (with whatever
// the command left in it) when the run ends.
func writeRunFile(spec Spec) (dir, file string, err error) {
	dir = spec.RunDir
	switch {
	case dir != "":
	case spec.Isolation.Runs != nil:
		dir, err = spec.Isolation.Runs.NewRunDir()
	default:
		// A new directory, mode 0700: private to the agent's user, and never an existing one.
		dir, err = os.MkdirTemp(RunDirRoot(), "port-run-*")
	}
	if err != nil {
		return "", "", fmt.Errorf("run file: %w", err)
	}
	file = filepath.Join(dir, runFileName)
	if err := writeNewFile(file, spec.RunFile); err != nil {
		if spec.RunDir == "" {
			_ = spec.Isolation.Runs.ReleaseRunDir(dir)
		}
		return "", "", fmt.Errorf("run file: %w", err)
	}
	return dir, file, nil
}

// writeNewFile writes b to a new file (0600) at path, never an existing one nor through a
// link, with plain syscalls: the os.File of os.WriteFile tries the runtime's poller first,
// four fcntl and an epoll_ctl per file for nothing.
func writeNewFile(path string, b []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		b = b[n:]
	}
	if err := unix.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}

// runHomeDirs are the directories runHome makes in a run's directory, and the variables
// that name them.
var runHomeDirs = [...]struct{ env, dir string }{{"HOME", "home"}, {"TMPDIR", "tmpdir"}}

// runHome gives a confined command a HOME and a TMPDIR of its own in its run directory
// (the agent's are not its to write), unless the action's env names its own. Each
// variable's path is a part of its entry, one string a run, not two.
func runHome(env []string, runDir string, own map[string]string) ([]string, error) {
	runDir = filepath.Clean(runDir) // as filepath.Join would; no new string when clean already
	for _, d := range runHomeDirs {
		if _, set := own[d.env]; set {
			continue
		}
		entry := d.env + "=" + strings.TrimSuffix(runDir, "/") + "/" + d.dir
		if err := os.Mkdir(entry[len(d.env)+1:], 0o700); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
		env = setEnv(env, d.env, entry)
	}
	return env, nil
}

// setEnv sets entry ("key=value") in env, in place when key is there.
func setEnv(env []string, key, entry string) []string {
	for i, kv := range env {
		if len(kv) > len(key) && kv[len(key)] == '=' && kv[:len(key)] == key {
			env[i] = entry
			return env
		}
	}
	return append(env, entry)
}

// RemoveRunDir removes a run's directory with what it holds. A run leaves its directory as
// it was made most of the time: then its known entries (PORT_RUN_FILE, the empty HOME and
// TMPDIR, and the caller's files, names inside dir) go one unlink or rmdir each, a third of
// what a listing costs on every run; anything else the command left, or a
// known name it replaced (a link, a full directory: unlink and rmdir never follow a link),
// and removeAll takes the rest, directories the command locked up included.
func RemoveRunDir(dir string, files ...string) error {
	removeKnown(dir, files)
	if syscall.Rmdir(dir) == nil {
		return nil
	}
	return removeAll(dir)
}

// removeKnown removes the entries the agent made in run directory dir (see RemoveRunDir).
func removeKnown(dir string, files []string) {
	eachKnown(files, func(name string, isDir bool) {
		if isDir {
			_ = syscall.Rmdir(filepath.Join(dir, name))
		} else {
			_ = syscall.Unlink(filepath.Join(dir, name))
		}
	})
}

// eachKnown calls rm with each entry the agent makes in a run directory, files (the run
// file, the caller's files) before the directories (runHome's).
func eachKnown(files []string, rm func(name string, isDir bool)) {
	rm(runFileName, false)
	for _, name := range files {
		rm(name, false)
	}
	for _, d := range runHomeDirs {
		rm(d.dir, true)
	}
}
