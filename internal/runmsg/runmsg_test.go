package runmsg

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/itchyny/gojq"

	"github.com/port-runner/port-runner/test/harness/vectors"
)

const (
	vectorSecret    = vectors.Secret
	vectorTimestamp = 1764429600
)

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	return readFileIn(t, vectors.Dir(t), name)
}

func readFileIn(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorFiles(t testing.TB) []string {
	t.Helper()
	dir := vectors.Dir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no vectors in %s", dir)
	}
	return files
}

func mustDecoder(t testing.TB, opts Options) *Decoder {
	t.Helper()
	d, err := NewDecoder(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// expectations transcribe the table in vectors/README.md.
var expectations = map[string]struct {
	verify   error // nil: valid signature
	runID    string
	action   string
	trigger  string
	entityID string // "" : entity null
	region   string
}{
	"create_microservice.signed.json":              {nil, "r_QOz6WoOB1Q2lmhZZ", "create_microservice", "CREATE", "", "eu-west-1"},
	"create_microservice.signed.pretty.json":       {nil, "r_QOz6WoOB1Q2lmhZZ", "create_microservice", "CREATE", "", "eu-west-1"},
	"create_microservice.tampered.json":            {ErrSignatureMismatch, "r_QOz6WoOB1Q2lmhZZ", "create_microservice", "CREATE", "", "us-east-1"},
	"create_microservice.unsigned.json":            {ErrUnsigned, "r_QOz6WoOB1Q2lmhZZ", "create_microservice", "CREATE", "", "eu-west-1"},
	"deploy_microservice.signed.json":              {nil, "r_z0nJYJv0wCm2ASTR", "deploy_microservice", "DAY-2", "my-microservice", ""},
	"deploy_microservice.seed-wrapped.signed.json": {nil, "r_z0nJYJv0wCm2ASTR", "deploy_microservice", "DAY-2", "my-microservice", ""},
	"v2-kafka-unicode.signed.json":                 {nil, "r_v2KafkaExample01", "create_microservice", "CREATE", "", "eu-west-1"},
}

func TestVectors(t *testing.T) {
	verifying := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true})
	trusting := mustDecoder(t, Options{})
	for _, path := range vectorFiles(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			want, ok := expectations[name]
			if !ok {
				t.Fatalf("no expectation for vector %s: add a row", name)
			}
			raw := readVector(t, name)

			err := Verify(vectorSecret, raw)
			if !errors.Is(err, want.verify) || (want.verify == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, want.verify)
			}

			run, err := verifying.Decode(raw)
			if want.verify != nil {
				var se *SkipError
				if !errors.As(err, &se) || se.Reason != ReasonBadSignature || !errors.Is(err, want.verify) {
					t.Fatalf("Decode with verification = %v, want bad_signature wrapping %v", err, want.verify)
				}
				// The README's "accepted when not verifying".
				if run, err = trusting.Decode(raw); err != nil {
					t.Fatalf("Decode without verification: %v", err)
				}
			} else if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			checkRun(t, run, want.runID, want.action, want.trigger, want.entityID, want.region)
			if name == "v2-kafka-unicode.signed.json" {
				checkUnicodeProperties(t, run)
			}
		})
	}
}

