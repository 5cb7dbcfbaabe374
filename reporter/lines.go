package reporter

import (
	"bytes"
	"unicode/utf8"
)

// maxLineBytes bounds a line without a newline: past it the line is cut, so a command
// printing megabytes without "\n" cannot grow the agent's memory.
const maxLineBytes = 64 << 10

// cutGuard says where a line may be cut: the masker, so no secret is split by a cut.
type cutGuard interface {
	hold() int                       // bytes past a cut to see before cutting
	safeCut(buf []byte, cut int) int // cut, moved left off any secret across it
}

// splitter turns written bytes into lines: on "\n", or cut at maxLineBytes on a rune
// boundary and never inside a secret. It is the first stage of a run's log; it keeps only
// the unfinished line, and hands each line to emit (which may change what guard says: an
// ::add-mask:: line).
type splitter struct {
	partial []byte // an unfinished line
	guard   cutGuard
	emit    lineSink
}

// lineSink takes the lines a splitter gives (the RunLog's next stages). An interface rather
// than a func: a method value would cost every run an allocation.
type lineSink interface {
	takeLine(line string)
}

// write takes output bytes as the command produced them.
func (s *splitter) write(p []byte) {
	for len(p) > 0 {
		// A line without a newline is cut at maxLineBytes, but only once hold+1 more bytes
		// are buffered: a secret across the cut is seen whole (see cut), and a line of
		// exactly maxLineBytes followed by "\n" is not followed by an empty one.
		limit := maxLineBytes + s.guard.hold() + 1
		chunk := p[:min(len(p), limit-len(s.partial))]
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			s.partial = append(s.partial, chunk[:i]...)
			p = p[i+1:]
			s.flush()
			continue
		}
		s.partial = append(s.partial, chunk...)
		p = p[len(chunk):]
		if len(s.partial) >= limit {
			s.cut()
		}
	}
}

// pending reports whether an unfinished line is buffered.
func (s *splitter) pending() bool { return len(s.partial) > 0 }

// flush takes the buffered bytes as a complete line (cut if too long).
func (s *splitter) flush() {
	for len(s.partial) > maxLineBytes {
		s.cut()
	}
	s.emit.takeLine(string(s.partial))
	s.partial = s.partial[:0]
}

// cut takes at most maxLineBytes of the buffered bytes as a line, cutting on a rune
// boundary and never inside a secret, and keeps the rest buffered.
func (s *splitter) cut() {
	buf := s.partial
	cut := maxLineBytes
	for k := 0; k < utf8.UTFMax-1 && cut > 1 && cut < len(buf) && !utf8.RuneStart(buf[cut]); k++ {
		cut--
	}
	cut = s.guard.safeCut(buf, cut)
	s.emit.takeLine(string(buf[:cut]))
	s.partial = append(s.partial[:0], buf[cut:]...)
}
