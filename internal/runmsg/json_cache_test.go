package runmsg

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sameActionSeeds are runs of one action whose action objects are the same text, differ in a
// byte, begin alike, or are written otherwise (spaces, an escape, a repeated key, deeper): only
// the same text may decode to the same value (the fuzz targets start from them too).
var sameActionSeeds = func() []string {
	const act = `{"identifier":"deploy","title":"Deploy","invocationMethod":{"type":"KAFKA"},"n":1}`
	msg := func(id, action string) string {
		return `{"action":"deploy","context":{"runId":"` + id + `"},"payload":{"action":` + action + `,"properties":{}}}`
	}
	return []string{
		msg("r_1", act),
		msg("r_2", act),
		msg("r_3", strings.Replace(act, `"Deploy"`, `"Deplox"`, 1)),
		msg("r_4", strings.Replace(act, `"n":1}`, `"n":10}`, 1)),
		msg("r_5", strings.Replace(act, `"n":1}`, `"n":1,"m":2}`, 1)),
		msg("r_6", strings.Replace(act, `{"identifier"`, `{ "identifier"`, 1)),
		msg("r_7", strings.Replace(act, `"Deploy"`, `"Dep\u006coy"`, 1)),
		msg("r_8", strings.Replace(act, `"n":1}`, `"n":1,"n":2}`, 1)),
		`{"action":"deploy","context":{"runId":"r_9"},"payload":{"payload":{"action":` + act + `}}}`,
		`{"action":` + act + `,"context":{"runId":"r_10"}}`,
		msg("r_11", act) + ` `,
	}
}()

