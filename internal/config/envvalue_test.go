package config

import (
	"strings"
	"testing"
)

// A value ${VAR} filled that does not decode is named by the ${VAR} the file wrote, never
// quoted: it may be a credential put in the wrong key, and the problem goes to the logs.
func TestAValueFromTheEnvironmentIsNotQuoted(t *testing.T) {
	env := map[string]string{"SOME_TOKEN": "tok9Zq", "LONG_TOKEN": "kpw-77aa-0123456789", "N": "many"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for doc, want := range map[string]string{
		"security: {mask: ${SOME_TOKEN}}\n":          "security.mask: what ${SOME_TOKEN} gave does not decode as []string",
		"executor: {maxConcurrent: ${LONG_TOKEN}}\n": "executor.maxConcurrent: what ${LONG_TOKEN} gave does not decode as int",
		"executor: {maxConcurrent: x-${N}}\n":        "executor.maxConcurrent: what x-${N} gave does not decode as int",
	} {
		_, _, ps := ParseAll([]byte(doc), lookup)
		msg := ps.Error()
		if !strings.Contains(msg, want) {
			t.Errorf("%q: %s, want %q", doc, msg, want)
		}
		for _, v := range env {
			if strings.Contains(msg, v) || strings.Contains(msg, v[:4]) {
				t.Errorf("%q: the problem quotes the value: %s", doc, msg)
			}
		}
	}
	// A value the file itself wrote is still quoted: that helps, and it is in the file.
	_, _, ps := ParseAll([]byte("executor: {maxConcurrent: lots}\n"), lookup)
	if !strings.Contains(ps.Error(), "lots") {
		t.Errorf("a literal value: %s, want it quoted", ps.Error())
	}
}

// Validate's problems do not quote a value from the environment either: they name the
// ${VAR} the file wrote (a password put in port.baseURL, say).
func TestValidateDoesNotQuoteAValueFromTheEnvironment(t *testing.T) {
	env := map[string]string{"KAFKA_PASSWORD": "s3cr3t-pw", "MECH": "pw-mech-77"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	doc := "port: {baseURL: ${KAFKA_PASSWORD}}\nkafka: {sasl: {mechanism: ${MECH}}, startOffset: latest}\n"
	cfg, _, ps := ParseAll([]byte(doc), lookup)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	err := cfg.Validate(func(string) error { return nil }, func(string) (string, error) { return "/bin/true", nil })
	if err == nil {
		t.Fatal("no problem with a password as port.baseURL")
	}
	msg := err.Error()
	for _, v := range env {
		if strings.Contains(msg, v) {
			t.Errorf("the problems quote %q: %s", v, msg)
		}
	}
	for _, want := range []string{"port.baseURL: must be an http(s) URL, got ${KAFKA_PASSWORD}", "got ${MECH}"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems: %s\nwant %q", msg, want)
		}
	}
}
