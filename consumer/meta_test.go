package consumer

import (
	"reflect"
	"testing"
)

func TestProgressRoundTrip(t *testing.T) {
	p := progress{
		started:  map[int64]bool{103: true, 109: true},
		finished: map[int64]bool{100: true, 101: true, 102: true, 104: true, 105: true, 106: true, 107: true, 108: true, 200: true},
	}
	meta := encodeProgress(100, p)
	if want := "port-runner/1 s=3,9 f=0-2,4-8,2s"; meta != want {
		t.Fatalf("encode = %q, want %q", meta, want)
	}
	got, ok, err := decodeProgress(100, meta)
	if err != nil || !ok || !reflect.DeepEqual(got, p) {
		t.Fatalf("decode = %+v, %v, %v; want %+v", got, ok, err, p)
	}
}

func TestProgressIgnoresForeignMetadata(t *testing.T) {
	for _, meta := range []string{"", "member-1234", "port-runner/2 s=1"} {
		p, ok, err := decodeProgress(5, meta)
		if ok || err != nil || !p.empty() {
			t.Errorf("decode(%q) = %+v, %v, %v; want empty, not ours", meta, p, ok, err)
		}
	}
}

func TestProgressRejectsBadMetadata(t *testing.T) {
	for _, meta := range []string{"port-runner/1 s", "port-runner/1 s=-1", "port-runner/1 f=5-2", "port-runner/1 f=0-zzzzzz", "port-runner/1 s=x!"} {
		if _, ok, err := decodeProgress(0, meta); err == nil || ok {
			t.Errorf("decode(%q) accepted bad metadata", meta)
		}
	}
}

func FuzzDecodeProgress(f *testing.F) {
	f.Add(int64(0), "port-runner/1 s=3,9 f=0-2,4-8")
	f.Add(int64(1<<40), "port-runner/1 f=0-zz")
	f.Add(int64(7), "member-abc")
	f.Fuzz(func(t *testing.T, base int64, meta string) {
		if base < 0 {
			return
		}
		p, ok, err := decodeProgress(base, meta)
		if err != nil || !ok {
			return
		}
		// What decodes must encode back to the same sets.
		again, ok2, err2 := decodeProgress(base, encodeProgress(base, p))
		if err2 != nil || !ok2 || !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip of %q: %+v != %+v (%v)", meta, again, p, err2)
		}
	})
}

// TestProgressFitsKafkasMetadataLimit: the worst case for one partition (maxOpenRuns: it is
// paused before it holds more, whatever executor.maxConcurrent is): this member's unfinished
// runs interleaved with finished ones, far apart, plus as many marks carried from an earlier
// owner, still encode under Kafka's 4 KiB default.
func TestProgressFitsKafkasMetadataLimit(t *testing.T) {
	const pool = maxOpenRuns
	p := progress{started: map[int64]bool{}, finished: map[int64]bool{}}
	off := int64(0)
	for i := 0; i < 2*pool; i++ { // ours and the earlier owner's
		off += 36 * 36 * 36 * 36 * 10 // five base-36 digits per delta by the end
		p.started[off] = true
		p.finished[off+1] = true
	}
	meta := encodeProgress(0, p)
	if len(meta) > maxMetaBytes {
		t.Fatalf("worst-case progress for a pool of %d is %d bytes, over Kafka's %d", pool, len(meta), maxMetaBytes)
	}
	t.Logf("worst case for a pool of %d: %d bytes of %d", pool, len(meta), maxMetaBytes)
}
