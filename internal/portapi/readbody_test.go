package portapi

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// An answer that announces more than it sends costs what it sends, not what it announced:
// a server or middlebox that lies would otherwise cost maxResponseBody at every attempt.
func TestAnnouncedLengthIsNotAllocatedAhead(t *testing.T) {
	resp := &http.Response{ContentLength: maxResponseBody, Body: io.NopCloser(strings.NewReader("{}"))}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _ = readBody(resp) // net/http's body says the answer was cut off; this one cannot
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > maxResponseBody/4 {
		t.Errorf("reading a 2-byte answer that announced %d bytes allocated %d bytes", maxResponseBody, got)
	}
}

// Port's small answers still read whole, in one buffer of their size.
func TestSmallAnswerReadWhole(t *testing.T) {
	body := `{"ok":true}`
	resp := &http.Response{ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body))}
	got, err := readBody(resp)
	if err != nil || string(got) != body || cap(got) != len(body) {
		t.Errorf("readBody = %q (cap %d), %v; want %q in a buffer of its size", got, cap(got), err, body)
	}
}
