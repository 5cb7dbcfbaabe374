package config

import (
	"fmt"
	"strings"
)

// Problems is every validation error of a config, each naming its key.
type Problems []error

func (p Problems) Error() string {
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// keyError names the key a problem is about, and its line when known, so users find it in
// their file.
type keyError struct {
	key  string
	msg  string
	line int
}

func (e keyError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", e.key, e.msg, e.line)
	}
	return e.key + ": " + e.msg
}

// WithLines gives each problem about a key without a line the line of that key, or of its
// nearest ancestor, in lines (from ParseAll).
func (p Problems) WithLines(lines Lines) Problems {
	out := make(Problems, len(p))
	for i, e := range p {
		if ke, ok := e.(keyError); ok && ke.line == 0 {
			ke.line = lines.Of(ke.key)
			e = ke
		}
		out[i] = e
	}
	return out
}

// Key is the key path a problem names ("" when it names none).
func Key(err error) string {
	if ke, ok := err.(keyError); ok {
		return ke.key
	}
	return ""
}

func problem(key, format string, args ...any) error {
	return keyError{key: key, msg: fmt.Sprintf(format, args...)}
}
