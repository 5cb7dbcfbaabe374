package executor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelperInheritedFD is not a real test: TestInheritedFDsReachNoCommand runs the test
// binary as an agent that inherited a file open as its fd 3, and it prints whether a command
// it runs holds that file too.
func TestHelperInheritedFD(t *testing.T) {
	path := os.Getenv("EXECUTOR_TEST_INHERITED")
	if path == "" {
		t.Skip("helper process only")
	}
	if os.Getenv("EXECUTOR_TEST_SEAL") == "1" {
		if err := SealInheritedFDs(); err != nil {
			fmt.Printf("result: seal: %v\n", err)
			os.Exit(0)
		}
	}
	res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", `ls -l /proc/$$/fd`}})
	fmt.Printf("success: %v\n", res.Success)
	fmt.Printf("held: %v\n", strings.Contains(out, path))
	fmt.Printf("result: done\n")
	os.Exit(0)
}

// TestInheritedFDsReachNoCommand: a descriptor the agent inherited open (from a container
// runtime, a service manager) reached every command, untrusted as they are, until the
// agent sealed them at start.
func TestInheritedFDsReachNoCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent-only")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, seal := range []string{"0", "1"} {
		got := runAsHelperWith(t, "TestHelperInheritedFD", func(cmd *exec.Cmd) {
			cmd.ExtraFiles = []*os.File{f} // fd 3 in the helper, open across its exec
		}, "EXECUTOR_TEST_INHERITED="+path, "EXECUTOR_TEST_SEAL="+seal)
		if got["success"] != "true" {
			t.Fatalf("seal %s: the command failed: %v", seal, got)
		}
		if held, want := got["held"] == "true", seal == "0"; held != want {
			t.Errorf("seal %s: the command holds the agent's inherited file: %v, want %v (%v)", seal, held, want, got)
		}
	}
}
