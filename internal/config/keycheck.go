package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/port-runner/port-runner/internal/echo"
)

// keyChecker walks the document beside the Go type and reports every key the type does not
// have and every value that does not decode, by its dotted path and line: yaml's own errors
// name a Go type or only a line, and stop at the first. Each wrong key or value is cut out
// of the document, so the decode that follows succeeds with defaults in their place. It
// follows aliases and `<<` merge keys as the decoder does, visiting each (node, type) pair
// once so an alias-heavy document cannot make it exponential.
type keyChecker struct {
	seen     map[keyVisit]bool
	lines    Lines
	problems Problems
	// fromEnv: the scalars ${VAR} filled, with their text in the file. yaml quotes a value
	// that does not decode; one from the environment may be a credential in the wrong key.
	fromEnv map[*yaml.Node]string
}

type keyVisit struct {
	n *yaml.Node
	t reflect.Type
}

func (c *keyChecker) add(path string, line int, msg string) {
	c.problems = append(c.problems, keyError{key: orRoot(path), msg: msg, line: line})
}

// linePrefix matches the "line N: " that yaml's and our decoders' messages start with: the
// line goes at the end, after the key, as in every other problem.
var linePrefix = regexp.MustCompile(`^(yaml: )?(unmarshal errors:\s*)?line \d+: `)

// leaf checks that n decodes as a t, and cuts it out (null: the default) if not.
func (c *keyChecker) leaf(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	if written, ok := c.fromEnv[n]; ok {
		c.add(path, n.Line, fmt.Sprintf("what %s gave does not decode as %s (not shown: it comes from the environment)", echo.Cut(written), t))
		cutOut(n)
		return
	}
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for _, m := range msgs {
		c.add(path, n.Line, linePrefix.ReplaceAllString(strings.TrimSpace(m), ""))
	}
	cutOut(n)
}

// cutOut leaves n out of the decode: null, so its default applies.
func cutOut(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func (c *keyChecker) check(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	v := keyVisit{n, t}
	if c.seen[v] {
		return
	}
	c.seen[v] = true
	switch {
	case t.Kind() == reflect.Struct && (t == reflect.TypeOf(Duration(0)) || reflect.PointerTo(t).Implements(unmarshalerType)):
		c.leaf(n, t, path)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
				return
			}
			c.add(path, n.Line, "want a mapping")
			cutOut(n)
			return
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fields[name] = f
		}
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if isMerge(k) {
				c.merged(val, t, path)
				kept = append(kept, k, val)
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				c.add(join(path, k.Value), k.Line, "unknown key")
				continue // cut out
			}
			c.lines[join(path, k.Value)] = k.Line
			c.check(val, f.Type, join(path, k.Value))
			kept = append(kept, k, val)
		}
		n.Content = kept
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if isMerge(k) {
				c.merged(val, t, path)
				continue
			}
			c.leaf(k, t.Key(), join(path, k.Value))
			c.lines[join(path, k.Value)] = k.Line
			c.check(val, t.Elem(), join(path, k.Value))
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			c.lines[p] = e.Line
			c.check(e, t.Elem(), p)
		}
	default:
		c.leaf(n, t, path)
	}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// merged checks the value of a `<<` key: one mapping (or alias to one) or a list of them.
func (c *keyChecker) merged(v *yaml.Node, t reflect.Type, path string) {
	for v != nil && v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v != nil && v.Kind == yaml.SequenceNode {
		for _, e := range v.Content {
			c.check(e, t, path)
		}
		return
	}
	c.check(v, t, path)
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}
