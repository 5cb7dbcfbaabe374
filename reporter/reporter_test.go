package reporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/port-runner/port-runner/emulator"
	"github.com/port-runner/port-runner/portapi"
)

const (
	clientID     = "reporter-test-client"
	clientSecret = "reporter-test-secret-0123456789"
)

// waitLimit bounds every wait on a condition; nothing in these tests should come close.
const waitLimit = 10 * time.Second

type env struct {
	e   *emulator.Emulator
	api *portapi.Client
}

// newEnv starts the Port API emulator on loopback and a real portapi client for it.
func newEnv(t *testing.T, mod func(*portapi.Options)) *env {
	t.Helper()
	e := emulator.New(emulator.Options{ClientID: clientID, ClientSecret: clientSecret, OrgID: "org_test"})
	ctx, cancel := context.WithCancel(context.Background())
	base, wait, err := e.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = wait() })
	opts := portapi.Options{BaseURL: base, ClientID: clientID, ClientSecret: clientSecret, RequestsPerSecond: 1000}
	if mod != nil {
		mod(&opts)
	}
	api, err := portapi.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{e: e, api: api}
}

func (v *env) run(id string) string {
	v.e.RegisterRun(id, "create_microservice")
	return id
}

// runRequests are the requests that reached the emulator for one run.
func (v *env) runRequests(id string) []emulator.Request {
	var out []emulator.Request
	for _, r := range v.e.Requests() {
		if strings.HasPrefix(r.Path, "/v1/actions/runs/"+id) {
			out = append(out, r)
		}
	}
	return out
}

func (v *env) logPosts(id string) []emulator.Request {
	var out []emulator.Request
	for _, r := range v.runRequests(id) {
		if r.Method == "POST" && r.Path == "/v1/actions/runs/"+id+"/logs" {
			out = append(out, r)
		}
	}
	return out
}

func (v *env) state(t *testing.T, id string) emulator.RunState {
	t.Helper()
	s, ok := v.e.Run(id)
	if !ok {
		t.Fatalf("run %s unknown to the emulator", id)
	}
	return s
}

func (v *env) waitRun(t *testing.T, id string, what string, cond func(emulator.RunState) bool) emulator.RunState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	s, err := v.e.WaitRun(ctx, id, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v (logs %q)", what, err, s.Logs)
	}
	return s
}

// logLines is the run's log in Port as lines, across every accepted log request.
func logLines(s emulator.RunState) []string {
	var out []string
	for _, l := range s.Logs {
		out = append(out, strings.Split(l.Message, "\n")...)
	}
	return out
}

func closeRun(t *testing.T, rl *RunLog, o Outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := rl.Close(ctx, o); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func write(t *testing.T, rl *RunLog, s string) {
	t.Helper()
	n, err := rl.Write([]byte(s))
	if err != nil || n != len(s) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(s))
	}
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("line %d of %d = %.200q, want %.200q", i, len(got), got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
}

// head is at most the first n of lines.
func head(lines []string, n int) []string { return lines[:min(n, len(lines))] }

// checkClosedOnce asserts the run has exactly one termination and every log request fit.
func checkClosedOnce(t *testing.T, v *env, id, status, label string) emulator.RunState {
	t.Helper()
	s := v.state(t, id)
	if s.Terminations != 1 || s.RejectedTerminations != 0 {
		t.Fatalf("terminations %d, rejected %d; want 1, 0", s.Terminations, s.RejectedTerminations)
	}
	if s.Status != status || s.StatusLabel != label {
		t.Fatalf("status %q label %q; want %q %q", s.Status, s.StatusLabel, status, label)
	}
	last := s.Logs[len(s.Logs)-1]
	if last.TerminationStatus != status {
		t.Fatalf("the last log entry has terminationStatus %q, want %q", last.TerminationStatus, status)
	}
	for i, l := range s.Logs[:len(s.Logs)-1] {
		if l.TerminationStatus != "" {
			t.Fatalf("log entry %d of %d terminates the run", i, len(s.Logs))
		}
	}
	for _, r := range v.runRequests(id) {
		if len(r.Body) > 1<<20 || r.Status == 413 {
			t.Fatalf("%s %s: body of %d bytes, answered %d", r.Method, r.Path, len(r.Body), r.Status)
		}
	}
	return s
}

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

