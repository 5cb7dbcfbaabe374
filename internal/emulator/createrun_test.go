package emulator

// Creating runs as Port does (action runs, day-2 runs, a broker that refuses them) and the
// message each produces, checked with a verifier of the test's own: Port's signature scheme
// recomputed from the vectors README, not runmsg's.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/port-runner/port-runner/internal/runmsg"
)

func TestCreateRun(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t)

	r := f.do(t, "POST", "/v1/actions/create_microservice/runs", tok,
		map[string]any{"properties": map[string]any{"name": "my-microservice", "region": "eu-west-1", "note": "a<b>&c café"}})
	want(t, r, 201, "")
	wr := r.body["run"].(map[string]any)
	id := wr["id"].(string)
	if len(id) != 18 || !strings.HasPrefix(id, "r_") || wr["status"] != "IN_PROGRESS" || wr["action"] != "create_microservice" || wr["entity"] != nil {
		t.Fatalf("created run %s", r.raw)
	}
	out := f.messages()
	if len(out) != 1 {
		t.Fatalf("%d messages produced", len(out))
	}
	p := out[0]
	if p.topic != "org_demo.runs" || string(p.key) != id {
		t.Fatalf("produced to %s key %s", p.topic, p.key)
	}
	verifyIndependently(t, testSecret, p.value)
	if err := runmsg.Verify(testSecret, p.value); err != nil {
		t.Fatalf("runmsg.Verify: %v", err)
	}
	if !bytes.Contains(p.value, []byte("a<b>&c café")) {
		t.Fatalf("message escapes what JSON.stringify would not: %s", p.value)
	}

	// Key order of the seed's body, headers last.
	if keys := topKeys(t, p.value); strings.Join(keys, ",") != "action,resourceType,status,trigger,context,payload,headers" {
		t.Fatalf("key order %v", keys)
	}
	var m struct {
		Action  string
		Trigger struct {
			By     struct{ OrgID string }
			Origin string
			At     string
		}
		Context struct {
			Entity    *string
			Blueprint string
			RunID     string
		}
		Payload struct {
			Entity json.RawMessage
			Action struct {
				Identifier, Trigger, Blueprint string
				InvocationMethod               struct{ Type string }
			}
			Properties map[string]any
		}
		Headers map[string]any
	}
	if err := json.Unmarshal(p.value, &m); err != nil {
		t.Fatal(err)
	}
	if m.Action != "create_microservice" || m.Context.RunID != id || m.Context.Entity != nil || m.Context.Blueprint != "microservice" ||
		string(m.Payload.Entity) != "null" || m.Payload.Action.Trigger != "CREATE" || m.Payload.Action.InvocationMethod.Type != "KAFKA" ||
		m.Payload.Action.Identifier != "create_microservice" || m.Trigger.By.OrgID != "org_demo" || m.Trigger.Origin != "API" ||
		m.Trigger.At != "2026-11-29T16:00:00.000Z" || m.Payload.Properties["region"] != "eu-west-1" {
		t.Fatalf("message %s", p.value)
	}
	if m.Headers["X-Port-Timestamp"] != float64(f.clk.Now().Unix()) {
		t.Fatalf("timestamp header %v", m.Headers["X-Port-Timestamp"])
	}

	run, ok := f.e.Run(id)
	if !ok || run.Properties["name"] != "my-microservice" || run.Blueprint != "microservice" {
		t.Fatalf("run %+v", run)
	}
	want(t, f.do(t, "POST", "/v1/actions/create_microservice/runs", tok, map[string]any{"properties": map[string]any{}, "bogus": 1}), 422, "invalid_request")
}

func TestCreateRunDay2(t *testing.T) {
	f := newFixture(t, nil)
	run, err := f.e.CreateRun(context.Background(), "deploy_microservice",
		CreateRunRequest{Properties: map[string]any{"environment": "production"}, Entity: "my-microservice"})
	if err != nil {
		t.Fatal(err)
	}
	if run.Entity != "my-microservice" || run.Status != "IN_PROGRESS" {
		t.Fatalf("run %+v", run)
	}
	v := f.messages()[0].value
	verifyIndependently(t, testSecret, v)
	var m struct {
		Context struct{ Entity string }
		Payload struct {
			Entity map[string]any
			Action struct{ Trigger string }
		}
	}
	if err := json.Unmarshal(v, &m); err != nil {
		t.Fatal(err)
	}
	ent := m.Payload.Entity
	if m.Context.Entity != "my-microservice" || m.Payload.Action.Trigger != "DAY-2" || ent["identifier"] != "my-microservice" ||
		ent["blueprint"] != "microservice" || ent["properties"] == nil || ent["relations"] == nil {
		t.Fatalf("DAY-2 message %s", v)
	}
	tok := f.token(t)
	g := f.do(t, "GET", "/v1/actions/runs/"+run.ID, tok, nil)
	if e, _ := g.body["run"].(map[string]any)["entity"].(map[string]any); e["identifier"] != "my-microservice" {
		t.Fatalf("GET DAY-2 run %s", g.raw)
	}
}

