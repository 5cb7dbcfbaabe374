package demo

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
)

// The demo's and try's agent logs from several goroutines at once (the watch of long runs,
// a run's log sender, the run itself) into one writer: the console core takes one line at a
// time, so a plain buffer (a test's stderr) gets whole lines and the race detector nothing
// to report.
func TestConsoleCoreOneLineAtATime(t *testing.T) {
	var buf bytes.Buffer
	log := zap.New(consoleCore(&buf))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 50 {
				log.Warn("line", zap.Int("from", i))
			}
		})
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 200 {
		t.Fatalf("%d lines, want 200", n)
	}
}
