package runmsg

import (
	"strings"
	"testing"
)

// maxErrorBytes bounds a decode error's text whatever the message holds: an error quotes
// at most a short prefix of a value (a 1 MB X-Port-Timestamp made a 1 MB warn line).
const maxErrorBytes = 512

func TestDecodeErrorsEchoAShortPrefix(t *testing.T) {
	big := strings.Repeat("7", 900<<10)
	verifying := mustDecoder(t, Options{Secret: vectorSecret, VerifySignature: true})
	trusting := mustDecoder(t, Options{})
	for name, c := range map[string]struct {
		d   *Decoder
		raw []byte
	}{
		"timestamp not an integer":  {verifying, []byte(`{"action":"a","context":{"runId":"r"},"headers":{"X-Port-Signature":"v1,x","X-Port-Timestamp":"` + big + `x"}}`)},
		"timestamp too long":        {verifying, []byte(`{"action":"a","context":{"runId":"r"},"headers":{"X-Port-Signature":"v1,x","X-Port-Timestamp":` + big + `}}`)},
		"signed timestamp too long": {verifying, signText(big, `{"action":"a","context":{"runId":"r"}}`)},
		"bad token after a value":   {trusting, []byte(`{"a":1 "` + big + `"}`)},
		"bad token in an array":     {trusting, []byte(`["` + big + `" "` + big + `"]`)},
		"run id":                    {trusting, []byte(`{"action":"a","context":{"runId":"` + big + `"}}`)},
		"action":                    {trusting, []byte(`{"action":` + big + `,"context":{"runId":"r"}}`)},
	} {
		_, err := c.d.Decode(c.raw)
		if err == nil {
			t.Errorf("%s: decoded", name)
			continue
		}
		if n := len(err.Error()); n > maxErrorBytes {
			t.Errorf("%s: error of %d bytes: %.200s...", name, n, err)
		}
	}
}
