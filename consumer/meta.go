package consumer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// progress is what a partition's committed metadata says about the offsets at and above
// the committed offset: which runs were started (their command may have run) and which
// finished (closed in Port). Offsets in neither set were never started by anyone, because a
// run starts only after its "started" mark is committed. The idea is Confluent's Parallel
// Consumer's, which keeps finished offsets above the committed one in the same field.
type progress struct {
	started  map[int64]bool
	finished map[int64]bool
}

func (p progress) empty() bool { return len(p.started) == 0 && len(p.finished) == 0 }

// metaPrefix versions the format; metadata without it (another client's, or none) says nothing.
const metaPrefix = "port-runner/1"

// maxMetaBytes is Kafka's default offset.metadata.max.bytes. Unfinished offsets are at most
// the pool size, so the finished ones form at most that many + 1 ranges and the text stays
// far below this for any sane executor.maxConcurrent.
const maxMetaBytes = 4096

// encodeProgress writes p relative to base (the committed offset) as
// "port-runner/1 s=3,9 f=0-2,4-8": base-36 deltas, finished offsets as ranges.
func encodeProgress(base int64, p progress) string {
	var b strings.Builder
	b.WriteString(metaPrefix)
	if s := deltas(base, p.started); len(s) > 0 {
		b.WriteString(" s=")
		b.WriteString(strings.Join(ranges(s), ","))
	}
	if f := deltas(base, p.finished); len(f) > 0 {
		b.WriteString(" f=")
		b.WriteString(strings.Join(ranges(f), ","))
	}
	return b.String()
}

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

func ranges(sorted []int64) []string {
	var out []string
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if i == j {
			out = append(out, strconv.FormatInt(sorted[i], 36))
		} else {
			out = append(out, strconv.FormatInt(sorted[i], 36)+"-"+strconv.FormatInt(sorted[j], 36))
		}
		i = j + 1
	}
	return out
}

// maxRange bounds one decoded range and maxEntries all of them, so hostile metadata cannot
// make the agent allocate without limit.
const (
	maxRange   = 1 << 16
	maxEntries = 1 << 17
)

// decodeProgress reads metadata written by encodeProgress for a partition committed at base.
// Metadata that is not ours decodes to an empty progress with ok == false.
func decodeProgress(base int64, meta string) (p progress, ok bool, err error) {
	p = progress{started: map[int64]bool{}, finished: map[int64]bool{}}
	fields := strings.Fields(meta)
	if len(fields) == 0 || fields[0] != metaPrefix {
		return p, false, nil
	}
	if len(meta) > maxMetaBytes {
		return p, false, fmt.Errorf("progress metadata of %d bytes, over %d", len(meta), maxMetaBytes)
	}
	for _, f := range fields[1:] {
		key, list, found := strings.Cut(f, "=")
		var set map[int64]bool
		switch {
		case !found:
			return p, false, fmt.Errorf("progress metadata: field %q has no '='", f)
		case key == "s":
			set = p.started
		case key == "f":
			set = p.finished
		default:
			continue // a later version's field: ignore what we do not know
		}
		for _, r := range strings.Split(list, ",") {
			lo, hi, isRange := strings.Cut(r, "-")
			from, err := strconv.ParseInt(lo, 36, 64)
			if err != nil || from < 0 {
				return p, false, fmt.Errorf("progress metadata: bad offset %q", lo)
			}
			to := from
			if isRange {
				if to, err = strconv.ParseInt(hi, 36, 64); err != nil || to < from || to-from > maxRange {
					return p, false, fmt.Errorf("progress metadata: bad range %q", r)
				}
			}
			if len(p.started)+len(p.finished)+int(to-from) > maxEntries {
				return p, false, fmt.Errorf("progress metadata: more than %d offsets", maxEntries)
			}
			for d := from; d <= to; d++ {
				if base+d < base {
					return p, false, fmt.Errorf("progress metadata: offset overflows")
				}
				set[base+d] = true
			}
		}
	}
	return p, true, nil
}
