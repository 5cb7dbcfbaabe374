package consumer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/port-runner/port-runner/internal/clock"
	"github.com/port-runner/port-runner/internal/waitcond"
)

// TestAbsenceOutlivesAComeback: a member left out of the group's description once (its
// session expired: it was frozen, cut off) and listed again under the same id, as KIP-848
// keeps a fenced member's id, holds none of the runs it took before: others may have
// decided them a bound after it went. What it takes after its comeback it holds.
func TestAbsenceOutlivesAComeback(t *testing.T) {
	m := newMembers(time.Hour, time.Hour)
	m.observe(clock.Now(), []string{"a", "b"}, "a", nil)
	before := clock.Now()
	if err := m.held("a", before); err != nil {
		t.Fatalf("a listed member: %v", err)
	}
	m.observe(clock.Now(), []string{"b"}, "a", nil) // a's session expired
	m.observe(clock.Now(), []string{"a", "b"}, "a", nil)
	if err := m.held("a", before); !errors.Is(err, ErrNotOwned) {
		t.Fatalf("a run taken before the absence: %v, want ErrNotOwned", err)
	}
	if err := m.held("a", clock.Now()); err != nil {
		t.Fatalf("a run taken after the comeback: %v", err)
	}
	other := newMembers(time.Hour, time.Hour) // b's view of a lease a holds
	other.observe(clock.Now(), []string{"a", "b"}, "b", []string{"a"})
	other.observe(clock.Now(), []string{"b"}, "b", []string{"a"})
	other.observe(clock.Now(), []string{"a", "b"}, "b", []string{"a"})
	if !other.leaseEnded(Lease{Holder: "a", Bound: 0}) {
		t.Fatal("a lease whose holder went and came back does not end a bound after it went")
	}
	if other.leaseEnded(Lease{Holder: "a", Bound: time.Hour}) {
		t.Fatal("a lease ended before its bound")
	}
}

// A classic member whose group Kafka converted to a consumer group (a rolling update to
// groupProtocol consumer): DescribeGroups answers GROUP_ID_NOT_FOUND (v6+) or Dead with no
// error (older versions), and the consumer group's API lists the member, which so goes on
// confirming its membership. (kfake does not convert a group with members: the answers are
// Kafka's, scripted.)
func TestAConvertedGroupIsDescribedByTheOtherAPI(t *testing.T) {
	for _, dead := range []bool{false, true} {
		kc := fakeCluster(t, 1)
		c := newTestConsumer(t, kc, "g-converted", Options{})
		runReleasing(t, c, func(*Ticket) {})
		waitcond.For(t, "joined", 20*time.Second, c.Joined)
		self := c.memberID()
		kc.ControlKey(kmsg.DescribeGroups.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
			kc.KeepControl()
			req := kr.(*kmsg.DescribeGroupsRequest)
			resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
			for _, g := range req.Groups {
				sg := kmsg.NewDescribeGroupsResponseGroup()
				sg.Group, sg.State = g, "Dead"
				if !dead {
					sg.ErrorCode = kerr.GroupIDNotFound.Code
				}
				resp.Groups = append(resp.Groups, sg)
			}
			return resp, nil, true
		})
		kc.ControlKey(kmsg.ConsumerGroupDescribe.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
			kc.KeepControl()
			req := kr.(*kmsg.ConsumerGroupDescribeRequest)
			resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
			for _, g := range req.Groups {
				sg := kmsg.NewConsumerGroupDescribeResponseGroup()
				sg.Group, sg.State = g, "Stable"
				m := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				m.MemberID = self
				sg.Members = append(sg.Members, m)
				resp.Groups = append(resp.Groups, sg)
			}
			return resp, nil, true
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ids, err := c.describe(ctx)
		cancel()
		if err != nil || len(ids) != 1 || ids[0] != self {
			t.Fatalf("dead %v: describe = %v, %v; want [%s]", dead, ids, err, self)
		}
	}
}
