package reporter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCRLF(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_crlf")
	rl := New(v.api, Options{FlushInterval: time.Hour}).Start(context.Background(), id, nil)
	write(t, rl, "one\r\ntwo\r\n")
	write(t, rl, "three\r") // the CR and LF in different reads
	write(t, rl, "\nprogress 10%\rprogress 100%\r\n")
	write(t, rl, "\r\n")
	write(t, rl, "last without newline\r")
	closeRun(t, rl, Outcome{Success: true, Summary: "end"})
	s := checkClosedOnce(t, v, id, "SUCCESS", "")
	equalLines(t, logLines(s), []string{"one", "two", "three", "progress 10%\rprogress 100%", "", "last without newline", "end"})
}

// TestConcurrentWrites runs writers, the sender and Close together under -race.
func TestConcurrentWrites(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_conc")
	rl := New(v.api, Options{FlushInterval: time.Millisecond, MaxBatchBytes: 512}).Start(context.Background(), id, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(rl, "writer %d line %d\n::port-summary::%d/%d\n", w, i, w, i)
			}
		})
	}
	wg.Wait()
	closeRun(t, rl, Outcome{Success: true})
	s := checkClosedOnce(t, v, id, "SUCCESS", "")
	next := map[string]int{}
	for _, l := range head(logLines(s), 800) {
		var w, i int
		if _, err := fmt.Sscanf(l, "writer %d line %d", &w, &i); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if k := fmt.Sprint(w); next[k] != i {
			t.Fatalf("writer %d: line %d after %d", w, i, next[k]-1)
		}
		next[fmt.Sprint(w)]++
	}
}
