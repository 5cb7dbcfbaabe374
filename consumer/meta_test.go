package consumer

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// encodeProgress is the commit metadata of p relative to base (metaWriter.encode).
func encodeProgress(base int64, p progress) string {
	var w metaWriter
	return w.encode(base, marksOf(p), p.history)
}

// marksOf is p as marks.
func marksOf(p progress) *marks {
	m := &marks{finished: sortedOffsets(p.finished), unknown: p.unknown}
	for _, off := range sortedOffsets(p.started) {
		l, leased := p.leases[off]
		m.started = append(m.started, startedRun{offset: off, lease: l, leased: leased})
	}
	return m
}

// sameProgress compares what two progresses say, whatever empty maps or slices are nil.
func sameProgress(a, b progress) bool {
	norm := func(p progress) string {
		return fmt.Sprintf("%v|%v|%v|%v|%v|%v|%v", deltas(0, p.started), deltas(0, p.finished), p.leases,
			p.unknown, p.history.runs, p.history.cover, p.history.known)
	}
	return norm(a) == norm(b)
}

func TestProgressRoundTrip(t *testing.T) {
	p := newProgress()
	for _, off := range []int64{103, 109, 110} {
		p.started[off] = true
	}
	for _, off := range []int64{100, 101, 102, 104, 105, 106, 107, 108, 200} {
		p.finished[off] = true
	}
	p.leases[109] = Lease{Holder: "port-runner-a/b c", Bound: 130 * time.Second}
	p.leases[110] = Lease{Holder: "kgo-2", Bound: time.Hour}
	p.unknown = []offsetRange{{300, 310}}
	p.history = newHistory()
	p.history.cover, p.history.known = 1699999990, true
	p.history.addUnix("r_a", 1700000000)
	p.history.addUnix("r_b", 1700000001)
	meta := encodeProgress(100, p)
	want := "port-runner/1 s=3,9-a o=.01 h=3m:port-runner-a%2Fb%20c/2s0:kgo-2 f=0-2,4-8,2s u=5k-5u c=s44wdy r=r_b.s44we9,r_a.s44we8"
	if meta != want {
		t.Fatalf("encode = %q\n          want %q", meta, want)
	}
	got, ok, err := decodeProgress(100, meta)
	if err != nil || !ok || !sameProgress(got, p) {
		t.Fatalf("decode = %+v, %v, %v; want %+v", got, ok, err, p)
	}
}

func TestProgressIgnoresForeignMetadata(t *testing.T) {
	for _, meta := range []string{"", "member-1234", "port-runner/2 s=1"} {
		p, ok, err := decodeProgress(5, meta)
		if ok || err != nil || !p.empty() || p.history.known {
			t.Errorf("decode(%q) = %+v, %v, %v; want empty, not ours", meta, p, ok, err)
		}
	}
	// An older agent's metadata: ours, but nothing said of history.
	if p, ok, err := decodeProgress(5, "port-runner/1 s=1 x=later"); !ok || err != nil || p.history.known || !p.started[6] {
		t.Errorf("older metadata = %+v, %v, %v; want s=1 read and the history unknown", p, ok, err)
	}
}

func TestProgressRejectsBadMetadata(t *testing.T) {
	for _, meta := range []string{"port-runner/1 s", "port-runner/1 s=-1", "port-runner/1 f=5-2", "port-runner/1 f=0-zzzzzz",
		"port-runner/1 s=x!", "port-runner/1 s=1 o=.0", "port-runner/1 s=1,2 o=.0 h=", "port-runner/1 s=1 o=5 h=1:a",
		"port-runner/1 s=1 o=0 h=1:", "port-runner/1 s=1 o=0 h=-1:a", "port-runner/1 r=r_a", "port-runner/1 r=r%20a.1",
		"port-runner/1 c=-5", "port-runner/1 u=3-1"} {
		if _, ok, err := decodeProgress(0, meta); err == nil || ok {
			t.Errorf("decode(%q) accepted bad metadata", meta)
		}
	}
}

func FuzzDecodeProgress(f *testing.F) {
	f.Add(int64(0), "port-runner/1 s=3,9 f=0-2,4-8")
	f.Add(int64(1<<40), "port-runner/1 f=0-zz")
	f.Add(int64(7), "member-abc")
	f.Add(int64(100), "port-runner/1 s=3,9-a o=.01 h=3m:port-runner-a%2Fb/2s0:kgo-2 f=0-2 u=5k-5u c=s48z1y r=r_b.s48z29,r_a.s48z28")
	f.Fuzz(func(t *testing.T, base int64, meta string) {
		if base < 0 {
			return
		}
		p, ok, err := decodeProgress(base, meta)
		if err != nil || !ok {
			return
		}
		// What decodes encodes to metadata that decodes to the same, within Kafka's limit.
		enc := encodeProgress(base, p)
		again, ok2, err2 := decodeProgress(base, enc)
		if err2 != nil || !ok2 || len(enc) > maxMetaBytes {
			t.Fatalf("re-encoding %q gave %q: %v", meta, enc, err2)
		}
		if encodeProgress(base, again) != enc {
			t.Fatalf("encoding of %q is not stable: %q", meta, enc)
		}
	})
}

