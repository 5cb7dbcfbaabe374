package reporter

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// BenchmarkQuietRun is the reporter's share of a run that prints nothing: its log's start
// and its closing request (a Port that answers at once), with a JSON logger as the agent's,
// a parent context that can end, the agent's own secret to mask in every run and a secret
// (the run's Port API token), as the agent's runs have.
func BenchmarkQuietRun(b *testing.B) {
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	rep := New(nopAPI{}, Options{Logger: logger, Mask: []string{"the-agents-client-secret"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secrets := []string{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	b.ReportAllocs()
	for b.Loop() {
		rl := rep.StartOn(ctx, nopAPI{}, "r_bench", secrets, zap.String("action", "bench"))
		if err := rl.Close(context.Background(), Outcome{Success: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// countingCore counts the loggers derived from it (Logger.With): building one per run
// costs a clone and the encoding of its fields.
type countingCore struct {
	zapcore.Core
	withs *atomic.Int64
}

func (c countingCore) With(f []zapcore.Field) zapcore.Core {
	c.withs.Add(1)
	return countingCore{c.Core.With(f), c.withs}
}

// A run that has nothing to log builds no logger of its own: per-run logging costs nothing
// unless a line is written. One that warns still names its run.
func TestQuietRunBuildsNoLogger(t *testing.T) {
	var withs atomic.Int64
	core, logs := observer.New(zapcore.InfoLevel)
	rep := New(nopAPI{}, Options{Logger: zap.New(countingCore{core, &withs})})
	rl := rep.Start(context.Background(), "r_quiet", nil)
	if err := rl.Close(context.Background(), Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	if n := withs.Load(); n != 0 {
		t.Fatalf("a quiet run derived %d loggers, want 0", n)
	}
	rl = rep.Start(context.Background(), "r_warns", nil)
	if _, err := rl.Write([]byte("::port-output::no-equals-sign\n")); err != nil {
		t.Fatal(err)
	}
	if err := rl.Close(context.Background(), Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	warned := logs.FilterMessageSnippet("ignoring ::port-output::").All()
	if len(warned) != 1 || warned[0].ContextMap()["run_id"] != "r_warns" {
		t.Fatalf("the warning of a run: %+v, want one naming r_warns", warned)
	}
}

// A run that prints nothing starts no sender (no goroutine, context or timer); the first
// line starts it, and the line leaves in a batch of its own before Close.
func TestSenderStartsWithFirstLine(t *testing.T) {
	api := newBlockingAPI()
	close(api.release)
	rep := New(api, Options{FlushInterval: time.Millisecond})
	quiet := rep.Start(context.Background(), "r_quiet", nil)
	if err := quiet.Close(context.Background(), Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	if quiet.done != nil {
		t.Fatal("a run that printed nothing started a sender")
	}
	rl := rep.Start(context.Background(), "r_prints", nil)
	if _, err := rl.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-api.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the line was not sent before Close")
	}
	if err := rl.Close(context.Background(), Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.logs) != 1 || api.logs[0] != "hello" || len(api.closes) != 2 {
		t.Fatalf("logs %q, %d closings; want [hello] and 2", api.logs, len(api.closes))
	}
}
