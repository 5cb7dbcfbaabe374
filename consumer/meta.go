package consumer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// progress is what a partition's committed metadata says about the offsets at and above
// the committed offset: which runs were started (their command may have run) and which
// finished (closed in Port); of the started ones, which are held under a member's lease (a
// handover: the member finishes them, README "Delivery"); which offsets are unknown (their
// marks were given up to fit Kafka's limit); and the run ids handled recently (history).
// Offsets in none of these were never started by anyone, because a run starts only after
// its "started" mark is committed. The idea is Confluent's Parallel Consumer's, which keeps
// finished offsets above the committed one in the same field.
type progress struct {
	started  map[int64]bool
	finished map[int64]bool
	leases   map[int64]Lease // started offsets held under a lease
	unknown  []offsetRange   // offsets here in neither set: nothing says whether they ran
	history  history
}

// offsetRange is the offsets from first to last, both included.
type offsetRange struct{ first, last int64 }

func (p progress) empty() bool {
	return len(p.started) == 0 && len(p.finished) == 0 && len(p.unknown) == 0
}

func (p progress) isUnknown(off int64) bool {
	for _, r := range p.unknown {
		if r.first <= off && off <= r.last {
			return true
		}
	}
	return false
}

func newProgress() progress {
	return progress{started: map[int64]bool{}, finished: map[int64]bool{}, leases: map[int64]Lease{}, history: newHistory()}
}

// metaPrefix versions the format; metadata without it (another client's, or none) says
// nothing. Fields are added, never changed: a reader skips those it does not know, so an
// older agent still reads s= and f= of a newer one's commit (a leased run is in s= too).
const metaPrefix = "port-runner/1"

// maxMetaBytes is Kafka's default offset.metadata.max.bytes: metaWriter.encode fits under
// it (meta_fit.go), and what is longer is not read.
const maxMetaBytes = 4096

// deltas are the offsets of set at or above base, as sorted deltas from base.
func deltas(base int64, set map[int64]bool) []int64 {
	out := make([]int64, 0, len(set))
	for off, ok := range set {
		if ok && off >= base {
			out = append(out, off-base)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// maxRange bounds one decoded range and maxEntries all of them, so hostile metadata cannot
// make the agent allocate without limit.
const (
	maxRange   = 1 << 16
	maxEntries = 1 << 17
)

// parseRanges reads "a,b-c" (base-36 deltas), no range longer than limit.
func parseRanges(list string, limit int64) ([]offsetRange, error) {
	var out []offsetRange
	for _, r := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		from, err := strconv.ParseInt(lo, 36, 64)
		if err != nil || from < 0 {
			return nil, fmt.Errorf("bad offset %q", lo)
		}
		to := from
		if isRange {
			if to, err = strconv.ParseInt(hi, 36, 64); err != nil || to < from || to-from > limit {
				return nil, fmt.Errorf("bad range %q", r)
			}
		}
		out = append(out, offsetRange{from, to})
	}
	return out, nil
}

// decodeProgress reads metadata written by metaWriter.encode for a partition committed at
// base. Metadata that is not ours decodes to an empty progress with ok == false.
func decodeProgress(base int64, meta string) (p progress, ok bool, err error) {
	p = newProgress()
	fields := strings.Fields(meta)
	if len(fields) == 0 || fields[0] != metaPrefix {
		return p, false, nil
	}
	if len(meta) > maxMetaBytes {
		return p, false, fmt.Errorf("progress metadata of %d bytes, over %d", len(meta), maxMetaBytes)
	}
	d := decoder{base: base, p: &p}
	for _, f := range fields[1:] {
		key, val, found := strings.Cut(f, "=")
		if !found {
			return p, false, fmt.Errorf("progress metadata: field %q has no '='", f)
		}
		if err := d.field(key, val); err != nil {
			return newProgress(), false, fmt.Errorf("progress metadata: %s=: %w", key, err)
		}
	}
	if err := d.finish(); err != nil {
		return newProgress(), false, fmt.Errorf("progress metadata: %w", err)
	}
	return p, true, nil
}

// decoder reads the fields of one metadata string into p.
type decoder struct {
	base    int64
	p       *progress
	owners  string  // o=: one char per started offset, in order
	holders []Lease // h=
	entries int     // offsets expanded so far
}

func (d *decoder) field(key, val string) error {
	switch key {
	case "s":
		return d.offsets(val, d.p.started)
	case "f":
		return d.offsets(val, d.p.finished)
	case "u":
		rs, err := parseRanges(val, 1<<40) // not expanded: any length
		if len(rs) > maxEntries {
			return fmt.Errorf("more than %d ranges", maxEntries)
		}
		for _, r := range rs {
			d.p.unknown = append(d.p.unknown, offsetRange{d.base + r.first, d.base + r.last})
		}
		return err
	case "o":
		d.owners = val
	case "h":
		hs, err := parseHolders(val)
		d.holders = hs
		return err
	case "c", "r":
		return d.p.history.field(key, val)
	}
	return nil // a later version's field: ignore what we do not know
}

func (d *decoder) offsets(list string, set map[int64]bool) error {
	rs, err := parseRanges(list, maxRange)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if d.entries += int(r.last-r.first) + 1; d.entries > maxEntries {
			return fmt.Errorf("more than %d offsets", maxEntries)
		}
		for off := r.first; off <= r.last; off++ {
			if d.base+off < d.base {
				return fmt.Errorf("offset overflows")
			}
			set[d.base+off] = true
		}
	}
	return nil
}

// finish ties o= to the started offsets: each non-'.' char names the holder (h=) of the
// started offset at its place.
func (d *decoder) finish() error {
	if d.owners == "" {
		return nil
	}
	started := deltas(d.base, d.p.started)
	if len(d.owners) != len(started) {
		return fmt.Errorf("o= has %d holders for %d started offsets", len(d.owners), len(started))
	}
	for i, c := range []byte(d.owners) {
		if c == '.' {
			continue
		}
		h, err := strconv.ParseInt(string(c), 36, 64)
		if err != nil || int(h) >= len(d.holders) {
			return fmt.Errorf("o= names holder %q, of %d", c, len(d.holders))
		}
		d.p.leases[d.base+started[i]] = d.holders[h]
	}
	return nil
}

// Lease is a started run held by a member of the group that no longer owns its partition:
// it finishes the run and closes it in Port, and the partition's owner keeps its hands off
// until the holder has left the group for longer than Bound (README "Delivery").
type Lease struct {
	Holder string        // the holder's member id
	Bound  time.Duration // how long after leaving the group it may still act on its runs
}
