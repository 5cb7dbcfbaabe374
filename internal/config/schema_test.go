package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The schema names every key the decoder knows (and no other: additionalProperties false),
// so values a user writes for the chart are checked against the agent's own structure.
func TestJSONSchemaFollowsTheConfigType(t *testing.T) {
	s := JSONSchema()
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	var walk func(t reflect.Type, sch map[string]any, path string)
	walk = func(typ reflect.Type, sch map[string]any, path string) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == durationType {
			return
		}
		if alts, ok := sch["anyOf"].([]any); ok { // a scalar or a mapping (actions.*.sandbox): the mapping
			for _, a := range alts {
				if m := a.(map[string]any); m["type"] == "object" {
					sch = m
				}
			}
		}
		if sch["additionalProperties"] != false {
			t.Errorf("%s: unknown keys are not refused", orRoot(path))
		}
		props, _ := sch["properties"].(map[string]any)
		fields := 0 // those YAML reads: `yaml:"-"` ones are not config
		for i := 0; i < typ.NumField(); i++ {
			if typ.Field(i).Tag.Get("yaml") != "-" {
				fields++
			}
		}
		if len(props) != fields {
			t.Errorf("%s: %d properties, the type has %d fields", orRoot(path), len(props), fields)
		}
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			p, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s: no property", join(path, name))
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Map {
				p, _ = p["additionalProperties"].(map[string]any)
				ft = ft.Elem()
			}
			walk(ft, p, join(path, name))
		}
	}
	walk(reflect.TypeOf(Config{}), s, "")

	act := s["properties"].(map[string]any)["actions"].(map[string]any)["additionalProperties"].(map[string]any)
	on := act["properties"].(map[string]any)["onInterrupted"]
	if b, _ := json.Marshal(on); !strings.Contains(string(b), `"enum":["fail","rerun"]`) {
		t.Errorf("actions.*.onInterrupted schema %s, want the enum", b)
	}
}

// The chart refuses an executor.maxConcurrent the agent would refuse, before a pod starts.
func TestJSONSchemaBoundsMaxConcurrent(t *testing.T) {
	exec := JSONSchema()["properties"].(map[string]any)["executor"].(map[string]any)
	num := exec["properties"].(map[string]any)["maxConcurrent"].(map[string]any)["anyOf"].([]any)[0].(map[string]any)
	if num["minimum"] != 1 || num["maximum"] != MaxConcurrentLimit {
		t.Fatalf("executor.maxConcurrent's schema %v, want minimum 1 and maximum %d", num, MaxConcurrentLimit)
	}
}
