package agent

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
)

const testKey = "agent-test-client-secret-0123456789abcdef"

func secretRun(t *testing.T, schema string, props map[string]string) runmsg.Run {
	t.Helper()
	var ps []string
	for k, v := range props {
		ps = append(ps, fmt.Sprintf("%q:%q", k, v))
	}
	raw := fmt.Sprintf(`{"action":"a","context":{"runId":"r_1"},"payload":{"action":{"userInputs":{"properties":%s}},"properties":{%s}}}`,
		schema, strings.Join(ps, ","))
	return decodeRun(t, raw)
}

func encrypt(t *testing.T, s string) string {
	t.Helper()
	v, err := runmsg.EncryptSecret(testKey, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Inputs the schema marks encrypted and those the config lists are decrypted for the
// command's context only; an object secret becomes its JSON value, every string and every
// number of 4 characters or more masked.
func TestDecryptInputs(t *testing.T) {
	act, err := newAction("a", config.Action{Command: []string{"true"}, SecretInputs: []string{"listed"},
		Env: map[string]string{"PW": ".properties.pw", "CONF_USER": ".properties.conf.user", "L": ".properties.listed"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	act.secretKey = testKey
	run := secretRun(t, `{"pw":{"type":"string","encryption":"aes256-gcm"},"conf":{"type":"object","encryption":"aes256-gcm"},"plain":{"type":"string"}}`,
		map[string]string{"pw": encrypt(t, "hunter2"), "conf": encrypt(t, `{"user":"admin","token":"tk-9","pin":482913,"port":80,"admin":true}`),
			"listed": encrypt(t, "listed-secret"), "plain": "visible"})
	before := run.Context["properties"].(map[string]any)["pw"]
	spec, masks, err := act.spec(run)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Env["PW"] != "hunter2" || spec.Env["CONF_USER"] != "admin" || spec.Env["L"] != "listed-secret" {
		t.Fatalf("env %v", spec.Env)
	}
	for _, m := range []string{"hunter2", "listed-secret", "admin", "tk-9", "482913"} {
		if !slices.Contains(masks, m) {
			t.Errorf("%q not masked (masks %q)", m, masks)
		}
	}
	// A boolean, or a number as short as a port's, would mask that word in every line.
	for _, m := range []string{"visible", "80", "true"} {
		if slices.Contains(masks, m) {
			t.Errorf("%q is masked (masks %q)", m, masks)
		}
	}
	if !strings.Contains(string(spec.RunFile), `"pw":"hunter2"`) {
		t.Errorf("run file lacks the decrypted input: %s", spec.RunFile)
	}
	if run.Context["properties"].(map[string]any)["pw"] != before {
		t.Error("the decoded run's context was changed: only the command's copy may hold plaintext")
	}
}

// A failure names the input, never the value: not for a bad value, nor for a jq error that
// quotes a decrypted one.
func TestDecryptFailureNamesTheInputOnly(t *testing.T) {
	act, _ := newAction("a", config.Action{Command: []string{"true"}, SecretInputs: []string{"pw"}}, nil)
	act.secretKey = testKey
	bad := encrypt(t, "x")[:20] + "AAAA" + encrypt(t, "x")[24:]
	_, _, err := act.spec(secretRun(t, `{}`, map[string]string{"pw": bad}))
	if err == nil || !strings.Contains(err.Error(), `secret input "pw"`) || strings.Contains(err.Error(), bad) {
		t.Fatalf("bad value: %v", err)
	}
	act, _ = newAction("a", config.Action{Command: []string{"true"}, SecretInputs: []string{"pw"},
		Env: map[string]string{"N": ".properties.pw | tonumber"}}, nil)
	act.secretKey = testKey
	_, _, err = act.spec(secretRun(t, `{}`, map[string]string{"pw": encrypt(t, "hunter2")}))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("jq error: %v", err)
	}
}

// An env entry is masked whole under a secret's name in any case, and a URL's password is
// masked under any name, decoded and as written (a proxy's, a database's).
func TestEnvSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        []string
	}{
		{"API_TOKEN", "tok-1", []string{"tok-1"}},
		{"my_token", "tok-2", []string{"tok-2"}},
		{"HTTPS_PROXY", "http://user:s3cr3t@proxy:3128", []string{"s3cr3t"}},
		{"DATABASE_URL", "postgres://app:p%40ss@db/app", []string{"p@ss", "p%40ss"}},
		{"DATABASE_URL", "postgres://app:a%2fb@db/app", []string{"a/b", "a%2fb"}}, // as written, not re-encoded (%2F)
		{"HTTPS_PROXY", "http://proxy:3128", nil},
		{"NOTE", "mail me@example.com", nil},
		{"HOME_URL", "https://user@example.com/", nil},
	} {
		if got := envSecrets(tc.name, tc.value); !slices.Equal(got, tc.want) {
			t.Errorf("envSecrets(%s, %s) = %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
}
