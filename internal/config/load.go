package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LookupFunc resolves an environment variable, like os.LookupEnv.
type LookupFunc func(name string) (string, bool)

// Load reads, expands and decodes the file at path, applies defaults and resolves relative
// command paths against the working directory. It does not validate: call Validate.
func Load(path string) (*Config, error) {
	cfg, _, ps := LoadAll(path)
	if ps != nil {
		return nil, fmt.Errorf("%s: %w", path, ps)
	}
	return cfg, nil
}

// LoadAll is Load reporting every problem of the file at once (`port-runner validate`):
// the config, read as far as it could be (nil when the file is not YAML at all), where its
// keys are, and its problems (nil when there are none).
func LoadAll(path string) (*Config, Lines, Problems) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, Problems{fmt.Errorf("read config: %w", err)}
	}
	cfg, lines, ps := ParseAll(raw, os.LookupEnv)
	if cfg != nil {
		if err := cfg.ReadSecretFiles(); err != nil {
			ps = append(ps, err)
		}
		wd, err := os.Getwd()
		if err != nil {
			return nil, nil, append(ps, fmt.Errorf("working directory: %w", err))
		}
		cfg.ResolveCommands(wd)
	}
	return cfg, lines, ps
}

// ReadSecretFiles fills port.clientSecret and kafka.sasl.password from the files
// port.clientSecretFile and kafka.sasl.passwordFile name, when set. One trailing newline
// is dropped (echo adds one). Errors name the key, never the content.
func (c *Config) ReadSecretFiles() error {
	for _, f := range []struct {
		key, fileKey, file string
		value              *string
	}{
		{"port.clientSecret", "port.clientSecretFile", c.Port.ClientSecretFile, &c.Port.ClientSecret},
		{"kafka.sasl.password", "kafka.sasl.passwordFile", c.Kafka.SASL.PasswordFile, &c.Kafka.SASL.Password},
	} {
		if f.file == "" {
			continue
		}
		if *f.value != "" {
			return problem(f.fileKey, "set either %s or %s, not both", f.key, f.fileKey)
		}
		b, err := os.ReadFile(f.file)
		if err != nil {
			return problem(f.fileKey, "%v", err)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return problem(f.fileKey, "%s is empty", f.file)
		}
		*f.value = v
	}
	return nil
}

// Parse decodes YAML bytes with ${VAR} expansion from lookup and applies defaults.
// Unknown keys and values that do not decode are errors naming the key's path and line.
func Parse(raw []byte, lookup LookupFunc) (*Config, error) {
	cfg, _, ps := ParseAll(raw, lookup)
	if ps != nil {
		return nil, ps
	}
	return cfg, nil
}

// Lines maps key paths ("kafka.sasl.username", "actions.a.env.X") to their line in the file.
type Lines map[string]int

// Of is the line of key, or of its nearest ancestor the file has (0: none).
func (l Lines) Of(key string) int {
	for key != "" {
		if n, ok := l[key]; ok {
			return n
		}
		i := max(strings.LastIndexAny(key, ".["), 0)
		key = key[:i]
	}
	return 0
}

// ParseAll is Parse reporting every problem at once. Keys and values with a problem are
// left out of the config it returns (so their defaults apply), which lets Validate check
// the rest; cfg is nil only when the text is not YAML.
func ParseAll(raw []byte, lookup LookupFunc) (*Config, Lines, Problems) {
	// `${VAR}` is not valid plain YAML inside a flow collection (`{user: ${U}}`: the braces
	// are flow indicators), so each reference is swapped for a plain-safe placeholder before
	// parsing and put back, expanded, into the parsed scalars: structure comes from the file
	// alone, values from the environment.
	text, refs := protectRefs(string(raw))
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		return nil, nil, Problems{fmt.Errorf("parse YAML: %w", err)}
	}
	cfg := &Config{}
	lines := Lines{}
	if root.Kind == 0 { // empty file: all defaults
		cfg.applyDefaults()
		return cfg, lines, nil
	}
	fromEnv := map[*yaml.Node]string{}
	if err := expandNode(&root, refs, lookup, fromEnv); err != nil {
		return nil, nil, Problems{err}
	}
	splitBrokers(root.Content[0])
	kc := &keyChecker{seen: map[keyVisit]bool{}, lines: lines, fromEnv: fromEnv}
	kc.check(root.Content[0], reflect.TypeOf(*cfg), "")
	if err := root.Decode(cfg); err != nil {
		// The checker left out every value it found wrong: this is a case it does not know.
		return nil, nil, append(kc.problems, fmt.Errorf("decode: %w", err))
	}
	cfg.applyDefaults()
	cfg.fromEnv = envValues(fromEnv)
	return cfg, lines, kc.problems
}

var varPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}\n]*))?\}`)

// refs maps the placeholders protectRefs wrote back to the `${...}` text they replaced.
type refs struct {
	pattern *regexp.Regexp // matches any placeholder; nil when there are none
	orig    map[string]string
}

// restore puts the original `${...}` text back in place of placeholders.
func (r refs) restore(s string) string {
	if r.pattern == nil {
		return s
	}
	return r.pattern.ReplaceAllStringFunc(s, func(m string) string { return r.orig[m] })
}

// protectRefs replaces each `${...}` reference with a placeholder made of letters and digits
// (valid anywhere a plain scalar is, flow collections included) that occurs nowhere in text.
func protectRefs(text string) (string, refs) {
	if !varPattern.MatchString(text) {
		return text, refs{}
	}
	prefix := "portrunnerref"
	for strings.Contains(text, prefix) {
		prefix += "x"
	}
	r := refs{pattern: regexp.MustCompile(prefix + `[0-9]+q`), orig: map[string]string{}}
	byRef := map[string]string{}
	out := varPattern.ReplaceAllStringFunc(text, func(m string) string {
		ph, ok := byRef[m]
		if !ok {
			ph = prefix + strconv.Itoa(len(byRef)) + "q"
			byRef[m] = ph
			r.orig[ph] = m
		}
		return ph
	})
	return out, r
}

// expandNode replaces ${VAR} and ${VAR:-default} in scalar values (never keys, whose
// original text is restored), so an expanded secret cannot change the file's structure
// however it is spelled. fromEnv gets each expanded node's text as the file wrote it.
func expandNode(n *yaml.Node, r refs, lookup LookupFunc, fromEnv map[*yaml.Node]string) error {
	if n.Kind == yaml.AliasNode {
		return nil
	}
	if n.Kind == yaml.ScalarNode && r.pattern != nil && r.pattern.MatchString(n.Value) {
		fromEnv[n] = r.restore(n.Value)
		n.Value = varPattern.ReplaceAllStringFunc(fromEnv[n], func(m string) string {
			sub := varPattern.FindStringSubmatch(m)
			if v, ok := lookup(sub[1]); ok && (v != "" || sub[2] == "") {
				return v
			}
			if sub[2] != "" {
				return sub[3]
			}
			return "" // as in a shell; validation then names the empty key
		})
		// Re-resolve the type of a plain, untagged scalar from its expanded text, so `${PORT}`
		// can fill an int; anything else stays a string, so a value cannot add structure.
		// An explicit tag (`!!str ${N}`) is the user's word and stays.
		if n.Style == 0 {
			n.Tag = "!!str"
			if n.Value == "" {
				// As if the text had been substituted: `maxConcurrent: ${N}` with N unset is an
				// absent value (the default), not an empty string that no int accepts.
				n.Tag = "!!null"
			}
			var v any
			if n.Value != "" && yaml.Unmarshal([]byte(n.Value), &v) == nil {
				switch v.(type) {
				case int, int64, uint64, float64, bool:
					n.Tag = ""
				}
			}
		}
		return nil
	}
	for i, c := range n.Content {
		// Mapping keys sit at even indexes; they are never expanded.
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			restoreKey(c, r)
			continue
		}
		if err := expandNode(c, r, lookup, fromEnv); err != nil {
			return err
		}
	}
	return nil
}

// restoreKey puts back the literal `${...}` text of a mapping key (and of any key inside a
// complex key): keys are never expanded.
func restoreKey(n *yaml.Node, r refs) {
	if r.pattern == nil || n.Kind == yaml.AliasNode {
		return
	}
	n.Value = r.restore(n.Value)
	for _, c := range n.Content {
		restoreKey(c, r)
	}
}

// splitBrokers turns a scalar kafka.brokers ("a:1,b:2", typically one ${KAFKA_BROKERS}) into
// the list of its comma-separated elements, so one variable can carry every broker. It runs
// after expansion: the list's structure comes from the variable's commas only here, where a
// list of host:port strings is all the key can hold.
func splitBrokers(doc *yaml.Node) {
	kafka := mappingValue(doc, "kafka")
	brokers := mappingValue(kafka, "brokers")
	if brokers == nil || brokers.Kind != yaml.ScalarNode || brokers.ShortTag() == "!!null" {
		return
	}
	var items []*yaml.Node
	for _, b := range strings.Split(brokers.Value, ",") {
		if b = strings.TrimSpace(b); b != "" {
			items = append(items, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: b, Line: brokers.Line, Column: brokers.Column})
		}
	}
	*brokers = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items, Line: brokers.Line, Column: brokers.Column}
}

// mappingValue is the value of key in mapping n (nil if n is not a mapping or lacks it).
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
