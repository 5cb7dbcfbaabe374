package agent

import (
	"fmt"
	"strings"
	"testing"
)

// recordAt says what fmt said before, for short and long topics and large offsets.
func TestRecordAt(t *testing.T) {
	for _, c := range []struct {
		topic     string
		partition int32
		offset    int64
	}{{"runs", 0, 0}, {"org_runs", 7, 1234567890123}, {strings.Repeat("t", 249), 99, 1 << 62}} {
		if got, want := recordAt(c.topic, c.partition, c.offset), fmt.Sprintf("%s/%d@%d", c.topic, c.partition, c.offset); got != want {
			t.Errorf("recordAt = %q, want %q", got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = recordAt("org_runs", 7, 1234567890123) }); n > 1 {
		t.Errorf("recordAt allocates %v times, want 1 (the string)", n)
	}
}
