package reporter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
)

func TestWorkflowCommands(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_cmds")
	rep := New(v.api, Options{FlushInterval: time.Hour})
	rl := rep.Start(context.Background(), id, nil)
	write(t, rl, "building\n")
	write(t, rl, "::port-link::https://ci.example/1\n::port-summary::Built 3 images\n")
	write(t, rl, "::port-external-run-id::job-42\r\n::port-status-label::Deploying\n")
	// Coalesced into PATCHes while the run goes on, without waiting for the log.
	s := v.waitRun(t, id, "the patch", func(s emulator.RunState) bool {
		return s.ExternalRunID == "job-42" && s.Summary == "Built 3 images" && s.StatusLabel == "Deploying" && len(s.Link) == 1
	})
	if s.Link[0] != "https://ci.example/1" || len(s.Logs) != 0 {
		t.Fatalf("link %q, logs %+v", s.Link, s.Logs)
	}
	write(t, rl, "::port-link::https://ci.example/2\n::port-status-label::Deployed\n::warning::not a port command\n")
	closeRun(t, rl, Outcome{Success: true, Label: "exit code 0"})

	s = checkClosedOnce(t, v, id, "SUCCESS", "Deployed") // the command's label wins on success
	if strings.Join(s.Link, " ") != "https://ci.example/1 https://ci.example/2" {
		t.Fatalf("links %q: a later link must not replace an earlier one", s.Link)
	}
	equalLines(t, logLines(s), []string{"building", "::warning::not a port command"})
	var patches int
	for _, r := range v.runRequests(id) {
		if r.Method == "PATCH" {
			patches++
		}
	}
	if patches > 3 {
		t.Fatalf("%d PATCH requests for two bursts of commands", patches)
	}
}

func TestFailureLabelWins(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_fail")
	rl := New(v.api, Options{}).Start(context.Background(), id, nil)
	write(t, rl, "::port-status-label::Almost there\nboom\n")
	closeRun(t, rl, Outcome{Success: false, Label: "exit code 3", Summary: "port-runner: exit code 3 after 1s"})
	s := checkClosedOnce(t, v, id, "FAILURE", "exit code 3")
	equalLines(t, logLines(s), []string{"boom", "port-runner: exit code 3 after 1s"})
}
