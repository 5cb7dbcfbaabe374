package portapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// An answer that announces more than it sends costs what it sends, not what it announced:
// a server or middlebox that lies would otherwise cost maxResponseBody at every attempt.
func TestAnnouncedLengthIsNotAllocatedAhead(t *testing.T) {
	resp := &http.Response{ContentLength: maxResponseBody, Body: io.NopCloser(strings.NewReader("{}"))}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _ = readBody(resp, false) // net/http's body says the answer was cut off; this one cannot
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > maxResponseBody/4 {
		t.Errorf("reading a 2-byte answer that announced %d bytes allocated %d bytes", maxResponseBody, got)
	}
}

// Port's small answers still read whole, in one buffer of their size.
func TestSmallAnswerReadWhole(t *testing.T) {
	body := `{"ok":true}`
	resp := &http.Response{ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body))}
	got, err := readBody(resp, false)
	if err != nil || string(got) != body || cap(got) != len(body) {
		t.Errorf("readBody = %q (cap %d), %v; want %q in a buffer of its size", got, cap(got), err, body)
	}
}

// A closing request's answer is dropped unread into memory, yet read to its end: one cut
// short of the length Port announced fails the attempt, which is tried again.
func TestCutShortClosingAnswerIsRetried(t *testing.T) {
	f := newFakePort(t)
	f.api = firstAnswerCut(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ok\":")
	c, obs := newTestClient(t, f, nil)
	if _, err := c.CloseRun(context.Background(), "r_1", Closing{Message: "m", TerminationStatus: StatusSuccess}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(obs.get(), " "), "auth:200 run_logs:200 run_logs:200"; got != want {
		t.Fatalf("observed %q, want %q: the cut-off answer tried again", got, want)
	}
}

// firstAnswerCut answers the first request with sent and then closes the connection (sent
// "": no answer at all); every later one with {"ok":true}.
func firstAnswerCut(t *testing.T, sent string) func(http.ResponseWriter, *http.Request, []byte) {
	var cut atomic.Bool
	return func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if !cut.CompareAndSwap(false, true) {
			fmt.Fprint(w, `{"ok":true}`)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = buf.WriteString(sent)
		_ = buf.Flush()
		conn.Close()
	}
}