func TestMasking(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_mask")
	rep := New(v.api, Options{FlushInterval: time.Hour, Mask: []string{"cfg-secret-1"}})
	rl := rep.Start(context.Background(), id, []string{"run-token-XYZ", "", "pem-line-1\npem-line-2"})

	write(t, rl, "config cfg-secret-1 and run run-token-XYZ\n")
	write(t, rl, "before add-mask: later-value\n")
	write(t, rl, "::add-mask::later-value\n")
	write(t, rl, "after add-mask: later-value\n")
	write(t, rl, "split across writes: run-tok") // a secret across two reads of the pipe
	write(t, rl, "en-XYZ, done\r\n")
	write(t, rl, "key:\npem-line-1\npem-line-2\n")
	write(t, rl, "::port-link::https://ci.example/run?token=run-token-XYZ\n")
	write(t, rl, "::port-status-label::using later-value\n")
	// A secret across the point where a long line without newline is cut.
	long := strings.Repeat("a", maxLineBytes-5) + "run-token-XYZ" + strings.Repeat("b", 100)
	write(t, rl, long[:maxLineBytes])
	write(t, rl, long[maxLineBytes:]+"\n")

	s := v.waitRun(t, id, "the link patch", func(s emulator.RunState) bool { return len(s.Link) == 1 })
	if s.Link[0] != "https://ci.example/run?token=***" {
		t.Fatalf("link %q", s.Link[0])
	}
	closeRun(t, rl, Outcome{Success: true, Summary: "done with run-token-XYZ"})

	s = checkClosedOnce(t, v, id, "SUCCESS", "using ***")
	got := logLines(s)
	want := []string{
		"config *** and run ***",
		"before add-mask: later-value", // ::add-mask:: masks later output only
		"after add-mask: ***",
		"split across writes: ***, done",
		"key:", "***", "***",
	}
	equalLines(t, head(got, len(want)), want)
	joined := strings.Join(got[len(want):], "")
	if wantLong := strings.Repeat("a", maxLineBytes-5) + "***" + strings.Repeat("b", 100); joined != wantLong+"done with ***" {
		t.Fatalf("the long line came back as %d lines: ...%q", len(got)-len(want), joined[maxLineBytes-20:])
	}
	// No secret in any request the run made.
	for _, r := range v.runRequests(id) {
		for _, secret := range []string{"cfg-secret-1", "run-token-XYZ", "pem-line", "using later-value", "::add-mask::"} {
			if bytes.Contains(r.Body, []byte(secret)) {
				t.Fatalf("%s %s carries %q: %.300s", r.Method, r.Path, secret, r.Body)
			}
		}
	}
}

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

// blockingAPI holds every AppendLog until released, like a Port that does not answer.
type blockingAPI struct {
	entered chan struct{} // gets a value when an AppendLog starts
	release chan struct{}

	mu     sync.Mutex
	logs   []string
	closes []portapi.Closing
}

