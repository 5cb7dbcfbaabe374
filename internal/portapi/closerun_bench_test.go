package portapi

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/benchcount"
)

// cannedPort answers every request on a kept-alive connection with one fixed 200 and
// allocates (almost) nothing per request, so a benchmark counts the client's allocations.
func cannedPort(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	answer, token := cannedAnswer(`{"ok":true}`), cannedAnswer(`{"ok":true,"accessToken":"tok1","expiresIn":10800,"tokenType":"Bearer"}`)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCanned(conn, answer, token)
		}
	}()
	return "http://" + ln.Addr().String()
}

func cannedAnswer(body string) []byte {
	return []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func serveCanned(conn net.Conn, answer, token []byte) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		length, auth := 0, false
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if bytes.HasPrefix(line, []byte("POST /v1/auth/")) {
				auth = true
			}
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
				length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
			if len(bytes.TrimSpace(line)) == 0 {
				break
			}
		}
		if _, err := r.Discard(length); err != nil {
			return
		}
		out := answer
		if auth {
			out = token
		}
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// BenchmarkCloseRun is one quiet run's closing request on a warm connection, under contexts
// shaped as the agent's (the run's, the closing budget's, the lease's); allocs/op and
// goroutines/op are its cost.
func BenchmarkCloseRun(b *testing.B) {
	c, err := New(Options{BaseURL: cannedPort(b), ClientID: "id", ClientSecret: "secret", Observe: func(string, int) {}})
	if err != nil {
		b.Fatal(err)
	}
	run, cancel := context.WithCancel(context.Background())
	defer cancel()
	closing := Closing{Message: "SUCCESS", TerminationStatus: StatusSuccess, StatusLabel: "exit code 0"}
	if _, err := c.CloseRun(run, "r_bench", closing); err != nil { // the token and a connection
		b.Fatal(err)
	}
	b.ReportAllocs()
	goroutines := benchcount.Goroutines()
	for b.Loop() {
		budget, done := context.WithTimeout(run, time.Minute)
		acting, stop := context.WithCancelCause(budget)
		if _, err := c.CloseRun(acting, "r_bench", closing); err != nil {
			b.Fatal(err)
		}
		stop(nil)
		done()
	}
	benchcount.ReportGoroutines(b, goroutines) // 0: a warm connection's loops serve it
}

// The closing request carries exactly the headers it always did, though their values are
// shared between requests now; the reserved header goes only where asked for.
func TestCloseRunHeaders(t *testing.T) {
	f := newFakePort(t)
	var got http.Header
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusOK)
	}
	c, _ := newTestClient(t, f, nil)
	if _, err := c.CloseRun(context.Background(), "r_1", Closing{Message: "m", TerminationStatus: StatusSuccess}); err != nil {
		t.Fatal(err)
	}
	got.Del("Accept-Encoding") // the transport's own
	got.Del("Content-Length")
	want := http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer tok1"},
		"Content-Type": {"application/json"}, "User-Agent": {"port-runner"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
}

// A JSON request's headers are one map per token, shared by the requests at once: they
// reach Port whole, every time, and no request changes them (-race sees a write).
func TestSharedJSONHeadersStayAsTheyAre(t *testing.T) {
	f := newFakePort(t)
	var mu sync.Mutex
	var seen []http.Header
	f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		h := r.Header.Clone()
		h.Del("Accept-Encoding") // the transport's own
		h.Del("Content-Length")
		mu.Lock()
		seen = append(seen, h)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
	c, _ := newTestClient(t, f, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := c.CloseRun(context.Background(), "r_"+strconv.Itoa(i), Closing{Message: "m", TerminationStatus: StatusSuccess}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	want := http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer tok1"},
		"Content-Type": {"application/json"}, "User-Agent": {"port-runner"}}
	if len(seen) != 8 {
		t.Fatalf("%d requests reached Port, want 8", len(seen))
	}
	for _, h := range append(seen, c.shared.forJSON("tok1")) {
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("headers %v, want %v", h, want)
		}
	}
}

// Bodies are encoding/json's without HTML escaping, each its own though the encoder is
// kept: a shorter body after a longer one carries nothing of it.
func TestClosingBodiesAsWritten(t *testing.T) {
	f := newFakePort(t)
	c, _ := newTestClient(t, f, nil)
	for _, msg := range []string{"<b>a & b</b>\n\u2028 \"long\" " + strings.Repeat("x", 300), "short"} {
		if _, err := c.CloseRun(context.Background(), "r_1", Closing{Message: msg, TerminationStatus: StatusSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`{"message":"<b>a & b</b>\n\u2028 \"long\" ` + strings.Repeat("x", 300) + `","terminationStatus":"SUCCESS"}`,
		`{"message":"short","terminationStatus":"SUCCESS"}`,
	}
	var got []string
	for _, r := range f.recorded() {
		if strings.HasSuffix(r.path, "/logs") {
			got = append(got, string(r.body))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("bodies\n%q\nwant\n%q", got, want)
	}
}
