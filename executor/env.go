package executor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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
	// Built in one slice without maps: this runs for every run. Only the inherited entries
	// can be replaced in place; room is left for runHome's HOME and TMPDIR.
	env := make([]string, 0, len(inherited)+len(fixedVars)+len(spec.Env)+len(runHomeDirs))
	for _, k := range inherited {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	nInherited := len(env)
	env = append(env, "PORT_RUN_ID="+spec.RunID, "PORT_ACTION="+spec.Action, "PORT_RUN_FILE="+runFilePath)

	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || slices.Contains(fixedVars[:], k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
next:
	for _, k := range keys {
		kv := k + "=" + spec.Env[k]
		for i, old := range env[:nInherited] {
			if len(old) > len(k) && old[len(k)] == '=' && old[:len(k)] == k {
				env[i] = kv
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// checkCommand refuses a spec execve cannot carry: no command, or an argument or a value of
// Env holding a NUL byte (an input can hold \u0000), named and never shown (a secret?).
func checkCommand(spec Spec) error {
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return errors.New("empty command")
	}
	for i, a := range spec.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("argument %d contains a NUL byte", i)
		}
	}
	for k, v := range spec.Env {
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("env %s: its value contains a NUL byte", k)
		}
	}
	return nil
}

// fixedVars are the variables Environ sets that spec.Env may not replace.
var fixedVars = [...]string{"PORT_RUN_ID", "PORT_ACTION", "PORT_RUN_FILE"}

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
