package agent

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

type keptLines struct {
	level kgo.LogLevel
	msgs  []string
}

func (k *keptLines) Level() kgo.LogLevel { return k.level }
func (k *keptLines) Log(_ kgo.LogLevel, msg string, _ ...any) {
	k.msgs = append(k.msgs, msg)
}

// franz-go's warning about a commit answered before the session had offsets, which every
// first assignment of a new group gets (the consumer's start commit), is debug; the rest
// pass as they are.
func TestStartCommitWarningIsQuiet(t *testing.T) {
	const startCommit = "received an OffsetCommitResponse after our group session has ended, unable to handle this (were we kicked from the group?)"
	for _, level := range []kgo.LogLevel{kgo.LogLevelWarn, kgo.LogLevelDebug} {
		kept := &keptLines{level: level}
		q := startCommitQuiet{kept}
		q.Log(kgo.LogLevelWarn, startCommit)
		q.Log(kgo.LogLevelWarn, "heartbeat errored")
		want := 1
		if level == kgo.LogLevelDebug {
			want = 2
		}
		if len(kept.msgs) != want || kept.msgs[len(kept.msgs)-1] != "heartbeat errored" {
			t.Errorf("at level %v: kept %q", level, kept.msgs)
		}
	}
}
