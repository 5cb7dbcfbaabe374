package reporter

import (
	"strings"
	"time"
	"unicode/utf8"
)

// batcher is the batching stage: masked lines wait here until the sender takes a batch of
// at most maxBatch JSON-encoded bytes; past maxRun bytes of output everything is dropped
// (and counted), so a log has no holes and a run's memory is bounded.
type batcher struct {
	maxBatch, maxRun int
	lines            []string // masked lines not yet sent
	sizes            []int    // JSON-encoded size of each line, its separator included
	size             int      // sum of sizes
	firstAt          time.Time
	accepted         int // bytes taken into the log
	dropped          int // bytes dropped past maxRun
}

// admit reports whether a line of n bytes fits the run's budget, counting it either way.
func (b *batcher) admit(n int) bool {
	if b.dropped > 0 || b.accepted+n > b.maxRun {
		// Once the budget is spent everything after is dropped, so the log has no holes.
		b.dropped += n
		return false
	}
	b.accepted += n
	return true
}

// add queues an admitted line; wake says the sender has something new to do (a first line
// to time, or a full batch). Only a first line reads the clock: add runs once per line.
func (b *batcher) add(line string) (wake bool) {
	if len(b.lines) == 0 {
		b.firstAt = time.Now()
		wake = true
	}
	enc := jsonLen(line) + 2 // + the escaped "\n" separator
	b.lines = append(b.lines, line)
	b.sizes = append(b.sizes, enc)
	b.size += enc
	return wake || b.full()
}

func (b *batcher) full() bool { return b.size >= b.maxBatch }

// due says whether a batch should leave now, and if lines wait, how long until they are due.
func (b *batcher) due(now time.Time, interval time.Duration) (due, pending bool, wait time.Duration) {
	pending = len(b.lines) > 0
	wait = interval - now.Sub(b.firstAt)
	return pending && (b.full() || wait <= 0), pending, wait
}

// take removes the oldest lines up to maxBatch (encoded) and joins them.
func (b *batcher) take(now time.Time) string {
	size, n := 0, 0
	for n < len(b.lines) {
		s := b.sizes[n]
		if n > 0 && size+s > b.maxBatch {
			break
		}
		size += s
		n++
	}
	batch := strings.Join(b.lines[:n], "\n")
	clear(b.lines[:n]) // let the sent lines be collected
	b.lines, b.sizes = b.lines[n:], b.sizes[n:]
	b.size -= size
	if len(b.lines) > 0 {
		b.firstAt = now
	}
	return batch
}

// rest removes and returns every line left, for the closing request.
func (b *batcher) rest() []string {
	lines := b.lines
	b.lines, b.sizes, b.size = nil, nil, 0
	return lines
}

// asciiJSONLen is the encoded length of each ASCII byte inside a JSON string.
var asciiJSONLen = func() (t [utf8.RuneSelf]uint8) {
	for c := range t {
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			t[c] = 2
		case c < 0x20:
			t[c] = 6 // \u00XX
		default:
			t[c] = 1
		}
	}
	return t
}()

// jsonLen is the length of s inside a JSON string as encoding/json writes it (without HTML
// escaping, as portapi sends), so batches are bounded by what is sent.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			n += int(asciiJSONLen[c])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // an invalid byte becomes \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6 // always escaped
		default:
			n += size
		}
		i += size
	}
	return n
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "..."
	s = s[:n-len(more)]
	for len(s) > 0 {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1] // the bytes of a rune the cut split
	}
	return s + more
}
