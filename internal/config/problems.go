package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
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
	// expr, set by jqProblem, is the jq expression msg quotes with its parser's message,
	// which quotes pieces of it: hideEnvValues drops that message when expr came from the
	// environment.
	expr string
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

// jqProblem is the problem of a jq expression that does not parse or compile: gojq's message
// says where it stopped and quotes the token there ("unexpected token \"ss\""), a piece of
// the expression.
func jqProblem(key, expr string, err error) error {
	return keyError{key: key, msg: fmt.Sprintf("bad jq expression %q: %v", expr, err), expr: expr}
}

// envValue is a value ${VAR} filled, quoted (%q), and the text the file wrote for it.
type envValue struct{ quoted, written string }

// envValues lists the non-empty values of fromEnv (the nodes expandNode filled), longest
// first, so that no value is replaced inside a longer one.
func envValues(fromEnv map[*yaml.Node]string) []envValue {
	var out []envValue
	for n, written := range fromEnv {
		if n.Value != "" {
			out = append(out, envValue{strconv.Quote(n.Value), written})
		}
	}
	slices.SortFunc(out, func(a, b envValue) int { return cmp.Compare(len(b.quoted), len(a.quoted)) })
	return out
}

// hideEnvValues shows, in every problem that quotes a value the environment gave, the
// ${VAR} the file wrote instead: such a value may be a credential put in the wrong key,
// and problems go to the logs.
func hideEnvValues(ps Problems, values []envValue) Problems {
	if len(values) == 0 {
		return ps
	}
	hide := func(msg string) string {
		for _, v := range values {
			msg = strings.ReplaceAll(msg, v.quoted, v.written)
		}
		return msg
	}
	out := make(Problems, len(ps))
	for i, e := range ps {
		if ke, ok := e.(keyError); ok {
			ke.msg = hide(ke.msg)
			if v, ok := envValueOf(values, ke.expr); ok {
				// Replacing the whole value is not enough: the parser's message quotes a
				// piece of it (a literal password in an env expression, '"${DB_PASSWORD}"').
				ke.msg = "bad jq expression " + v.written + " (the jq parser's message is not shown: it would quote what the environment gave)"
			}
			out[i] = ke
		} else if msg := e.Error(); hide(msg) != msg {
			out[i] = errors.New(hide(msg))
		} else {
			out[i] = e
		}
	}
	return out
}

// envValueOf is the value of values that expr is, as a whole: a jq expression the
// environment filled.
func envValueOf(values []envValue, expr string) (envValue, bool) {
	if expr == "" {
		return envValue{}, false
	}
	q := strconv.Quote(expr)
	for _, v := range values {
		if v.quoted == q {
			return v, true
		}
	}
	return envValue{}, false
}
