package portapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
)

// Claims and acknowledgements as Port's clients make them: the emulator refuses a claim
// without x-port-reserved-usage or outside the documented limits, so this also checks the
// client sends both right.
func TestClaimAndAcknowledge(t *testing.T) {
	e, c := emulated(t, emulator.Options{Delivery: emulator.DeliveryPolling})
	ctx := context.Background()
	var ids []string
	for range 3 {
		r, err := e.CreateRun(ctx, "deploy", emulator.CreateRunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	got, err := c.ClaimRuns(ctx, portapi.Claim{Limit: 2, VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] || got[0].Node || len(got[0].Raw) == 0 {
		t.Fatalf("claimed %+v, want the two oldest of %v", got, ids)
	}
	if err := c.AckRun(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.AckRun(ctx, ids[0]); !errors.Is(err, portapi.ErrClaimedElsewhere) {
		t.Fatalf("second ack: %v, want ErrClaimedElsewhere", err)
	}
	if rest, err := c.ClaimRuns(ctx, portapi.Claim{Limit: 100, VisibilityTimeout: time.Minute}); err != nil || len(rest) != 1 || rest[0].ID != ids[2] {
		t.Fatalf("second claim %+v %v, want only %s", rest, err, ids[2])
	}
	if _, err := c.ClaimRuns(ctx, portapi.Claim{Limit: 101, VisibilityTimeout: time.Minute}); !portapi.Permanent(err) {
		t.Fatalf("claim over Port's limit: %v, want a permanent refusal", err)
	}
	if err := c.SetStreamer(ctx, "KAFKA"); err != nil || e.Delivery() != emulator.DeliveryKafka {
		t.Fatalf("SetStreamer: %v, delivery %q", err, e.Delivery())
	}
}

// loseFirstAck passes every request to Port but answers the first acknowledgement with a
// 502, as a gateway that lost Port's answer would: Port acknowledged the run.
type loseFirstAck struct {
	port http.Handler
	lost atomic.Bool
}

func (l *loseFirstAck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/actions/runs/ack" && l.lost.CompareAndSwap(false, true) {
		l.port.ServeHTTP(httptest.NewRecorder(), r)
		http.Error(w, `{"ok":false}`, http.StatusBadGateway)
		return
	}
	l.port.ServeHTTP(w, r)
}

// An acknowledgement whose answer was lost is retried; the retry's 409 is this claimer's
// own acknowledgement, not another's: the run is this replica's to run.
func TestAckWhoseAnswerWasLost(t *testing.T) {
	e := emulator.New(emulator.Options{ClientID: "c", ClientSecret: "s", Delivery: emulator.DeliveryPolling})
	srv := httptest.NewServer(&loseFirstAck{port: e})
	t.Cleanup(srv.Close)
	c, err := portapi.New(portapi.Options{BaseURL: srv.URL, ClientID: "c", ClientSecret: "s", BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run, _ := e.CreateRun(ctx, "deploy", emulator.CreateRunRequest{})
	if _, err := c.ClaimRuns(ctx, portapi.Claim{Limit: 1, VisibilityTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := c.AckRun(ctx, run.ID); err != nil {
		t.Fatalf("ack whose first answer was lost: %v, want nil (the run is ours)", err)
	}
	if st, _ := e.Run(run.ID); !st.Acked || st.RejectedAcks != 1 {
		t.Fatalf("run acked %v, rejected acks %d; want the lost ack and one 409", st.Acked, st.RejectedAcks)
	}
}

// Node runs are claimed and acknowledged on their own routes, with their own bodies.
func TestClaimAndAcknowledgeNodeRuns(t *testing.T) {
	e, c := emulated(t, emulator.Options{Delivery: emulator.DeliveryPolling})
	ctx := context.Background()
	nr, err := e.CreateNodeRun(ctx, "release", "build", emulator.CreateNodeRunRequest{Payload: map[string]any{"v": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if runs, err := c.ClaimRuns(ctx, portapi.Claim{Limit: 10, VisibilityTimeout: time.Minute}); err != nil || len(runs) != 0 {
		t.Fatalf("action-run claim gave %v %v: a node run is not an action run", runs, err)
	}
	got, err := c.ClaimNodeRuns(ctx, portapi.Claim{Limit: 10, VisibilityTimeout: time.Minute})
	if err != nil || len(got) != 1 || got[0].ID != nr.ID || !got[0].Node {
		t.Fatalf("node claim %+v %v, want %s", got, err, nr.ID)
	}
	if err := c.AckNodeRun(ctx, nr.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.AckNodeRun(ctx, nr.ID); !errors.Is(err, portapi.ErrClaimedElsewhere) {
		t.Fatalf("second node ack: %v, want ErrClaimedElsewhere", err)
	}
}