func newBlockingAPI() *blockingAPI {
	return &blockingAPI{entered: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (a *blockingAPI) AppendLog(ctx context.Context, _, message string) error {
	a.entered <- struct{}{}
	select {
	case <-a.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.logs = append(a.logs, message)
	return nil
}

func (a *blockingAPI) CloseRun(_ context.Context, _ string, cl portapi.Closing) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closes = append(a.closes, cl)
	return false, nil
}

func (a *blockingAPI) PatchRun(context.Context, string, portapi.RunPatch) error { return nil }

// The fakes' turn comes at once: they take what to send and send it as AppendLog/PatchRun.
func (a *blockingAPI) AppendLogFrom(ctx context.Context, id string, _ <-chan struct{}, take func() (string, bool)) (bool, error) {
	return sendTaken(take, func(m string) error { return a.AppendLog(ctx, id, m) })
}

func (a *blockingAPI) PatchRunFrom(ctx context.Context, id string, _ <-chan struct{}, take func() (portapi.RunPatch, bool)) (bool, error) {
	return sendTaken(take, func(p portapi.RunPatch) error { return a.PatchRun(ctx, id, p) })
}

func sendTaken[T any](take func() (T, bool), send func(T) error) (bool, error) {
	v, ok := take()
	if !ok {
		return false, nil
	}
	return true, send(v)
}

func TestWriteNeverBlocks(t *testing.T) {
	api := newBlockingAPI()
	rep := New(api, Options{FlushInterval: time.Millisecond, MaxBatchBytes: 4096, MaxBytesPerRun: 1 << 20})
	rl := rep.Start(context.Background(), "r_slow", nil)
	write(t, rl, "first\n")
	<-api.entered // the sender is now stuck in a request to Port

	// Several MB while Port does not answer: every Write returns, in this goroutine, before
	// the request is released. A blocking Write would hang the test here.
	chunk := []byte(strings.Repeat(strings.Repeat("y", 99)+"\n", 640)) // 64,000 bytes
	for range 100 {
		if _, err := rl.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	close(api.release)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := rl.Close(ctx, Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.closes) != 1 || !strings.Contains(api.closes[0].Message, "bytes of output dropped") {
		t.Fatalf("closes %d, last message %.200q", len(api.closes), api.closes)
	}
	var total int
	for _, m := range append(api.logs, api.closes[0].Message) {
		total += len(m) + 1
	}
	if total < 1<<20-200 || total > 1<<20+200 {
		t.Fatalf("%d bytes reached the API, want MaxBytesPerRun and the notice", total)
	}
}

func TestCloseHonoursContext(t *testing.T) {
	api := newBlockingAPI()
	rl := New(api, Options{FlushInterval: time.Millisecond}).Start(context.Background(), "r_stuck", nil)
	write(t, rl, "stuck\n")
	<-api.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := rl.Close(ctx, Outcome{Success: true}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the context's error", err)
	}
	select {
	case <-rl.done: // the sender is gone, not leaked
	default:
		t.Fatal("the sender is still running after Close gave up")
	}
	// A later Close with time to spare closes the run, once.
	close(api.release)
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitLimit)
	defer cancel2()
	if err := rl.Close(ctx2, Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	if err := rl.Close(ctx2, Outcome{Success: true}); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.closes) != 1 {
		t.Fatalf("%d closing requests, want 1", len(api.closes))
	}
}

func TestPortFailingForAWhile(t *testing.T) {
	v := newEnv(t, func(o *portapi.Options) {
		o.BaseBackoff, o.MaxBackoff = time.Millisecond, 10*time.Millisecond
	})
	id := v.run("r_5xx")
	v.e.FailNext(5, 503)
	rep := New(v.api, Options{FlushInterval: 5 * time.Millisecond, MaxBatchBytes: 256})
	rl := rep.Start(context.Background(), id, nil)
	var want []string
	for i := range 50 {
		line := fmt.Sprintf("line %d", i)
		want = append(want, line)
		write(t, rl, line+"\n")
	}
	write(t, rl, "::port-link::https://ci.example/x\n")
	closeRun(t, rl, Outcome{Success: false, Label: "exit code 1", Summary: "bye"})
	s := checkClosedOnce(t, v, id, "FAILURE", "exit code 1")
	equalLines(t, logLines(s), append(want, "bye"))
	if len(s.Link) != 1 {
		t.Fatalf("links %q", s.Link)
	}
	var failed int
	for _, r := range v.runRequests(id) {
		if r.Status == 503 {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d requests answered 503, want 5", failed)
	}
}

func TestPortClosedRunStopsSending(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_gone")
	// Someone else (another agent, a user) ends the run first.
	other := New(v.api, Options{}).Start(context.Background(), id, nil)
	closeRun(t, other, Outcome{Success: false, Label: "cancelled"})

	rl := New(v.api, Options{FlushInterval: time.Millisecond}).Start(context.Background(), id, nil)
	write(t, rl, "late line\n")
	closeRun(t, rl, Outcome{Success: true}) // counts as closed
	s := v.state(t, id)
	if s.Terminations != 1 || s.Status != "FAILURE" {
		t.Fatalf("terminations %d status %s", s.Terminations, s.Status)
	}
}

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

type nopAPI struct{}

func (nopAPI) AppendLog(context.Context, string, string) error { return nil }
func (nopAPI) CloseRun(context.Context, string, portapi.Closing) (bool, error) {
	return false, nil
}
func (nopAPI) PatchRun(context.Context, string, portapi.RunPatch) error { return nil }
func (nopAPI) AppendLogFrom(_ context.Context, _ string, _ <-chan struct{}, take func() (string, bool)) (bool, error) {
	return sendTaken(take, func(string) error { return nil })
}
func (nopAPI) PatchRunFrom(_ context.Context, _ string, _ <-chan struct{}, take func() (portapi.RunPatch, bool)) (bool, error) {
	return sendTaken(take, func(portapi.RunPatch) error { return nil })
}

// BenchmarkRunLogWrite measures lines per second through Write (splitting, masking,
// batching) with a Port that answers at once; writes come in pipe-sized chunks.
func BenchmarkRunLogWrite(b *testing.B) {
	for _, masks := range []int{0, 5} {
		b.Run(fmt.Sprintf("masks=%d", masks), func(b *testing.B) {
			var secrets []string
			for i := range masks {
				secrets = append(secrets, fmt.Sprintf("secret-value-%d-abcdef", i))
			}
			rep := New(nopAPI{}, Options{MaxBytesPerRun: math.MaxInt})
			rl := rep.Start(context.Background(), "r_bench", secrets)
			const perChunk = 400 // ~32 KiB, a pipe read
			var chunk []byte
			for i := range perChunk {
				chunk = fmt.Appendf(chunk, "2026-01-02T03:04:05Z step %03d: compiling package github.com/x/y/z\n", i)
			}
			b.SetBytes(int64(len(chunk)) / perChunk)
			b.ResetTimer()
			lines := 0
			for lines < b.N {
				if _, err := rl.Write(chunk); err != nil {
					b.Fatal(err)
				}
				lines += perChunk
			}
			if err := rl.Close(context.Background(), Outcome{Success: true}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// OnLine sees the lines as Port gets them: masked, without workflow commands.
func TestOnLineSeesMaskedLines(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	rep := New(nopAPI{}, Options{FlushInterval: time.Hour, Mask: []string{"cfg-secret-1"},
		OnLine: func(runID, line string) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, runID+": "+line)
		}})
	rl := rep.Start(context.Background(), "r_online", []string{"run-token-XYZ"})
	write(t, rl, "a cfg-secret-1 b\n::add-mask::v4lue\n::port-status-label::x\nrun-token-XYZ v4lue\n")
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	equalLines(t, got, []string{"r_online: a *** b", "r_online: *** ***"})
	closeRun(t, rl, Outcome{Success: true})
}
