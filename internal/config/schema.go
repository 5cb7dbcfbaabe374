package config

import (
	"reflect"
	"strings"
)

// JSONSchema describes a config file's structure as a JSON Schema (draft-07) object, derived
// from the Config type so the two cannot drift: the Helm chart's values.schema.json embeds it
// as its `config` property (go run ./internal/config/schemagen). It checks shapes, names and enums
// only: what needs the environment or the file system is Validate's job. Wherever a number,
// boolean, duration or enum goes, a ${VAR} reference is accepted too, since the agent
// expands it before decoding.
func JSONSchema() map[string]any {
	return schemaFor(reflect.TypeOf(Config{}), "")
}

// schemaEnum is the fixed set of values a key takes (Validate says the same), nil for most.
func schemaEnum(path string) []string {
	switch path {
	case "transport":
		return []string{TransportKafka, TransportPolling}
	case "kafka.startOffset":
		return []string{"latest", "earliest"}
	case "kafka.groupProtocol":
		return []string{"classic", "consumer"}
	case "kafka.sasl.mechanism":
		return []string{"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	case "actions.*.onInterrupted":
		return []string{"fail", "rerun"}
	case "security.runIsolation":
		return []string{"process", "token"}
	case "workflowNodeRuns.unmatched":
		return []string{"leave", "fail"}
	case "executor.sandbox":
		return []string{SandboxAuto, SandboxRequired, SandboxOff}
	}
	return nil
}

// Patterns of the text forms; envRef is a value the agent expands first.
const (
	envRefPattern   = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`
	durationPattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	sizePattern     = `^[0-9]+ *(GiB|MiB|KiB|GB|MB|KB|B)?$`
)

var (
	durationType = reflect.TypeOf(Duration(0))
	byteSizeType = reflect.TypeOf(ByteSize(0))
	// actionSandboxType is "off" or a mapping (ActionSandbox.UnmarshalYAML).
	actionSandboxType = reflect.TypeOf(ActionSandbox{})
)

func envRef() map[string]any { return map[string]any{"type": "string", "pattern": envRefPattern} }

func orEnvRef(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, envRef()}}
}

func schemaFor(t reflect.Type, path string) map[string]any {
	if enum := schemaEnum(path); enum != nil {
		vals := make([]any, len(enum))
		for i, v := range enum {
			vals[i] = v
		}
		return orEnvRef(map[string]any{"type": "string", "enum": vals})
	}
	switch t {
	case actionSandboxType:
		paths := map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
		return map[string]any{"anyOf": []any{
			map[string]any{"type": "string", "enum": []any{SandboxOff}},
			map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{"read": paths, "write": paths}},
		}, "description": "off, or more paths the command may read and write"}
	case durationType:
		return orEnvRef(map[string]any{"type": "string", "pattern": durationPattern, "description": "a Go duration: 90s, 10m, 1h30m"})
	case byteSizeType:
		return orEnvRef(map[string]any{"anyOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": sizePattern},
		}, "description": "bytes, or with a KiB/MiB/GiB (KB/MB/GB) suffix"})
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaFor(t.Elem(), path)
	case reflect.Struct:
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			props[name] = schemaFor(f.Type, join(path, name))
		}
		return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaFor(t.Elem(), join(path, "*"))}
	case reflect.Slice:
		s := map[string]any{"type": "array", "items": schemaFor(t.Elem(), path+"[]")}
		if path == "kafka.brokers" {
			// One string is a comma list (splitBrokers).
			return map[string]any{"anyOf": []any{s, map[string]any{"type": "string"}}}
		}
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return orEnvRef(map[string]any{"type": "boolean"})
	case reflect.Int, reflect.Int32, reflect.Int64:
		n := map[string]any{"type": "integer"}
		if path == "executor.maxConcurrent" { // Validate's range
			n["minimum"], n["maximum"] = 1, MaxConcurrentLimit
		}
		return orEnvRef(n)
	case reflect.Float32, reflect.Float64:
		return orEnvRef(map[string]any{"type": "number"})
	}
	return map[string]any{}
}
