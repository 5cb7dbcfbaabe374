package reporter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
)

func TestManyLinesFewRequests(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_many")
	// A burst written well within one flush interval (a second in production; 5s here so a
	// loaded CI machine cannot stretch the burst past it) leaves in batches by size.
	const interval = 5 * time.Second
	rep := New(v.api, Options{FlushInterval: interval, MaxBatchBytes: 64 << 10})
	rl := rep.Start(context.Background(), id, nil)

	var want []string
	start := time.Now()
	for i := range 5000 {
		line := fmt.Sprintf("line %05d: compiling package pkg%02d", i, i%97)
		want = append(want, line)
		write(t, rl, line+"\n")
		if i == 2500 {
			write(t, rl, "::port-status-label::Deployed\n")
		}
	}
	if d := time.Since(start); d > interval {
		t.Fatalf("precondition: writing 5,000 lines took %v, longer than the flush interval", d)
	}
	closeRun(t, rl, Outcome{Success: true, Label: "exit code 0", Summary: "port-runner: exit code 0 after 0.1s"})

	want = append(want, "port-runner: exit code 0 after 0.1s")
	s := checkClosedOnce(t, v, id, "SUCCESS", "Deployed")
	equalLines(t, logLines(s), want)
	if n := len(v.logPosts(id)); n > 5 {
		t.Fatalf("%d POST logs requests, want at most 5", n)
	}
	t.Logf("%d lines in %d log requests", len(want), len(v.logPosts(id)))
}

func TestBatchBySize(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_size")
	const maxBatch = 2048
	rep := New(v.api, Options{FlushInterval: time.Hour, MaxBatchBytes: maxBatch})
	rl := rep.Start(context.Background(), id, nil)

	// Lines whose JSON encoding is longer than the line: quotes, tabs, control characters,
	// invalid UTF-8 and U+2028 all grow when escaped.
	var want []string
	for i := range 2000 {
		line := fmt.Sprintf("%04d \"quoted\"\t\\ \x01\x1f <&> é \u2028 \xff end", i)
		want = append(want, strings.ToValidUTF8(line, "\uFFFD"))
		write(t, rl, line+"\n")
	}
	// Several batches leave before Close, by size alone (the interval is an hour).
	v.waitRun(t, id, "batches by size", func(s emulator.RunState) bool { return len(s.Logs) >= 10 })

	huge := strings.Repeat("x", 3*maxLineBytes+1000)
	write(t, rl, huge[:100000]) // a line without a newline, in two writes
	write(t, rl, huge[100000:]+"\n")
	write(t, rl, "after the huge line\n")
	closeRun(t, rl, Outcome{Success: false, Label: "exit code 1"})

	s := checkClosedOnce(t, v, id, "FAILURE", "exit code 1")
	got := logLines(s)
	equalLines(t, head(got, len(want)), want)
	// The huge line is cut into lines of at most maxLineBytes; nothing of it is lost.
	rest := got[len(want):]
	if rest[len(rest)-1] != "after the huge line" {
		t.Fatalf("last line %.100q", rest[len(rest)-1])
	}
	for _, l := range rest[:len(rest)-1] {
		if len(l) > maxLineBytes {
			t.Fatalf("a cut line has %d bytes", len(l))
		}
	}
	if strings.Join(rest[:len(rest)-1], "") != huge || len(rest)-1 != 4 {
		t.Fatalf("the huge line came back as %d lines, not the same bytes", len(rest)-1)
	}
	posts := v.logPosts(id)
	for i, r := range posts[:len(posts)-1] {
		var body struct{ Message string }
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		// A batch is bounded by its encoded size, unless it is a single long line.
		if len(r.Body) > maxBatch+len(`{"message":""}`) && strings.Contains(body.Message, "\n") {
			t.Fatalf("log request %d has %d bytes, over MaxBatchBytes %d", i, len(r.Body), maxBatch)
		}
	}
	t.Logf("%d log requests", len(posts))
}

func TestNoRequestOverOneMiB(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_mib")
	// A MaxBatchBytes over Port's limit is capped; a slow-to-start Port lets lines pile up.
	rep := New(v.api, Options{FlushInterval: time.Hour, MaxBatchBytes: 8 << 20, MaxBytesPerRun: 16 << 20})
	rl := rep.Start(context.Background(), id, nil)
	line := strings.Repeat("\x00", 1000) // six bytes each once escaped
	var want []string
	for range 1200 { // 7 MB once escaped: one request without the cap
		write(t, rl, line+"\n")
		want = append(want, line)
	}
	closeRun(t, rl, Outcome{Success: true, Label: strings.Repeat("L", 1<<20), Summary: strings.Repeat("\x01", 1<<20)})
	s := checkClosedOnce(t, v, id, "SUCCESS", truncate(strings.Repeat("L", 1<<20), maxValueBytes))
	equalLines(t, head(logLines(s), len(want)), want)
	if len(v.logPosts(id)) < 7 {
		t.Fatalf("%d log requests for 7 MB of escaped output", len(v.logPosts(id)))
	}
}

