package config

import (
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/runmsg"
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

// A jq expression holding a value from the environment (a literal password in an env
// entry, `'"${DB_PASSWORD}"'`) that does not parse is named by the text the file wrote,
// and the parser's message is not shown: gojq quotes the token it stopped at, a piece of
// the password ("unexpected token \"Qx9w0rd\"").
func TestAJQErrorDoesNotQuoteAPieceOfAValueFromTheEnvironment(t *testing.T) {
	for _, pw := range []string{`pa"Qx9w0rd-77zz`, `pa\Qx9w0rd-77zz`, `p" Qx9w0rd77zz`} {
		env := map[string]string{"DB_PASSWORD": pw}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		doc := "message: {entity: '\"${DB_PASSWORD}\"'}\n" +
			"actions:\n  a:\n    command: [/bin/true]\n    when: '\"${DB_PASSWORD}\" == .x'\n" +
			"    env:\n      DB_PASSWORD: '\"${DB_PASSWORD}\"'\n" +
			"    workflowNode: {url: 'https://x.invalid/n', selector: '\"${DB_PASSWORD}\"'}\n"
		cfg, _, ps := ParseAll([]byte(doc), lookup)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		err := cfg.Validate(runmsg.CompileSelector, func(p string) (string, error) { return p, nil })
		if err == nil {
			t.Fatalf("%q: no problem", pw)
		}
		msg := err.Error()
		for _, key := range []string{"message.entity", "actions.a.when", "actions.a.env.DB_PASSWORD", "actions.a.workflowNode.selector"} {
			if !strings.Contains(msg, key+`: bad jq expression "${DB_PASSWORD}"`) &&
				!strings.Contains(msg, key+`: bad jq expression "${DB_PASSWORD}" == .x`) {
				t.Errorf("%q: no problem names %s by the text the file wrote:\n%s", pw, key, msg)
			}
		}
		for _, piece := range []string{"Qx9", "w0rd", "77z", `\Q`} {
			if strings.Contains(msg, piece) {
				t.Errorf("%q: the problems quote %q, a piece of the value:\n%s", pw, piece, msg)
			}
		}
	}
	// A literal expression's problem still quotes the parser's message: that helps.
	cfg, _, _ := ParseAll([]byte("actions:\n  a: {command: [/bin/true], env: {X: '\"a\"b'}}\n"), nil)
	if err := cfg.Validate(runmsg.CompileSelector, func(p string) (string, error) { return p, nil }); err == nil ||
		!strings.Contains(err.Error(), `unexpected token "b"`) {
		t.Errorf("a literal expression: %v, want the parser's message", err)
	}
}