func checkRun(t *testing.T, run Run, id, action, trigger, entityID, region string) {
	t.Helper()
	if run.ID != id || run.Action != action {
		t.Errorf("run = %q %q, want %q %q", run.ID, run.Action, id, action)
	}
	c := run.Context
	for _, k := range []string{"runId", "action", "blueprint", "entity", "properties", "trigger", "message"} {
		if _, ok := c[k]; !ok {
			t.Errorf("context lacks %q", k)
		}
	}
	if c["runId"] != id || c["action"] != action || c["blueprint"] != "microservice" {
		t.Errorf("context runId/action/blueprint = %v %v %v", c["runId"], c["action"], c["blueprint"])
	}
	msg := c["message"].(map[string]any)
	body := msg
	if _, ok := body["context"]; !ok {
		body = body["payload"].(map[string]any) // the seed-wrapped shape stays wrapped
	}
	if got := Lookup(body, "payload", "action", "trigger"); got != trigger {
		t.Errorf("message trigger = %v, want %s", got, trigger)
	}
	if h, ok := msg["headers"].(map[string]any); ok {
		if _, ok := h[HeaderSignature]; ok {
			t.Error("message keeps X-Port-Signature")
		}
		if _, ok := h[HeaderTimestamp]; ok {
			t.Error("message keeps X-Port-Timestamp")
		}
	}
	if tr, ok := c["trigger"].(map[string]any); !ok || tr["origin"] != "UI" {
		t.Errorf("context trigger = %v", c["trigger"])
	}
	if entityID == "" {
		if c["entity"] != nil {
			t.Errorf("entity = %v, want null", c["entity"])
		}
	} else if got := Lookup(c["entity"], "identifier"); got != entityID {
		t.Errorf("entity identifier = %v, want %s", got, entityID)
	}
	props, ok := c["properties"].(map[string]any)
	if !ok {
		t.Fatalf("properties = %T", c["properties"])
	}
	if region != "" && props["region"] != region {
		t.Errorf("region = %v, want %s", props["region"], region)
	}
	if trigger == "DAY-2" && props["environment"] != "production" {
		t.Errorf("environment = %v", props["environment"])
	}
	if _, err := run.ContextJSON(); err != nil {
		t.Error(err)
	}
}

func checkUnicodeProperties(t *testing.T, run Run) {
	t.Helper()
	p := run.Context["properties"].(map[string]any)
	if p["name"] != "ünïcødé-svc ✓" {
		t.Errorf("name = %q", p["name"])
	}
	if want := "a<b>&c \u2028 line-sep \"quoted\" back\\slash\ttab"; p["note"] != want {
		t.Errorf("note = %q, want %q", p["note"], want)
	}
	if p["replicas"] != 3 { // int, exactly
		t.Errorf("replicas = %#v, want int 3", p["replicas"])
	}
	if p["ratio"] != 0.25 {
		t.Errorf("ratio = %#v, want 0.25", p["ratio"])
	}
	js, err := run.ContextJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"replicas":3,`, `"ratio":0.25,`, `"name":"ünïcødé-svc ✓"`, `a<b>&c`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("ContextJSON lacks %s:\n%s", want, js)
		}
	}
	// What env expressions will do with it.
	q, _ := gojq.Parse(`.properties | "\(.replicas + 1) \(.ratio * 4) \(.nested.a)"`)
	v, _ := q.Run(run.Context).Next()
	if v != "4 1 2" {
		t.Errorf("jq over context = %v", v)
	}
}

// Each compact vector's signed body is, byte for byte, the file with the two
// header keys cut out: an expectation built without our serializer.
func TestSignedBodyMatchesVectorBytes(t *testing.T) {
	cut := regexp.MustCompile(`"X-Port-Signature":"[^"]*",?|,?"X-Port-Timestamp":[0-9]+`)
	sigRe := regexp.MustCompile(`"X-Port-Signature":"v1,([^"]*)"`)
	for _, path := range vectorFiles(t) {
		raw := bytes.TrimSpace(readVector(t, filepath.Base(path)))
		if bytes.Contains(raw, []byte("\n")) || !sigRe.Match(raw) {
			continue // pretty or unsigned
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := cut.ReplaceAll(raw, nil)
			root, err := parseRoot(raw)
			if err != nil {
				t.Fatal(err)
			}
			got := signedBody(root, mustGet(root, "headers").(*object))
			if !bytes.Equal(got, want) {
				t.Fatalf("body differs:\n got %s\nwant %s", got, want)
			}
			m := hmac.New(sha256.New, []byte(vectorSecret))
			m.Write([]byte("1764429600." + string(want)))
			mac := base64.StdEncoding.EncodeToString(m.Sum(nil))
			fileMAC := string(sigRe.FindSubmatch(raw)[1])
			if strings.Contains(path, "tampered") {
				if mac == fileMAC {
					t.Fatal("tampered vector has a valid MAC")
				}
			} else if mac != fileMAC {
				t.Fatalf("independent MAC %s != file's %s", mac, fileMAC)
			}
		})
	}
}

