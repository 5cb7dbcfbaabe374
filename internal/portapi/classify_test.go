package portapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestClassifyEveryAnswer: every status Port can answer, as the client treats it: its
// class, whether one request is retried, and what Permanent and IsRunClosed say of the
// error a caller gets when the answer is final.
func TestClassifyEveryAnswer(t *testing.T) {
	for _, tc := range []struct {
		code      int // 0: the connection is cut before an answer
		class     Class
		retried   bool
		permanent bool
		closed    bool
	}{
		{200, ClassOK, false, false, false},
		{201, ClassOK, false, false, false},
		{400, ClassPermanent, false, true, false},
		{401, ClassRefresh, true, false, false}, // once, with a new token; a second 401 is final
		{403, ClassCredentials, false, false, false},
		{404, ClassPermanent, false, true, false},
		{408, ClassRetry, true, false, false},
		{409, ClassRunClosed, false, true, true},
		{413, ClassPermanent, false, true, false},
		{422, ClassPermanent, false, true, false},
		{429, ClassRetry, true, false, false},
		{500, ClassRetry, true, false, false},
		{502, ClassRetry, true, false, false},
		{503, ClassRetry, true, false, false},
		{504, ClassRetry, true, false, false},
		{0, ClassRetry, true, false, false},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			var netErr error
			if tc.code == 0 {
				netErr = errors.New("connection refused")
			}
			if got := Classify(tc.code, netErr); got != tc.class {
				t.Fatalf("Classify(%d) = %v, want %v", tc.code, got, tc.class)
			}
			// The same answer from a real server, first and then always: one request
			// retried comes back once more; a final one is what the caller's error says.
			f := newFakePort(t)
			var calls atomic.Int32
			f.api = func(w http.ResponseWriter, r *http.Request, _ []byte) {
				n := calls.Add(1)
				if tc.code == 0 {
					if n == 1 {
						conn, _, _ := w.(http.Hijacker).Hijack()
						conn.Close()
						return
					}
					fmt.Fprint(w, `{"ok":true}`)
					return
				}
				if n > 1 && tc.class == ClassRetry {
					fmt.Fprint(w, `{"ok":true}`)
					return
				}
				w.WriteHeader(tc.code)
				fmt.Fprint(w, `{"ok":false}`)
			}
			c, _ := newTestClient(t, f, nil)
			err := c.AppendLog(context.Background(), "r_1", "x")
			wantCalls := int32(1)
			if tc.retried {
				wantCalls = 2
			}
			if got := calls.Load(); got != wantCalls {
				t.Fatalf("%d requests for one call, want %d", got, wantCalls)
			}
			final := tc.class == ClassOK || tc.class == ClassRetry
			if final != (err == nil) {
				t.Fatalf("AppendLog = %v", err)
			}
			if got := Permanent(err); got != tc.permanent {
				t.Errorf("Permanent = %v, want %v (err %v)", got, tc.permanent, err)
			}
			if got := IsRunClosed(err); got != tc.closed {
				t.Errorf("IsRunClosed = %v, want %v (err %v)", got, tc.closed, err)
			}
		})
	}
}

// A 408 on a closing request is retried and the run ends closed, not left for redelivery.
func TestCloseRunRetries408(t *testing.T) {
	f := newFakePort(t)
	f.api = statusSequence(status(http.StatusRequestTimeout))
	c, obs := newTestClient(t, f, nil)
	already, err := c.CloseRun(context.Background(), "r_1", Closing{Message: "bye", TerminationStatus: StatusSuccess})
	if err != nil || already {
		t.Fatalf("CloseRun = %v, %v; want closed", already, err)
	}
	if got := fmt.Sprint(obs.get()); got != "[auth:200 run_logs:408 run_logs:200]" {
		t.Fatalf("observed %s", got)
	}
}

func TestIsRunClosedNotForCancelled(t *testing.T) {
	err := fmt.Errorf("%w (last error: %w)", context.Canceled, &APIError{StatusCode: 409})
	if IsRunClosed(err) || Permanent(err) {
		t.Fatal("a cancelled call is judged by its last answer")
	}
}
