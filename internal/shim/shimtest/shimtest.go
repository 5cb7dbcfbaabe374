// Package shimtest builds the two shims for tests, so each guarantee the executor's tests
// check holds for both: the C one the image ships and the Go one of `go install` users.
package shimtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// CSource is the C shim's source file.
func CSource() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "cmd", "port-runner-shim", "c", "shim.c")
}

// BuildC compiles the C shim into dir as the image does (musl-gcc -static), else with the
// machine's cc (static if it can), and returns its path and the compiler's command line.
func BuildC(dir string) (path, how string, err error) {
	path = filepath.Join(dir, "port-runner-shim-c")
	var tries [][]string
	if cc := os.Getenv("PORT_RUNNER_SHIM_CC"); cc != "" {
		tries = append(tries, []string{cc, "-static"})
	}
	tries = append(tries, []string{"musl-gcc", "-static"}, []string{"cc", "-static"}, []string{"cc"})
	var errs []error
	for _, t := range tries {
		if _, err := exec.LookPath(t[0]); err != nil {
			errs = append(errs, err)
			continue
		}
		args := append(append(t[1:], "-O2", "-s", "-Wall", "-Werror", "-o", path), CSource())
		out, err := exec.Command(t[0], args...).CombinedOutput()
		if err == nil {
			return path, fmt.Sprint(append([]string{t[0]}, args...)), nil
		}
		errs = append(errs, fmt.Errorf("%s: %v\n%s", t[0], err, out))
	}
	return "", "", fmt.Errorf("no C compiler built the shim: %w", errors.Join(errs...))
}

// BuildGo builds the Go shim (cmd/port-runner-shim) into dir.
func BuildGo(dir string) (string, error) {
	path := filepath.Join(dir, "port-runner-shim")
	out, err := exec.Command("go", "build", "-o", path, "github.com/port-runner/port-runner/cmd/port-runner-shim").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build port-runner-shim: %v\n%s", err, out)
	}
	return path, nil
}

// Required reports whether a missing C compiler fails the tests (CI) rather than skipping
// the C shim's cases.
func Required() bool { return os.Getenv("CI") == "true" }