func TestSignRoundTrip(t *testing.T) {
	unsigned := readVector(t, "create_microservice.unsigned.json")
	signed := readVector(t, "create_microservice.signed.json")
	out, err := Sign(vectorSecret, vectorTimestamp, unsigned)
	if err != nil {
		t.Fatal(err)
	}
	// The unsigned vector is the signed one pretty-printed and without
	// headers, so Sign must rebuild the signed file exactly.
	if !bytes.Equal(out, bytes.TrimSpace(signed)) {
		t.Fatalf("Sign(unsigned) =\n%s\nwant\n%s", out, signed)
	}
	if err := Verify(vectorSecret, out); err != nil {
		t.Fatal(err)
	}
	if err := Verify("another-secret", out); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("Verify with the wrong secret = %v", err)
	}

	// Re-signing a signed vector replaces the headers in place and yields the same MAC.
	for _, path := range vectorFiles(t) {
		name := filepath.Base(path)
		raw := readVector(t, name)
		out, err := Sign(vectorSecret, vectorTimestamp, raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := Verify(vectorSecret, out); err != nil {
			t.Fatalf("%s: Verify(Sign()) = %v", name, err)
		}
		if expectations[name].verify == nil && !bytes.Contains(raw, []byte("\n  ")) && !bytes.Equal(out, bytes.TrimSpace(raw)) {
			t.Errorf("%s: re-signing changed the bytes:\n%s", name, out)
		}
	}
}