func TestIntervalFlush(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_interval")
	rep := New(v.api, Options{FlushInterval: 50 * time.Millisecond, MaxBatchBytes: 64 << 10})
	rl := rep.Start(context.Background(), id, nil)
	start := time.Now()
	write(t, rl, "only line\n")
	s := v.waitRun(t, id, "the interval flush", func(s emulator.RunState) bool { return len(s.Logs) > 0 })
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("the batch left after %v, before the flush interval", d)
	}
	if s.Logs[0].Message != "only line" || s.Terminations != 0 {
		t.Fatalf("logs %+v, terminations %d", s.Logs, s.Terminations)
	}
	// A second line after a quiet spell starts a new interval.
	write(t, rl, "second line\n")
	v.waitRun(t, id, "the second flush", func(s emulator.RunState) bool { return len(s.Logs) > 1 })
	closeRun(t, rl, Outcome{Success: true})
	s = checkClosedOnce(t, v, id, "SUCCESS", "")
	equalLines(t, logLines(s), []string{"only line", "second line", "SUCCESS"})
}

func TestQuietRunOneRequest(t *testing.T) {
	for _, o := range []Outcome{{Success: true}, {Success: false, Label: "exit code 2", Summary: "port-runner: exit code 2 after 5ms"}} {
		v := newEnv(t, nil)
		id := v.run(fmt.Sprintf("r_quiet_%v", o.Success))
		rl := New(v.api, Options{}).Start(context.Background(), id, []string{"s3cr3t"})
		closeRun(t, rl, o)
		reqs := v.runRequests(id)
		if len(reqs) != 1 {
			t.Fatalf("%d requests for a quiet run, want 1", len(reqs))
		}
		s := v.state(t, id)
		if len(s.Logs) != 1 || s.Logs[0].Message == "" || s.Terminations != 1 {
			t.Fatalf("logs %+v terminations %d", s.Logs, s.Terminations)
		}
		// A second Close sends nothing.
		closeRun(t, rl, o)
		if n := len(v.runRequests(id)); n != 1 {
			t.Fatalf("%d requests after a second Close", n)
		}
	}
}

func TestMaxBytesPerRun(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_cap")
	var dropped, logged atomic.Int64
	rep := New(v.api, Options{
		FlushInterval: time.Hour, MaxBytesPerRun: 1000,
		OnDropped:  func(n int) { dropped.Add(int64(n)) },
		OnLogBytes: func(n int) { logged.Add(int64(n)) },
	})
	rl := rep.Start(context.Background(), id, nil)
	var want []string
	for i := range 100 {
		line := fmt.Sprintf("%03d%s", i, strings.Repeat(".", 96)) // 100 bytes with "\n"
		if i == 9 {
			line += strings.Repeat(".", 100) // over the budget: dropped
		}
		// Line 10 would still fit the budget, but follows dropped output: dropped too,
		// so the log has no hole.
		write(t, rl, line+"\n")
		if i < 9 {
			want = append(want, line)
		}
	}
	write(t, rl, "tail\n")
	closeRun(t, rl, Outcome{Success: true, Summary: "port-runner: exit code 0"})

	s := checkClosedOnce(t, v, id, "SUCCESS", "")
	want = append(want, "port-runner: 9205 bytes of output dropped past logs.maxBytesPerRun (1000 bytes)", "port-runner: exit code 0")
	equalLines(t, logLines(s), want)
	if dropped.Load() != 9205 || logged.Load() != 900 {
		t.Fatalf("OnDropped got %d bytes, OnLogBytes %d", dropped.Load(), logged.Load())
	}
}

func TestJSONLen(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	samples := []string{"", "plain", "\"\\\n\r\t\b\f\x00\x1f\x7f", "<>&", "é€😀", "\u2028\u2029", "\xff\xfe", "a\xe2\x82"}
	for range 2000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		samples = append(samples, string(b))
	}
	for _, s := range samples {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // as portapi encodes
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := buf.Len() - 3; jsonLen(s) != want { // quotes and the encoder's newline
			t.Fatalf("jsonLen(%q) = %d, encoded %d: %s", s, jsonLen(s), want, buf.Bytes())
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 8, "abcde..."},
		{"abcdé€", 8, "abcd..."}, // é would be split
		{"abcd€", 7, "abcd€"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