// worstCase is the progress of one partition holding the most runs of two replicas a
// partition can hold (maxOpenRuns each, whatever executor.maxConcurrent is): this member's
// runs, taken and unfinished, and another member's, leased to it, scattered over a full window of 10,000 offsets whose
// others finished, plus a history of as many runs as a busy partition handles.
func worstCase(pool, holders int) (int64, progress) {
	const base = int64(1 << 40)
	p := newProgress()
	unfinished := pool * (1 + holders)
	step := int64(defaultMaxWindow / unfinished)
	for i := 0; i < unfinished; i++ {
		off := base + int64(i)*step
		p.started[off] = true
		if h := i % (1 + holders); h > 0 {
			p.leases[off] = Lease{Holder: fmt.Sprintf("port-runner-%036d", h), Bound: 4 * time.Hour}
		}
		p.finished[off+1] = true
	}
	p.history = newHistory()
	p.history.known = true
	for i := 0; i < maxHistoryRuns; i++ {
		p.history.addUnix(fmt.Sprintf("r_%016d", i), 1800000000+int64(i))
	}
	return base, p
}

// TestProgressFitsKafkasMetadataLimit: the worst case (every slot of a replica on one
// partition: 100 runs of this member and 100 of another leased to it) encodes under Kafka's
// 4 KiB with every start and lease in it; the history gives way (its newest runs stay, its
// cover moves), which costs Port lookups only, for the oldest messages after a handover.
func TestProgressFitsKafkasMetadataLimit(t *testing.T) {
	base, p := worstCase(maxOpenRuns, 1)
	meta := encodeProgress(base, p)
	got, ok, err := decodeProgress(base, meta)
	if err != nil || !ok || len(meta) > maxMetaBytes {
		t.Fatalf("worst case: %d bytes of %d, %v", len(meta), maxMetaBytes, err)
	}
	if !reflect.DeepEqual(got.started, p.started) || !reflect.DeepEqual(got.leases, p.leases) || !reflect.DeepEqual(got.finished, p.finished) {
		t.Fatal("worst case: a start, lease or finish was given up")
	}
	if len(got.unknown) != 0 {
		t.Errorf("worst case: finished offsets degraded to unknown: %v", got.unknown)
	}
	kept := len(got.history.runs)
	if kept == 0 || got.history.cover <= p.history.cover || !got.history.covers(time.Unix(1800000000+maxHistoryRuns-1, 0)) {
		t.Fatalf("history: kept %d runs, cover %d", kept, got.history.cover)
	}
	t.Logf("worst case: %d bytes of %d; history kept the newest %d of %d runs", len(meta), maxMetaBytes, kept, maxHistoryRuns)
}

// TestProgressDegradesSafely: past the worst case (five members' leases on one partition),
// finished offsets that do not fit become unknown, so the next owner asks Port about them
// rather than running them blind; starts and leases are all kept.
func TestProgressDegradesSafely(t *testing.T) {
	base, p := worstCase(maxOpenRuns, 5)
	meta := encodeProgress(base, p)
	got, ok, err := decodeProgress(base, meta)
	if err != nil || !ok || len(meta) > maxMetaBytes {
		t.Fatalf("%d bytes of %d, %v", len(meta), maxMetaBytes, err)
	}
	if !reflect.DeepEqual(got.started, p.started) || !reflect.DeepEqual(got.leases, p.leases) {
		t.Fatal("a start or a lease was given up")
	}
	lost := 0
	for off := range p.finished {
		if !got.finished[off] && !got.isUnknown(off) {
			lost++
		}
	}
	if lost > 0 || len(got.unknown) == 0 {
		t.Fatalf("%d finished offsets neither finished nor unknown (unknown ranges %v)", lost, got.unknown)
	}
	t.Logf("600 unfinished runs: %d bytes; %d of %d finished offsets kept, the rest unknown %v; %d history runs",
		len(meta), len(got.finished), len(p.finished), got.unknown, len(got.history.runs))
	if strings.Contains(meta, " r=") && len(got.history.runs) == 0 {
		t.Fatal("history written but not read")
	}
}

// TestProgressCollapsesScatteredUnknowns: unknown offsets interleaved with finished ones (a
// new group's backlog decided out of order) past what the limit can list become one unknown
// range: every offset is still either finished or looked up in Port, never run blind.
func TestProgressCollapsesScatteredUnknowns(t *testing.T) {
	p := newProgress()
	p.history.known = true
	for off := int64(0); off < 3000; off++ {
		if off%2 == 0 {
			p.unknown = append(p.unknown, offsetRange{off, off})
		} else {
			p.finished[off] = true
		}
	}
	meta := encodeProgress(0, p)
	got, ok, err := decodeProgress(0, meta)
	if !ok || err != nil || len(meta) > maxMetaBytes {
		t.Fatalf("%d bytes, %v", len(meta), err)
	}
	for off := int64(0); off < 3000; off++ {
		if !got.finished[off] && !got.isUnknown(off) || off%2 == 0 && !got.isUnknown(off) {
			t.Fatalf("offset %d: neither finished nor unknown, or an unknown one said finished (%q)", off, meta)
		}
	}
}