func TestSignKeepsOrderAndHeaders(t *testing.T) {
	in := `{ "b": 1.50, "a": {"y": 2, "x": [1e2, -0, "<&>\u2028\u0001\"\\"]}, "headers": {"k": "v", "X-Port-Timestamp": 5}, "z": null }`
	out, err := Sign("s", 42, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\{"b":1.50,"a":\{"y":2,"x":\[1e2,-0,"<&>` + "\u2028" + `\\u0001\\"\\\\"\]\},"headers":\{"k":"v","X-Port-Timestamp":42,"X-Port-Signature":"v1,[A-Za-z0-9+/]{43}="\},"z":null\}$`)
	if !re.Match(out) {
		t.Fatalf("Sign = %s", out)
	}
	if err := Verify("s", out); err != nil {
		t.Fatal(err)
	}
	out, err = Sign("s", 42, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\{"a":1,"headers":\{"X-Port-Signature":"v1,[^"]+","X-Port-Timestamp":42\}\}$`).Match(out) {
		t.Fatalf("Sign = %s", out)
	}
	for _, bad := range []string{`[]`, `{"headers":[]}`, `nope`} {
		if _, err := Sign("s", 1, []byte(bad)); err == nil {
			t.Errorf("Sign(%s) succeeded", bad)
		}
	}
	if _, err := Sign("", 1, []byte(`{}`)); err == nil {
		t.Error("Sign with an empty secret succeeded")
	}
}

func TestJSStringEscapes(t *testing.T) {
	var all strings.Builder
	for c := rune(0); c < 0x80; c++ {
		all.WriteRune(c)
	}
	all.WriteString("é\u2028\u2029😀")
	got := string(appendQuoted(nil, all.String(), jsonStringify))
	// JSON.stringify of the same string, as node prints it.
	want := `"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_` + "`" + `abcdefghijklmnopqrstuvwxyz{|}~` + "\x7f" + `é` + "\u2028\u2029" + `😀"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestVerifyFailures(t *testing.T) {
	signed := string(bytes.TrimSpace(readVector(t, "create_microservice.signed.json")))
	sub := func(old, new string) []byte {
		if !strings.Contains(signed, old) {
			t.Fatalf("vector lacks %s", old)
		}
		return []byte(strings.Replace(signed, old, new, 1))
	}
	const ts = `"X-Port-Timestamp":1764429600`
	const sig = `"X-Port-Signature":"v1,Dck0T+YDdQLTDPtQsftRyYqU+Ai2w8FFHEkg3m2nkvA="`
	if err := Verify(vectorSecret, sub(ts, `"X-Port-Timestamp":"1764429600"`)); err != nil {
		t.Errorf("numeric-string timestamp: %v", err)
	}
	if err := Verify(vectorSecret, sub(sig, sig[:20]+`v0,abc `+sig[20:])); err != nil {
		t.Errorf("space-separated signatures: %v", err)
	}
	for name, c := range map[string]struct {
		raw  []byte
		want error
	}{
		"other timestamp":      {sub(ts, `"X-Port-Timestamp":1764429601`), ErrSignatureMismatch},
		"fractional timestamp": {sub(ts, `"X-Port-Timestamp":1764429600.0`), ErrMalformedSignature},
		"text timestamp":       {sub(ts, `"X-Port-Timestamp":"soon"`), ErrMalformedSignature},
		"no timestamp":         {sub(","+ts, ``), ErrMalformedSignature},
		"no signature":         {sub(sig+",", ``), ErrUnsigned},
		"empty headers":        {sub(sig+","+ts, ``), ErrUnsigned},
		"headers not object":   {sub(`"headers":{`+sig+","+ts+`}`, `"headers":"x"`), ErrMalformedSignature},
		"v2 signature":         {sub(`"v1,`, `"v2,`), ErrMalformedSignature},
		"not base64":           {sub(`"v1,`, `"v1,!!`), ErrMalformedSignature},
		"signature number":     {sub(sig, `"X-Port-Signature":7`), ErrMalformedSignature},
		"key order changed":    {sub(`"resourceType":"run","status":"TRIGGERED"`, `"status":"TRIGGERED","resourceType":"run"`), ErrSignatureMismatch},
		"key added":            {sub(`"name":"my-microservice"`, `"name":"my-microservice","n":1`), ErrSignatureMismatch},
	} {
		if err := Verify(vectorSecret, c.raw); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, c.want)
		}
	}
	uni := readVector(t, "v2-kafka-unicode.signed.json")
	if err := Verify(vectorSecret, bytes.Replace(uni, []byte(`"replicas":3,`), []byte(`"replicas":3.0,`), 1)); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("number respelled: Verify = %v", err)
	}
	if err := Verify(vectorSecret, bytes.Replace(uni, []byte(`\"quoted\"`), []byte(`\u0022quoted\u0022`), 1)); err != nil {
		t.Errorf("escape respelled (same string): Verify = %v", err)
	}
	if err := Verify("", []byte(signed)); err == nil {
		t.Error("Verify with an empty secret succeeded")
	}
	if err := Verify(vectorSecret, []byte(`not json`)); err == nil {
		t.Error("Verify(not json) succeeded")
	}
}

func TestDecodeErrors(t *testing.T) {
	d := mustDecoder(t, Options{MaxBytes: 100})
	for name, c := range map[string]struct {
		raw    string
		reason SkipReason
		msg    string
	}{
		"not JSON":     {`{"context":`, ReasonInvalid, "not JSON"},
		"trailing":     {`{"context":{"runId":"r"},"action":"a"} {}`, ReasonInvalid, "not JSON"},
		"array":        {`[{"context":{"runId":"r"}}]`, ReasonInvalid, "no run id"}, // default selectors read an object
		"string":       {`"r"`, ReasonInvalid, "a string, not an object or array"},
		"empty":        {``, ReasonInvalid, "not JSON"},
		"no run id":    {`{"action":"a"}`, ReasonInvalid, "no run id"},
		"empty run id": {`{"context":{"runId":""},"action":"a"}`, ReasonInvalid, "no run id: selector gave an empty string"},
		"number id":    {`{"context":{"runId":7},"action":"a"}`, ReasonInvalid, "no run id: selector gave a number"},
		"dot-dot id":   {`{"context":{"runId":".."},"action":"a"}`, ReasonInvalid, "bad run id: run id has a character outside"},
		"dot id":       {`{"context":{"runId":"."},"action":"a"}`, ReasonInvalid, "bad run id"},
		"slash id":     {`{"context":{"runId":"r/../x"},"action":"a"}`, ReasonInvalid, "bad run id"},
		"id jq error":  {`{"context":"r","action":"a"}`, ReasonInvalid, "no run id: jq:"},
		"no action":    {`{"context":{"runId":"r"}}`, ReasonInvalid, "no action"},
		"oversize":     {`{"context":{"runId":"r"},"action":"a","pad":"` + strings.Repeat("x", 100) + `"}`, ReasonInvalid, "over the 100-byte limit"},
		"too deep":     {strings.Repeat("[", 2000), ReasonInvalid, "not JSON"},
	} {
		dd := d
		if name == "too deep" {
			dd = mustDecoder(t, Options{})
		}
		_, err := dd.Decode([]byte(c.raw))
		var se *SkipError
		if !errors.As(err, &se) || se.Reason != c.reason || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: Decode = %v, want %s containing %q", name, err, c.reason, c.msg)
		}
	}

	// Default MaxBytes is 1 MiB.
	big := []byte(`{"context":{"runId":"r"},"action":"a","pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	if _, err := mustDecoder(t, Options{}).Decode(big); err == nil || !strings.Contains(err.Error(), "1048576-byte limit") {
		t.Errorf("1 MiB limit: %v", err)
	}
}

func TestDecodeFallbacks(t *testing.T) {
	d := mustDecoder(t, Options{})
	run, err := d.Decode([]byte(`{"context":{"runId":"r1"},"payload":{"action":{"identifier":"act","blueprint":"bp"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := run.Context
	if run.Action != "act" || c["blueprint"] != "bp" || c["entity"] != nil || c["trigger"] != nil {
		t.Errorf("run = %+v", run)
	}
	if p, ok := c["properties"].(map[string]any); !ok || len(p) != 0 {
		t.Errorf("properties = %#v, want {}", c["properties"])
	}
	js, err := run.ContextJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"action":"act","blueprint":"bp","entity":null,"message":{"context":{"runId":"r1"},"payload":{"action":{"blueprint":"bp","identifier":"act"}}},"properties":{},"runId":"r1","trigger":null}`; string(js) != want {
		t.Errorf("ContextJSON =\n%s\nwant\n%s", js, want)
	}
	run, err = d.Decode([]byte(`{"context":{"runId":"r1"},"action":{"identifier":"obj"}}`))
	if err != nil || run.Action != "obj" {
		t.Errorf("object action: %v %q", err, run.Action)
	}
	// A big integer stays exact.
	run, err = d.Decode([]byte(`{"context":{"runId":"r1"},"action":"a","payload":{"properties":{"n":123456789012345678901234567890,"f":1e400}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := run.ContextJSON(); !bytes.Contains(js, []byte(`"properties":{"f":1e400,"n":123456789012345678901234567890}`)) {
		t.Errorf("ContextJSON = %s", js)
	}
}

func TestCustomSelectors(t *testing.T) {
	d := mustDecoder(t, Options{Selectors: Selectors{RunID: ".id", Action: ".kind", Properties: ".inputs"}})
	run, err := d.Decode([]byte(`{"id":"r_1","kind":"x","inputs":{"name":"svc","n":2},"payload":{"entity":{"identifier":"e"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if run.ID != "r_1" || run.Action != "x" {
		t.Errorf("run = %q %q", run.ID, run.Action)
	}
	if p := run.Context["properties"].(map[string]any); p["name"] != "svc" || p["n"] != 2 {
		t.Errorf("properties = %v", p)
	}
	if Lookup(run.Context["entity"], "identifier") != "e" { // Entity kept its default
		t.Errorf("entity = %v", run.Context["entity"])
	}
	if _, err := d.Decode([]byte(`{"context":{"runId":"r"},"action":"a"}`)); err == nil {
		t.Error("v1 message decoded with v2 selectors")
	}
	// Selectors run against the document without headers.
	d = mustDecoder(t, Options{Selectors: Selectors{RunID: `.headers.id // "none"`, Action: `"a"`}})
	if run, err := d.Decode([]byte(`{"headers":{"id":"h"}}`)); err != nil || run.ID != "none" {
		t.Errorf("headers visible to selectors: %v %q", err, run.ID)
	}
	// A selector that never ends is cut off.
	d = mustDecoder(t, Options{Selectors: Selectors{Properties: "def f: f; f"}})
	if _, err := d.Decode([]byte(`{"context":{"runId":"r"},"action":"a"}`)); err == nil || !strings.Contains(err.Error(), "properties: jq:") {
		t.Errorf("endless selector: %v", err)
	}
}

// A v2 action's custom payload (and a Kafka node's) may be an array: the selectors read it.
// It cannot carry the signature headers, so with verification on it is unsigned.
func TestArrayPayload(t *testing.T) {
	raw := []byte(`[{"runId":"r_arr1","action":"build"},{"inputs":{"name":"svc"}},{"entity":"e1"}]`)
	sel := Selectors{RunID: ".[0].runId", Action: ".[0].action", Properties: ".[1].inputs", Entity: ".[2].entity"}
	run, err := mustDecoder(t, Options{Selectors: sel}).Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if run.ID != "r_arr1" || run.Action != "build" || run.Context["entity"] != "e1" || run.Context["trigger"] != nil {
		t.Errorf("run = %+v", run)
	}
	if p := run.Context["properties"].(map[string]any); p["name"] != "svc" {
		t.Errorf("properties = %v", p)
	}
	if m, ok := run.Context["message"].([]any); !ok || len(m) != 3 {
		t.Errorf("message = %#v, want the array", run.Context["message"])
	}
	_, err = mustDecoder(t, Options{Selectors: sel, Secret: vectorSecret, VerifySignature: true}).Decode(raw)
	var se *SkipError
	if !errors.As(err, &se) || se.Reason != ReasonBadSignature || !errors.Is(err, ErrUnsigned) {
		t.Errorf("verified array: %v, want unsigned", err)
	}
}

// A workflow node run names no action. Workflow and node identifiers are read where Port may
// one day put them (no Port source shows them: see the vectors of Port's shapes for what it does send), and
// a Kafka node's configured payload stands in for the inputs.
func TestWorkflowNodeRun(t *testing.T) {
	raw := []byte(`{"context":{"runId":"wfnr_abc","workflowRunId":"wfr_1","workflow":{"identifier":"ci"},"node":"build"},"payload":{"image":"api","tags":["v1"]},"headers":{}}`)
	run, err := mustDecoder(t, Options{}).Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if run.ID != "wfnr_abc" || run.Action != "" || run.Workflow != "ci" || run.Node != "build" {
		t.Errorf("run = %+v", run)
	}
	if p, _ := run.Context["properties"].(map[string]any); p["image"] != "api" {
		t.Errorf("properties = %v, want the node's payload", run.Context["properties"])
	}
	if run.Context["workflow"] != "ci" || run.Context["node"] != "build" {
		t.Errorf("context = %v", run.Context)
	}
	// An action run without an action is still invalid.
	if _, err := mustDecoder(t, Options{}).Decode([]byte(`{"context":{"runId":"r_abc"},"payload":{}}`)); err == nil {
		t.Error("action run without an action decoded")
	}
}

func TestNewDecoderErrors(t *testing.T) {
	_, err := NewDecoder(Options{Selectors: Selectors{Entity: ".foo["}})
	if err == nil || !strings.HasPrefix(err.Error(), `message.entity: parse jq ".foo[": `) {
		t.Errorf("NewDecoder = %v", err)
	}
	_, err = NewDecoder(Options{Selectors: Selectors{RunID: "nosuchfn(1)"}})
	if err == nil || !strings.HasPrefix(err.Error(), `message.runId: compile jq "nosuchfn(1)": `) {
		t.Errorf("NewDecoder = %v", err)
	}
	if _, err := NewDecoder(Options{VerifySignature: true}); err == nil {
		t.Error("verification without a secret accepted")
	}
	if err := CompileSelector(".a | .b[0]"); err != nil {
		t.Error(err)
	}
	if err := CompileSelector("$ENV.PORT_CLIENT_SECRET"); err != nil {
		t.Error(err) // compiles, but sees an empty environment
	}
	if err := CompileSelector(".a |"); err == nil || !strings.Contains(err.Error(), `parse jq ".a |"`) {
		t.Errorf("CompileSelector = %v", err)
	}
}

func TestSkipError(t *testing.T) {
	inner := errors.New("boom")
	e := &SkipError{Reason: ReasonInvalid, Err: inner}
	if e.Error() != "invalid: boom" || !errors.Is(e, inner) {
		t.Errorf("%v", e)
	}
	if (&SkipError{Reason: ReasonBadSignature}).Error() != "bad_signature" {
		t.Error("nil Err")
	}
}

func TestDecodeConcurrent(t *testing.T) {
	d := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true})
	raw := readVector(t, "v2-kafka-unicode.signed.json")
	run, err := d.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := gojq.Parse(`.properties.replicas + 1, .message | tojson`)
	code, _ := gojq.Compile(q)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := d.Decode(raw); err != nil {
					t.Error(err)
				}
				iter := code.Run(run.Context)
				for v, ok := iter.Next(); ok; v, ok = iter.Next() {
					if err, ok := v.(error); ok {
						t.Error(err)
					}
				}
				if _, err := run.ContextJSON(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func FuzzDecode(f *testing.F) {
	for _, path := range vectorFiles(f) {
		f.Add(readVector(f, filepath.Base(path)))
	}
	ports, _ := filepath.Glob(filepath.Join(vectors.PortDir(), "*.json"))
	for _, path := range ports {
		f.Add(readPortVector(f, filepath.Base(path)))
	}
	f.Add([]byte(`{"payload":{"context":{"runId":"r"},"action":"a"}}`))
	f.Add([]byte(`{"context":{"runId":"r"},"action":"a","headers":{"X-Port-Signature":"v1,x","X-Port-Timestamp":"1"}}`))
	f.Add(signText("0", `{"action":"a","context":{"runId":"r"}}`))
	f.Add(signText("99999999999999999999", `{"action":"a","context":{"runId":"r"}}`))
	f.Add([]byte(`{"context":{"runId":"wfnr_1","workflow":{"identifier":"w"},"node":"n"},"payload":[1,{"a":"b"}]}`))
	f.Add([]byte(`[{"runId":"r_1","action":"a"},{"inputs":{}}]`))
	f.Add(signText(strings.Repeat("9", 4096), `{"action":"a","context":{"runId":"r"}}`))
	f.Add([]byte(`{"action":"a","context":{"runId":"r"},"headers":{"X-Port-Signature":"v1,x","X-Port-Timestamp":"` + strings.Repeat("1", 4096) + `x"}}`))
	verifying := mustDecoder(f, Options{Secret: vectorSecret, VerifySignature: true})
	trusting := mustDecoder(f, Options{})
	arrays := mustDecoder(f, Options{Selectors: Selectors{RunID: ".[0].runId", Action: ".[0].action", Properties: ".[1].inputs"}})
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, d := range []*Decoder{verifying, trusting, arrays} {
			run, err := d.Decode(raw)
			if err != nil {
				var se *SkipError
				if !errors.As(err, &se) || (se.Reason != ReasonInvalid && se.Reason != ReasonBadSignature && se.Reason != ReasonIgnored) {
					t.Fatalf("Decode error %T %v is not a *SkipError", err, err)
				}
				if n := len(err.Error()); n > maxErrorBytes {
					t.Fatalf("Decode error of %d bytes quotes too much of the message: %.200s", n, err)
				}
				continue
			}
			if run.ID == "" || (run.Action == "" && !IsWorkflowNodeRun(run.ID)) {
				t.Fatalf("run without id or action: %+v", run)
			}
			if d == verifying && (run.SignedAt.Unix() <= 0 || run.SignedAt.After(time.Now().Add(MaxFuture))) {
				t.Fatalf("verified run signed at %v", run.SignedAt)
			}
			js, err := run.ContextJSON()
			if err != nil || !json.Valid(js) {
				t.Fatalf("ContextJSON = %v, %s", err, js)
			}
		}
		// Whatever Sign accepts, Verify and a verifying Decoder accept too
		// (unless the message simply lacks a run).
		signed, err := Sign(vectorSecret, vectorTimestamp, raw)
		if err != nil {
			return
		}
		if err := Verify(vectorSecret, signed); err != nil {
			t.Fatalf("Verify(Sign(%q)) = %v\nsigned: %s", raw, err, signed)
		}
		if _, err := verifying.Decode(signed); err != nil {
			var se *SkipError
			if errors.As(err, &se) && se.Reason == ReasonBadSignature {
				t.Fatalf("Decode(Sign(%q)) = %v", raw, err)
			}
		}
	})
}

// JSON.stringify writes a lone surrogate as \ud800 (ES2019 well-formed stringify),
// and Port's HMAC covers those bytes. encoding/json turns it into U+FFFD, which changed the
// body and failed the signature of a genuine run. The MAC here is computed independently,
// over the bytes as Node writes them, in keys and values, lone highs and lows, next to a
// valid pair.
func TestLoneSurrogateKeptForSignature(t *testing.T) {
	body := `{"context":{"runId":"r_1"},"action":"a","payload":{"properties":{"s":"x\ud800y","t":"\udc00","pair":"😀","k\udbff":["\ud83d"]}},"headers":{"h":"v"}}`
	const ts = "1764429600"
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write([]byte(ts + "." + body))
	sig := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	msg := strings.Replace(body, `"headers":{"h":"v"}`, `"headers":{"h":"v","X-Port-Signature":"`+sig+`","X-Port-Timestamp":`+ts+`}`, 1)
	if err := Verify("s3cret", []byte(msg)); err != nil {
		t.Fatalf("Verify of a genuine message with lone surrogates: %v", err)
	}
	// Escapes in another spelling (upper-case hex) are what JSON.stringify would write in
	// lower case, as for any other escape the decoder reads.
	upper := strings.Replace(msg, `x\ud800y`, `x\uD800y`, 1)
	if err := Verify("s3cret", []byte(upper)); err != nil {
		t.Fatalf("Verify with upper-case escapes: %v", err)
	}
	// A changed lone surrogate is still a changed message.
	forged := strings.Replace(msg, `x\ud800y`, `x\ud801y`, 1)
	if err := Verify("s3cret", []byte(forged)); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("Verify of a message with another surrogate = %v, want a mismatch", err)
	}
	// The decoded run sees what encoding/json would give: U+FFFD.
	d := mustDecoder(t, Options{Secret: "s3cret", VerifySignature: true})
	run, err := d.Decode([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if got := run.Context["properties"].(map[string]any)["s"]; got != "x\uFFFDy" {
		t.Fatalf("property s = %q, want x\\uFFFDy", got)
	}
}

// A selector that fails on a message's value names the kind of jq error, never the value:
// gojq quotes it ("expected an object but got: string (...)"), and the agent logs the error.
func TestSelectorErrorCarriesNoValue(t *testing.T) {
	d := mustDecoder(t, Options{})
	_, err := d.Decode([]byte(`{"context":"p@ssw0rd-0123456789","action":"a"}`))
	if err == nil || !strings.Contains(err.Error(), "no run id: jq:") {
		t.Fatalf("Decode: %v, want a jq error on the run id", err)
	}
	if strings.Contains(err.Error(), "p@ssw0rd") {
		t.Fatalf("the error quotes the message's value: %v", err)
	}
}

func mustGet(o *object, k string) any {
	v, _ := o.get(k)
	return v
}
