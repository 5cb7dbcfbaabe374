package reporter

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
)

// recordAPI keeps what a run's log sent: every batch and the closing message.
type recordAPI struct {
	mu   sync.Mutex
	sent []string
}

func (a *recordAPI) AppendLog(_ context.Context, _, message string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, message)
	return nil
}

func (a *recordAPI) CloseRun(_ context.Context, _ string, cl portapi.Closing) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, cl.Message, "label:"+cl.StatusLabel)
	return false, nil
}

func (a *recordAPI) PatchRun(context.Context, string, portapi.RunPatch) error { return nil }

func (a *recordAPI) AppendLogFrom(ctx context.Context, id string, _ <-chan struct{}, take func() (string, bool)) (bool, error) {
	return sendTaken(take, func(m string) error { return a.AppendLog(ctx, id, m) })
}

func (a *recordAPI) PatchRunFrom(ctx context.Context, id string, _ <-chan struct{}, take func() (portapi.RunPatch, bool)) (bool, error) {
	return sendTaken(take, func(p portapi.RunPatch) error { return a.PatchRun(ctx, id, p) })
}

func (a *recordAPI) all() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.sent, "\n")
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

// Overlapping secrets are masked as the union of their occurrences (README "What Port sees").
func TestMaskOverlapping(t *testing.T) {
	m := masker{values: []string{"1234SECRETTAIL", "XXXX1234"}}
	for in, want := range map[string]string{
		"XXXX1234SECRETTAIL":       "***",
		"a XXXX1234SECRETTAIL b":   "a *** b",
		"XXXX1234 and 1234SECRETT": "*** and 1234SECRETT",
		"XXXX1234XXXX1234":         "***", // touching occurrences: one stretch
		"1234SECRETTAILXXXX1234":   "***",
		"nothing":                  "nothing",
	} {
		if got := m.Replace(in); got != want {
			t.Errorf("Replace(%q) = %q, want %q", in, got, want)
		}
	}
	// A value overlapping itself.
	if got := (masker{values: []string{"abab"}}).Replace("xababab y"); got != "x*** y" {
		t.Errorf("self-overlap: %q", got)
	}

	// Through a run's log, one byte per write (the pipe may split anywhere), and across the
	// cut of a line longer than maxLineBytes.
	api := &recordAPI{}
	rl := New(api, Options{}).Start(context.Background(), "r_overlap", []string{"XXXX1234", "1234SECRETTAIL"})
	for _, c := range []byte("printed together: XXXX1234SECRETTAIL\n") {
		write(t, rl, string(c))
	}
	long := strings.Repeat("a", maxLineBytes-10) + "XXXX1234SECRETTAIL" + strings.Repeat("b", 50) + "\n"
	write(t, rl, long[:maxLineBytes-6])
	write(t, rl, long[maxLineBytes-6:])
	write(t, rl, "::port-status-label::XXXX1234SECRETTAIL\n")
	closeRun(t, rl, Outcome{Success: true, Summary: "summary 1234SECRETTAILXXXX1234"})
	sent := api.all()
	for _, part := range []string{"SECRET", "TAIL", "XXXX", "1234"} {
		if strings.Contains(sent, part) {
			t.Errorf("%q reached Port:\n%.400s", part, sent)
		}
	}
	if !strings.Contains(sent, "printed together: ***\n") || !strings.Contains(sent, "label:***") {
		t.Errorf("masked output:\n%.400s", sent)
	}
}

