package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// Port's claimed run (port-agent's fixture shape) reads as the run message port-agent
// builds of it: the body, with the run's id as context.runId and the invocation method.
func TestClaimedMessage(t *testing.T) {
	d, err := runmsg.NewDecoder(runmsg.Options{VerifySignature: true, Secret: "s"}) // claimed runs are not signed
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(`{"_id":"r_1","id":"r_1","payload":{"type":"WEBHOOK","url":"http://x","agent":true,"synchronized":false,
		"method":"POST","headers":{},"body":{"context":{"runId":"r_other","blueprint":"svc"},"payload":{"action":{"identifier":"deploy"}},"action":"deploy"}}}`)
	run, err := d.DecodeClaimed(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	msg := run.Context["message"]
	invocation, _ := runmsg.Lookup(msg, "payload", "action", "invocationMethod").(map[string]any)
	if run.ID != "r_1" || runmsg.Lookup(msg, "context", "blueprint") != "svc" || runmsg.Lookup(msg, "payload", "action", "identifier") != "deploy" ||
		invocation["type"] != "WEBHOOK" || invocation["agent"] != nil {
		t.Errorf("run %+v", run)
	}
	for _, bad := range []string{`[]`, `{"id":"r_1"}`, `{"payload":{"body":{}}}`, `{"id":5,"payload":{"body":{}}}`} {
		if _, err := d.DecodeClaimed([]byte(bad), false); err == nil {
			t.Errorf("claimed run %s read without an error", bad)
		}
	}
	if _, err := d.DecodeClaimed([]byte(`{"config":{}}`), true); err == nil {
		t.Error("a node run without identifier read without an error")
	}
}

func TestLeaseMark(t *testing.T) {
	until := time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)
	got, ok := leaseEnd(leaseMark("pod-a until x", until))
	if !ok || !got.Equal(until) {
		t.Fatalf("leaseEnd(leaseMark) = %v %v, want %v", got, ok, until)
	}
	for _, id := range []string{"", "gh-run-123", "port-runner lease pod", "port-runner lease pod until never"} {
		if _, ok := leaseEnd(id); ok {
			t.Errorf("leaseEnd(%q) read a lease", id)
		}
	}
}

// A run's externalRunId comes from Port (and a command may set it): no value may crash the
// sweep. (Claimed runs themselves are fuzzed by runmsg's FuzzDecodeClaimed.)
func FuzzLeaseEnd(f *testing.F) {
	f.Add(leaseMark("pod-a", time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)))
	f.Add("port-runner lease  until ")
	f.Add("gh-run-42")
	f.Fuzz(func(t *testing.T, externalRunID string) {
		until, ok := leaseEnd(externalRunID)
		if !ok && !until.IsZero() {
			t.Fatalf("leaseEnd(%q) = %v, false", externalRunID, until)
		}
	})
}

// A run left at a handover says why: a claim's end, or (a way in that gives no cause) its
// partition going to another replica.
func TestHandedOverSaysWhy(t *testing.T) {
	claim, cancel := context.WithDeadlineCause(context.Background(), time.Now().Add(-time.Second), errClaimEnded)
	defer cancel()
	if err := handedOver(claim); !errors.Is(err, errClaimEnded) {
		t.Errorf("a claim's end: %v", err)
	}
	partition, cancelPartition := context.WithCancel(context.Background())
	cancelPartition()
	if err := handedOver(partition); !errors.Is(err, errHandedOver) {
		t.Errorf("a partition's handover: %v", err)
	}
}
