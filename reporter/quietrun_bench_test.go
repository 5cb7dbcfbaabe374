package reporter

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// BenchmarkQuietRun is the reporter's share of a run that prints nothing: its log's start
// and its closing request (a Port that answers at once), with a JSON logger as the agent's.
func BenchmarkQuietRun(b *testing.B) {
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	rep := New(nopAPI{}, Options{Logger: logger})
	b.ReportAllocs()
	for b.Loop() {
		rl := rep.Start(context.Background(), "r_bench", nil)
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
