// Package jqerr describes a jq evaluation error without the values gojq quotes in it, for
// every place that turns a jq error into a log line, a label or an error message (the
// values may be secret inputs or message contents).
package jqerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Kind names the kind of a jq evaluation error without any value it carries: gojq's
// messages quote the input ("cannot iterate over: string (\"p@ss...\")"), so only the
// error's type is used, as words ("*gojq.iteratorError" -> "iterator error").
func Kind(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "jq: " + err.Error() // the evaluation's own time limit: no value in it
	}
	switch name := strings.TrimPrefix(fmt.Sprintf("%T", err), "*"); name {
	case "gojq.exitCodeError":
		return "jq error: the expression called error (its message is not shown)"
	case "gojq.HaltError":
		return "jq error: the expression called halt_error"
	case "gojq.expectedObjectError":
		return "jq error: expected an object (the value is not shown)"
	case "gojq.expectedArrayError":
		return "jq error: expected an array (the value is not shown)"
	case "gojq.iteratorError":
		return "jq error: cannot iterate over the value (not shown)"
	case "gojq.binopTypeError", "gojq.unaryTypeError":
		return "jq error: an operator got a value of the wrong type (not shown)"
	default:
		name = strings.TrimPrefix(name, "gojq.")
		var words []string
		start := 0
		for i := 1; i <= len(name); i++ {
			if i == len(name) || ('A' <= name[i] && name[i] <= 'Z') {
				words = append(words, strings.ToLower(name[start:i]))
				start = i
			}
		}
		return "jq " + strings.Join(words, " ") + " (the value is not shown)"
	}
}