func TestCreateRunProduceError(t *testing.T) {
	boom := errors.New("kafka down")
	f := newFixture(t, func(o *Options) {
		o.Produce = func(context.Context, string, []byte, []byte) error { return boom }
	})
	tok := f.token(t)
	want(t, f.do(t, "POST", "/v1/actions/create_microservice/runs", tok, map[string]any{"properties": map[string]any{}}), 503, "")
	if _, err := f.e.CreateRun(context.Background(), "a", CreateRunRequest{}); !errors.Is(err, boom) {
		t.Fatalf("CreateRun error %v", err)
	}
	if n := len(f.e.Runs()); n != 0 {
		t.Fatalf("%d runs exist after failed produce", n)
	}

	nop := newFixture(t, func(o *Options) { o.Produce = nil })
	want(t, nop.do(t, "POST", "/v1/actions/a/runs", nop.token(t), map[string]any{}), 503, "")
}

// TestVerifierAgainstVectors proves the test's own verifier on Port's vectors,
// so a pass in TestCreateRun means the scheme, not just runmsg, agrees.
func TestVerifierAgainstVectors(t *testing.T) {
	good, err := os.ReadFile("testdata/deploy_microservice.signed.json")
	if err != nil {
		t.Fatal(err)
	}
	verifyIndependently(t, testSecret, good)
	bad, err := os.ReadFile("testdata/create_microservice.tampered.json")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := checkSignature(bad, testSecret); ok {
		t.Fatal("tampered vector verified")
	}
}

// verifyIndependently recomputes Port's signature from the vectors README,
// without runmsg: v1,base64(HMAC-SHA256(secret, "<ts>.<body>")).
func verifyIndependently(t *testing.T, secret string, msg []byte) {
	t.Helper()
	ok, err := checkSignature(msg, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("signature does not verify: %s", msg)
	}
}

func checkSignature(msg []byte, secret string) (bool, error) {
	var h struct {
		Headers struct {
			Sig string      `json:"X-Port-Signature"`
			TS  json.Number `json:"X-Port-Timestamp"`
		} `json:"headers"`
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	if err := dec.Decode(&h); err != nil {
		return false, err
	}
	if !strings.HasPrefix(h.Headers.Sig, "v1,") || h.Headers.TS == "" {
		return false, fmt.Errorf("unsigned: %+v", h.Headers)
	}
	var body bytes.Buffer
	d := json.NewDecoder(bytes.NewReader(msg))
	d.UseNumber()
	if err := jsCompact(d, &body, ""); err != nil {
		return false, err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s.%s", h.Headers.TS, body.Bytes())
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(h.Headers.Sig)), nil
}

// jsCompact re-serializes one JSON value the way JSON.stringify does (key
// order kept, no spaces, minimal escaping), dropping the two signature keys
// from the top-level headers object.
func jsCompact(d *json.Decoder, out *bytes.Buffer, path string) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			out.WriteByte('[')
			for i := 0; d.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := jsCompact(d, out, path+"/[]"); err != nil {
					return err
				}
			}
			d.Token()
			out.WriteByte(']')
			return nil
		}
		out.WriteByte('{')
		first := true
		for d.More() {
			kt, err := d.Token()
			if err != nil {
				return err
			}
			k := kt.(string)
			if path == "/headers" && (k == "X-Port-Signature" || k == "X-Port-Timestamp") {
				if err := jsCompact(d, &bytes.Buffer{}, ""); err != nil {
					return err
				}
				continue
			}
			if !first {
				out.WriteByte(',')
			}
			first = false
			jsString(out, k)
			out.WriteByte(':')
			if err := jsCompact(d, out, path+"/"+k); err != nil {
				return err
			}
		}
		d.Token()
		out.WriteByte('}')
	case string:
		jsString(out, v)
	case json.Number:
		out.WriteString(v.String())
	case bool:
		fmt.Fprint(out, v)
	case nil:
		out.WriteString("null")
	}
	return nil
}

func jsString(out *bytes.Buffer, s string) {
	out.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			out.WriteString(`\"`)
		case r == '\\':
			out.WriteString(`\\`)
		case r == '\b':
			out.WriteString(`\b`)
		case r == '\f':
			out.WriteString(`\f`)
		case r == '\n':
			out.WriteString(`\n`)
		case r == '\r':
			out.WriteString(`\r`)
		case r == '\t':
			out.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(out, `\u%04x`, r)
		default:
			var b [utf8.UTFMax]byte
			out.Write(b[:utf8.EncodeRune(b[:], r)])
		}
	}
	out.WriteByte('"')
}

func topKeys(t *testing.T, msg []byte) []string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(msg))
	if tok, _ := d.Token(); tok != json.Delim('{') {
		t.Fatal("not an object")
	}
	var keys []string
	for d.More() {
		k, _ := d.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
