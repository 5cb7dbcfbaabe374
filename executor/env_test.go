package executor

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestEnvironment(t *testing.T) {
	t.Setenv("PORT_CLIENT_SECRET", "s3cret")
	t.Setenv("HOME", "/home/agent")
	spec := Spec{
		RunID:   "r_123",
		Action:  "deploy",
		RunFile: []byte(`{"payload":{"x":1}}`),
		Env: map[string]string{
			"FOO":           "bar",
			"HOME":          "/custom/home", // may override inherited
			"PORT_RUN_ID":   "forged",       // may not override PORT_*
			"PORT_RUN_FILE": "/etc/passwd",
		},
		Argv: []string{"sh", "-c", `env; echo ---; stat -c %a "$PORT_RUN_FILE"; cat "$PORT_RUN_FILE"`},
	}
	res, out := run(t, context.Background(), spec)
	if !res.Success {
		t.Fatalf("got %+v, out %q", res, out)
	}
	envPart, rest, ok := strings.Cut(out, "---\n")
	if !ok {
		t.Fatalf("bad output %q", out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(envPart), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH":        os.Getenv("PATH"),
		"HOME":        "/custom/home",
		"PORT_RUN_ID": "r_123",
		"PORT_ACTION": "deploy",
		"FOO":         "bar",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["PORT_CLIENT_SECRET"]; ok || strings.Contains(out, "s3cret") {
		t.Errorf("secret leaked into child: %q", out)
	}
	runFile := got["PORT_RUN_FILE"]
	if !strings.Contains(runFile, "port-run-") || !strings.HasSuffix(runFile, ".json") {
		t.Errorf("PORT_RUN_FILE = %q", runFile)
	}
	if rest != "600\n"+`{"payload":{"x":1}}` {
		t.Errorf("run file mode/contents: %q", rest)
	}
	if _, err := os.Stat(runFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run file %s not removed: %v", runFile, err)
	}
	// The shell adds a few of its own (PWD, SHLVL...); anything else came from us.
	for k := range got {
		switch k {
		case "PATH", "HOME", "LANG", "TZ", "PORT_RUN_ID", "PORT_ACTION", "PORT_RUN_FILE", "FOO", "PWD", "SHLVL", "_", "OLDPWD":
		default:
			t.Errorf("unexpected variable %s in child", k)
		}
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("PATH", "/bin")
	t.Setenv("HOME", "/h")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "") // registers restoration at cleanup
	os.Unsetenv("TZ")  // unset, not empty: must be absent from the child
	t.Setenv("AWS_SECRET_ACCESS_KEY", "nope")
	got := Environ(Spec{RunID: "r", Action: "a", Env: map[string]string{
		"B": "2", "A": "1", "LANG": "fr", "PORT_ACTION": "x", "BAD=KEY": "v", "": "v",
	}}, "/tmp/f")
	want := []string{"PATH=/bin", "HOME=/h", "LANG=fr", "PORT_RUN_ID=r", "PORT_ACTION=a", "PORT_RUN_FILE=/tmp/f", "A=1", "B=2"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Environ = %q, want %q", got, want)
	}
}

func TestLookupUsesChildPath(t *testing.T) {
	res, _ := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", "true"}, Env: map[string]string{"PATH": "/nonexistent"}})
	if res.Success || !strings.HasPrefix(res.Label, "could not start: ") || res.ExitCode != -1 {
		t.Errorf("got %+v", res)
	}
}

func TestStartFailures(t *testing.T) {
	notExec := t.TempDir() + "/script"
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"not found", Spec{Argv: []string{"nope-not-a-command"}}, `could not start: exec: "nope-not-a-command": executable file not found in $PATH`},
		{"not executable", Spec{Argv: []string{notExec}}, "could not start: exec: \"" + notExec + "\": permission denied"},
		{"bad dir", Spec{Argv: []string{"true"}, Dir: "/does/not/exist"}, "could not start: dir: stat /does/not/exist: no such file or directory"},
		{"empty", Spec{}, "could not start: empty command"},
		// An input holding \u0000: named, its value (a secret?) never shown, the binary not blamed.
		{"NUL in env", Spec{Argv: []string{"true"}, Env: map[string]string{"TOKEN": "s3cret\x00x"}},
			"could not start: env TOKEN: its value contains a NUL byte"},
		{"NUL in argv", Spec{Argv: []string{"echo", "a\x00b"}}, "could not start: argument 1 contains a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := run(t, context.Background(), tc.spec)
			if res.Success || res.ExitCode != -1 || res.Label != tc.want {
				t.Errorf("got %+v, want label %q", res, tc.want)
			}
		})
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	res, out := run(t, context.Background(), Spec{Argv: []string{"pwd"}, Dir: dir})
	if !res.Success || strings.TrimSpace(out) != dir {
		t.Errorf("got %+v, out %q, want %q", res, out, dir)
	}
}

// TestRunFileInPrivateDir: PORT_RUN_FILE lives in a directory of its own, 0700, which goes
// with everything the command left in it when the run ends.
func TestRunFileInPrivateDir(t *testing.T) {
	res, out := run(t, context.Background(), Spec{RunFile: []byte(`{}`), Argv: []string{"sh", "-c",
		`d=$(dirname "$PORT_RUN_FILE"); stat -c %a "$d"; echo left > "$d/left-behind"; echo "$d"`}})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !res.Success || len(lines) != 2 || lines[0] != "700" {
		t.Fatalf("run dir mode: %+v, output %q; want 700", res, out)
	}
	if _, err := os.Stat(lines[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run dir %s not removed: %v", lines[1], err)
	}
}

// TestConfinedEnvironHasEachNameOnce: the child's environment goes to execve as built (no
// exec.Cmd dedup), where a name given twice is read as its first value by most programs: a
// confined run's HOME and TMPDIR must replace the agent's, not follow them.
func TestConfinedEnvironHasEachNameOnce(t *testing.T) {
	runDir := t.TempDir()
	t.Setenv("HOME", "/home/agent")
	t.Setenv("TMPDIR", "/tmp/agent")
	own := map[string]string{"PATH": "/own/bin", "LANG": "C", "X": "1"}
	env, err := runHome(Environ(Spec{RunID: "r", Action: "a", Env: own}, "/run/f"), runDir, own)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if old, dup := seen[k]; dup {
			t.Errorf("%s given twice: %q, then %q", k, old, v)
		}
		seen[k] = v
	}
	if strings.HasPrefix(seen["HOME"], "/home/agent") || seen["PATH"] != "/own/bin" {
		t.Errorf("HOME %q, PATH %q: want the run's own", seen["HOME"], seen["PATH"])
	}
}