// A warm Decoder gives each run what a Decoder that never saw the action gives: the same
// context and run file; two runs share the action object only when its text is the same.
func TestActionObjectsShareOnlyTheSameText(t *testing.T) {
	warm := mustDecoder(t, Options{})
	actions := map[string]map[string]any{} // the action object's text -> its value in a run
	for _, round := range []int{1, 2} {
		for _, raw := range sameActionSeeds {
			got, err := warm.Decode([]byte(raw))
			if err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			want, err := mustDecoder(t, Options{}).Decode([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Context, want.Context) {
				t.Fatalf("round %d, %s:\n warm %#v\n cold %#v", round, raw, got.Context, want.Context)
			}
			gjs, _ := got.ContextJSON()
			wjs, _ := want.ContextJSON()
			if ojs, _ := contextJSONOracle(want.Context); !bytes.Equal(gjs, wjs) || !bytes.Equal(gjs, ojs) {
				t.Fatalf("round %d, %s: run file\n warm   %s\n cold   %s\n oracle %s", round, raw, gjs, wjs, ojs)
			}
			act, _ := Lookup(got.Context["message"], "payload", "action").(map[string]any)
			if act == nil {
				continue
			}
			text := raw[strings.Index(raw, `"payload":{"action":`)+len(`"payload":{"action":`):]
			text = text[:strings.Index(text, `,"properties"`)]
			if seen, ok := actions[text]; ok && reflect.ValueOf(seen).UnsafePointer() != reflect.ValueOf(act).UnsafePointer() {
				t.Errorf("round %d, %s: the same action text decoded to another object", round, raw)
			}
			for other, v := range actions {
				if other != text && reflect.ValueOf(v).UnsafePointer() == reflect.ValueOf(act).UnsafePointer() {
					t.Errorf("%s shares its action object with the text %s", text, other)
				}
			}
			actions[text] = act
		}
	}
}

// Every run of one action decodes without its action object's maps and strings: a real
// message, decoded again, allocates at most 40 times (69 when each run built them).
func TestDecodingAnActionAgainAllocatesLess(t *testing.T) {
	raw := readVector(t, "create_microservice.signed.json")
	d := mustDecoder(t, Options{})
	got := testing.AllocsPerRun(50, func() {
		if _, err := d.Decode(raw); err != nil {
			t.Fatal(err)
		}
	})
	if got > 40 {
		t.Fatalf("decoding a run of an action seen before allocates %.0f times, want at most 40", got)
	}
}

// The cache holds at most maxCachedObjects, none larger than maxCachedObjectBytes.
func TestObjectCacheIsBounded(t *testing.T) {
	d := mustDecoder(t, Options{})
	for i := range 3 * maxCachedObjects {
		act := `{"identifier":"a` + strings.Repeat("x", i) + `"}`
		if i == 0 {
			act = `{"big":"` + strings.Repeat("x", maxCachedObjectBytes) + `"}`
		}
		raw := `{"action":"a","context":{"runId":"r"},"payload":{"action":` + act + `}}`
		if _, err := d.Decode([]byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(d.actions.entries); n != maxCachedObjects {
		t.Fatalf("the cache holds %d objects, want %d", n, maxCachedObjects)
	}
	for _, e := range d.actions.entries {
		if len(e.text) > maxCachedObjectBytes {
			t.Fatalf("the cache holds an object of %d bytes", len(e.text))
		}
	}
}

// Only a message's action definition (payload.action, or the DAY-2 envelope's) is cached: an
// object that is new in each run under another key "action" (a user input or an entity
// property of that name) is not kept, and does not evict the definition: each would be parsed
// twice and copied (131 allocations a decode of the vector instead of 72 without the cache).
func TestOnlyThePayloadsActionIsCached(t *testing.T) {
	raw := readVector(t, "create_microservice.signed.json")
	d := mustDecoder(t, Options{})
	for i := range 2 * maxCachedObjects {
		at := bytes.LastIndex(raw, []byte(`"properties":{"name"`)) // payload.properties
		if at < 0 {
			t.Fatal("the vector's properties moved")
		}
		input := `"properties":{"action":{"n":"` + strconv.Itoa(i) + `"},`
		msg := append(append(append([]byte(nil), raw[:at]...), input...), raw[at+len(`"properties":{`):]...)
		if _, err := d.Decode(msg); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(d.actions.entries); n != 1 {
		t.Fatalf("the cache holds %d objects after runs whose only common action object is payload.action, want 1", n)
	}
	day2 := `{"payload":{"context":{"runId":"r_1"},"action":"x","payload":{"action":{"identifier":"x"}}}}`
	if _, err := d.Decode([]byte(day2)); err != nil {
		t.Fatal(err)
	}
	if n := len(d.actions.entries); n != 2 {
		t.Fatalf("the DAY-2 envelope's action object was not cached (%d objects)", n)
	}
}

// An organization rotating through more actions than the cache holds keeps the ones it has:
// the others are parsed once, as without the cache, not parsed twice and encoded to replace
// an entry the next run needs (131 allocations a decode of the vector instead of 72). An
// entry no run used in idleLookups lookups (an action since edited) makes room.
func TestManyActionsInRotationDoNotChurnTheCache(t *testing.T) {
	d := mustDecoder(t, Options{})
	msg := func(i int) []byte {
		act := `{"identifier":"a` + strconv.Itoa(i) + `","title":"Action","invocationMethod":{"type":"KAFKA"}}`
		return []byte(`{"action":"a","context":{"runId":"r"},"payload":{"action":` + act + `}}`)
	}
	decode := func(i int) {
		if _, err := d.Decode(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range maxCachedObjects {
		decode(i)
	}
	first := slices.Clone(d.actions.entries)
	for range 3 {
		for i := range 3 * maxCachedObjects {
			decode(i)
		}
	}
	if !slices.Equal(d.actions.entries, first) {
		t.Fatalf("over three rounds of %d actions the cache replaced some of the first %d, want them kept",
			3*maxCachedObjects, maxCachedObjects)
	}
	for range idleLookups {
		decode(0)
	}
	decode(3 * maxCachedObjects)
	var replaced []*cachedObject
	for i, e := range d.actions.entries {
		if e != first[i] {
			replaced = append(replaced, e)
		}
	}
	if len(replaced) != 1 || !strings.Contains(replaced[0].text, `"a`+strconv.Itoa(3*maxCachedObjects)+`"`) {
		t.Fatalf("a new action after %d lookups of one other replaced %d entries, want it in one", idleLookups, len(replaced))
	}
}
