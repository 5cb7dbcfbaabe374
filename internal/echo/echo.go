// Package echo cuts a value from a run message or a command to a short prefix before an
// error or a log line quotes it: an echo is never as large as what it echoes (a 1 MB
// X-Port-Timestamp made a 1 MB warn line), whatever the value is.
package echo

import (
	"strconv"
	"unicode/utf8"
)

// MaxBytes is how much of a value an echo shows: enough to recognize it, far too little to
// flood a log.
const MaxBytes = 64

// Cut returns s, or its first MaxBytes bytes (never half a UTF-8 sequence) followed by how
// long s was.
func Cut(s string) string {
	head, rest := split(s)
	return head + rest
}

// Quote is strconv.Quote of the value's first MaxBytes bytes, followed by how long it was
// when it was cut: what a %q of a message's or a command's value becomes.
func Quote(s string) string {
	head, rest := split(s)
	return strconv.Quote(head) + rest
}

// split returns what an echo shows of s and, when that is not all of it, the note saying
// how long s was.
func split(s string) (head, rest string) {
	if len(s) <= MaxBytes {
		return s, ""
	}
	n := MaxBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], "... (" + strconv.Itoa(len(s)) + " bytes)"
}
