package config

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LookupFunc resolves an environment variable, like os.LookupEnv.
type LookupFunc func(name string) (string, bool)

// Load reads, expands and decodes the file at path, applies defaults and resolves relative
// command paths against the working directory. It does not validate: call Validate.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(raw, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	cfg.ResolveCommands(wd)
	return cfg, nil
}

// Parse decodes YAML bytes with ${VAR} expansion from lookup and applies defaults.
// Unknown keys are errors naming the key's path.
func Parse(raw []byte, lookup LookupFunc) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	cfg := &Config{}
	if root.Kind == 0 { // empty file: all defaults
		cfg.applyDefaults()
		return cfg, nil
	}
	if err := expandNode(&root, lookup); err != nil {
		return nil, err
	}
	if err := checkKeys(root.Content[0], reflect.TypeOf(*cfg), ""); err != nil {
		return nil, err
	}
	if err := root.Decode(cfg); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	cfg.applyDefaults()
	return cfg, nil
}

var varPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandNode replaces ${VAR} and ${VAR:-default} in scalar values (never keys), so an
// expanded secret cannot change the file's structure however it is spelled.
func expandNode(n *yaml.Node, lookup LookupFunc) error {
	if n.Kind == yaml.AliasNode {
		return nil
	}
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		n.Value = varPattern.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := varPattern.FindStringSubmatch(m)
			if v, ok := lookup(sub[1]); ok && (v != "" || sub[2] == "") {
				return v
			}
			if sub[2] != "" {
				return sub[3]
			}
			return "" // as in a shell; validation then names the empty key
		})
		// Re-resolve the type of a plain scalar from its expanded text, so `${PORT}` can fill an int.
		if n.Style == 0 || n.Style == yaml.TaggedStyle {
			n.Tag = "!!str"
			var v any
			if yaml.Unmarshal([]byte(n.Value), &v) == nil {
				switch v.(type) {
				case int, float64, bool:
					n.Tag = ""
				}
			}
		}
		return nil
	}
	for i, c := range n.Content {
		// Mapping keys sit at even indexes; they are never expanded.
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue
		}
		if err := expandNode(c, lookup); err != nil {
			return err
		}
	}
	return nil
}

// checkKeys walks the document beside the Go type and reports the first key the type does
// not have, by its dotted path: yaml's own KnownFields error names a Go type, not the key.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(Duration(0)) || t == reflect.TypeOf(ByteSize(0)) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return fmt.Errorf("%s: want a mapping (line %d)", orRoot(path), n.Line)
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fields[name] = f
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			f, ok := fields[key]
			if !ok {
				return fmt.Errorf("%s: unknown key (line %d)", join(path, key), n.Content[i].Line)
			}
			if err := checkKeys(n.Content[i+1], f.Type, join(path, key)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports type mismatches with their line
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
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

// Duration is a time.Duration written as a Go duration string ("90s", "10m").
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 90s or 10m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) D() time.Duration { return time.Duration(d) }
func (d Duration) String() string   { return time.Duration(d).String() }

// ByteSize is a size in bytes, written as a number or with a KiB/MiB/GiB (or KB/MB) suffix.
type ByteSize int64

func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}

// ParseByteSize reads "64KiB", "4MiB", "1000".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size like 64KiB or 4MiB", s)
	}
	return ByteSize(v * mult), nil
}

func (b ByteSize) String() string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return strconv.FormatInt(int64(b), 10)
}
