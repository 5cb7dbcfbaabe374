package runmsg

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// gitlabRun is a GitLab invocation as Port signs it: the signature leaves "headers" out, so
// whoever relays a captured message can add to them and it still verifies.
const gitlabRun = `{"action":"a","context":{"runId":"r_1"},"payload":{"action":{"invocationMethod":{"type":"GITLAB"}},"properties":{"x":1}},"headers":{}}`

// signedGitLabWithInjectedHeader is gitlabRun signed, then given a header nobody signed.
func signedGitLabWithInjectedHeader(t *testing.T) []byte {
	t.Helper()
	signed, err := Sign(vectorSecret, vectorTimestamp, []byte(gitlabRun))
	if err != nil {
		t.Fatal(err)
	}
	injected := bytes.Replace(signed, []byte(`"headers":{`), []byte(`"headers":{"injected":"$(curl evil)",`), 1)
	if bytes.Equal(injected, signed) {
		t.Fatalf("no headers object in %s", signed)
	}
	return injected
}

// A verified GitLab invocation reaches the command as it was signed: nothing of its headers,
// which the signature does not cover, is in the run context or the run file.
func TestVerifiedGitLabRunCarriesNoUnsignedHeaders(t *testing.T) {
	now := func() time.Time { return time.Unix(vectorTimestamp+60, 0) }
	d := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true, Now: now})
	raw := signedGitLabWithInjectedHeader(t)
	run, err := d.Decode(raw)
	if err != nil {
		t.Fatalf("Decode(%s): %v", raw, err)
	}
	msg, _ := run.Context["message"].(map[string]any)
	if _, ok := msg["headers"]; ok || msg == nil {
		t.Fatalf("message = %v, want it without headers", run.Context["message"])
	}
	js, err := run.ContextJSON()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(js, []byte("injected")) || bytes.Contains(js, []byte("curl")) {
		t.Fatalf("run file holds an unsigned header: %s", js)
	}
	if omsg, _, _, err := d.documentOracle(raw, true); err != nil || !reflect.DeepEqual(omsg, msg) {
		t.Fatalf("oracle message %v (%v), decoder's %v", omsg, err, msg)
	}
}

// Without verification nothing is vouched for and the message keeps its headers (less the
// signature ones) as before: a trusted topic's GitLab run is read as any other.
func TestTrustedGitLabRunKeepsHeaders(t *testing.T) {
	d := mustDecoder(t, Options{})
	raw := signedGitLabWithInjectedHeader(t)
	run, err := d.Decode(raw)
	if err != nil {
		t.Fatalf("Decode(%s): %v", raw, err)
	}
	h, _ := Lookup(run.Context["message"], "headers").(map[string]any)
	if want := map[string]any{"injected": "$(curl evil)"}; !reflect.DeepEqual(h, want) {
		t.Fatalf("message headers = %v, want %v", h, want)
	}
}
