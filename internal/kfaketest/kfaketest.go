// Package kfaketest holds controls of the in-process broker (kfake) that the tests of more
// than one package use. It imports nothing of the project's, so package consumer's own tests
// use it too (they cannot import test/harness, which imports consumer).
package kfaketest

import (
	"slices"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RefuseCommits makes kc refuse every offset commit (a partition-level error, as during a
// rebalance) while on holds; refused, when set, is called at each refusal.
func RefuseCommits(kc *kfake.Cluster, on *atomic.Bool, refused func()) {
	kc.ControlKey(kmsg.OffsetCommit.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if !on.Load() {
			return nil, nil, false
		}
		req := kr.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.RebalanceInProgress.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		if refused != nil {
			refused()
		}
		return resp, nil, true
	})
}

// CommitsAppliedButFailed makes kc apply every offset commit and answer it failed
// (REQUEST_TIMED_OUT, as a broker whose replication of the offsets topic timed out) while on
// holds: the client believes the commit failed, and the group has it. It returns the fault,
// whose Hits count the commits so answered.
func CommitsAppliedButFailed(kc *kfake.Cluster, on *atomic.Bool) *kfake.FaultHandle {
	return kc.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.OffsetCommit},
		Err:   kerr.RequestTimedOut,
		Count: -1,
		When:  func(kmsg.Request) bool { return on.Load() },
	})
}

// RefuseOffsetFetches makes kc refuse every read of a group's committed offsets (the group
// not authorized: not retried by the client) while on holds.
func RefuseOffsetFetches(kc *kfake.Cluster, on *atomic.Bool) *kfake.FaultHandle {
	return kc.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.OffsetFetch},
		Err:   kerr.GroupAuthorizationFailed,
		Count: -1,
		When:  func(kmsg.Request) bool { return on.Load() },
	})
}

// OffsetFetchesWithoutGroup makes kc answer the reads of a group's committed offsets that
// carry no member id (an admin's; the client's own read of its assigned partitions carries
// its member id) without any group while on holds: from v8, an answer lists the groups it
// is for, and a conforming broker lists the one asked for. answered, when set, is called
// at each such answer.
func OffsetFetchesWithoutGroup(kc *kfake.Cluster, on *atomic.Bool, answered func()) {
	kc.ControlKey(kmsg.OffsetFetch.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		req := kr.(*kmsg.OffsetFetchRequest)
		member := slices.ContainsFunc(req.Groups, func(g kmsg.OffsetFetchRequestGroup) bool { return g.MemberID != nil })
		if !on.Load() || req.Version < 8 || member {
			return nil, nil, false
		}
		if answered != nil {
			answered()
		}
		return req.ResponseKind(), nil, true
	})
}
