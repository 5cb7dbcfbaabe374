package reporter

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// A log batch Port refuses for a run it ended is reported to OnRefused (the agent asks Port
// and stops the command); the run's log then sends nothing more, and no termination ever.
func TestRefusedBatchIsReported(t *testing.T) {
	v := newEnvOf(t, emulator.Options{}, nil)
	e, api := v.e, v.api
	e.RegisterRun("r_cancelled", "deploy")
	if err := e.CancelRun("r_cancelled"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var refused []string
	rep := New(api, Options{FlushInterval: time.Millisecond, OnRefused: func(id string, err error) {
		mu.Lock()
		defer mu.Unlock()
		refused = append(refused, id)
	}})
	rl := rep.Start(context.Background(), "r_cancelled", nil)
	write(t, rl, "still working\n")
	waitcond.For(t, "the refusal to be reported", waitLimit, func() bool { mu.Lock(); defer mu.Unlock(); return len(refused) > 0 })
	if sent, err := rl.Abandon(context.Background(), "port-runner: cancelled in Port"); sent || err != nil {
		t.Fatalf("Abandon = %v, %v: a run Port refused was sent to again", sent, err)
	}
	closeRun(t, rl, Outcome{Label: "cancelled"})
	s, _ := e.Run("r_cancelled")
	if refused[0] != "r_cancelled" || s.Terminations != 1 || s.RejectedTerminations != 0 || len(s.Logs) != 0 {
		t.Fatalf("refused %v, run %+v", refused, s)
	}
}

// Where Port takes logs after a run ended, Abandon sends the last lines and the summary as a
// plain log: no terminationStatus, so the run keeps the one Port gave it.
func TestAbandonSendsTheLastLines(t *testing.T) {
	v := newEnvOf(t, emulator.Options{LogsAfterTermination: true}, nil)
	e, api := v.e, v.api
	e.RegisterRun("r_cancelled", "deploy")
	rl := New(api, Options{FlushInterval: time.Hour}).Start(context.Background(), "r_cancelled", []string{"s3cr3t"})
	write(t, rl, "last words s3cr3t\nunfinished line")
	if err := e.CancelRun("r_cancelled"); err != nil {
		t.Fatal(err)
	}
	if sent, err := rl.Abandon(context.Background(), "port-runner: cancelled in Port after 1s"); !sent || err != nil {
		t.Fatalf("Abandon = %v, %v", sent, err)
	}
	closeRun(t, rl, Outcome{Success: true})
	s, _ := e.Run("r_cancelled")
	if s.Status != "FAILURE" || s.Terminations != 1 || s.RejectedTerminations != 0 || len(s.Logs) != 1 {
		t.Fatalf("run %+v", s)
	}
	if l := s.Logs[0]; l.TerminationStatus != "" || l.Message != "last words ***\nunfinished line\nport-runner: cancelled in Port after 1s" {
		t.Fatalf("log %+v", l)
	}
}