// naiveMask is the oracle: mark every byte inside any occurrence, then turn each run of
// marked bytes into one "***".
func naiveMask(s string, values []string) string {
	marked := make([]bool, len(s))
	for _, v := range values {
		if v == "" {
			continue
		}
		for i := 0; i+len(v) <= len(s); i++ {
			if s[i:i+len(v)] == v {
				for j := i; j < i+len(v); j++ {
					marked[j] = true
				}
			}
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !marked[i] {
			b.WriteByte(s[i])
			continue
		}
		// Touching occurrences are one stretch, as in masker.
		b.WriteString("***")
		for i+1 < len(s) && marked[i+1] {
			i++
		}
	}
	return b.String()
}

// FuzzMask checks the masker against the oracle, and the whole run's log (line splitting,
// writes of any size) against the oracle applied line by line.
func FuzzMask(f *testing.F) {
	f.Add("printed together: XXXX1234SECRETTAIL\n", "XXXX1234", "1234SECRETTAIL", uint8(1))
	f.Add("ababab\nab", "abab", "ba", uint8(3))
	f.Add("tok-en\r\ntoken", "token", "en\r", uint8(0))
	f.Add("aaaa", "a", "aa", uint8(2))
	f.Add("secret split across writes: s3cr3t!\n", "s3cr3t", "t!", uint8(7))
	f.Fuzz(func(t *testing.T, text, m1, m2 string, chunk uint8) {
		if strings.Contains(text, "::") || len(text) > 4096 {
			return // workflow commands change the masks; long lines are cut (TestMasking)
		}
		values := []string{m1, m2}
		var clean []string
		for _, v := range values {
			if v != "" && !strings.ContainsAny(v, "\r\n") {
				clean = append(clean, v)
			}
		}
		if got, want := (masker{values: clean}).Replace(text), naiveMask(text, clean); got != want {
			t.Fatalf("Replace(%q) with %q = %q, want %q", text, clean, got, want)
		}

		api := &recordAPI{}
		rl := New(api, Options{}).Start(context.Background(), "r_fuzz", clean)
		step := int(chunk%16) + 1
		for i := 0; i < len(text); i += step {
			if _, err := rl.Write([]byte(text[i:min(len(text), i+step)])); err != nil {
				t.Fatal(err)
			}
		}
		if err := rl.Close(context.Background(), Outcome{Success: true}); err != nil {
			t.Fatal(err)
		}
		var want []string
		for line := range strings.SplitSeq(text, "\n") {
			want = append(want, naiveMask(strings.TrimSuffix(line, "\r"), clean))
		}
		if strings.HasSuffix(text, "\n") {
			want = want[:len(want)-1]
		}
		got := api.all()
		wantText := strings.Join(want, "\n")
		if wantText == "" {
			wantText = portapi.StatusSuccess // Port needs a message: a quiet run's one line
		}
		if got != wantText+"\nlabel:" {
			t.Fatalf("log of %q with %q:\n got %q\nwant %q", text, clean, got, wantText+"\nlabel:")
		}
	})
}

// A secret is masked as a JSON string holds it too (a command printing $PORT_RUN_FILE, or
// jq's output): quotes, backslashes, newlines and <>& escaped.
func TestMaskJSONEscaped(t *testing.T) {
	var m masker
	m.add(`hun"ter\2-Q7`, "pem-1\npem-2", "a<b&c")
	for in, want := range map[string]string{
		`{"pw":"hun\"ter\\2-Q7"}`:    `{"pw":"***"}`,
		`{"key":"pem-1\npem-2"}`:     `{"key":"***"}`,
		`{"html":"a\u003cb\u0026c"}`: `{"html":"***"}`,
		`{"jq":"a<b&c"}`:             `{"jq":"***"}`,
		`plain hun"ter\2-Q7`:         `plain ***`,
	} {
		if got := m.Replace(in); got != want {
			t.Errorf("Replace(%s) = %s, want %s", in, got, want)
		}
	}
}

// In a JSON value a command sends (its response, its outputs), a number that is a masked
// value becomes "***"; other numbers stay numbers.
func TestMaskJSONNumbers(t *testing.T) {
	var m masker
	m.add("482913")
	got := m.json(map[string]any{"pin": 482913.0, "n": 80.0, "s": "pin 482913"})
	want := map[string]any{"pin": "***", "n": 80.0, "s": "pin ***"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("json = %v, want %v", got, want)
	}
}
