package portproxy

// Masking what a command writes under its run's routes (SetMask).

import (
	"bytes"
	"encoding/json"
	"io"
)

// SetMask gives token's run the masking of its log (reporter.RunLog.Mask: every string in a
// decoded JSON value): what the command writes under its run's routes through the proxy is
// masked like its output. An unknown token is ignored.
func (p *Proxy) SetMask(token string, mask func(any) any) {
	if g := p.lookup(token); g != nil && mask != nil {
		g.mask.Store(&mask)
	}
}

// maskJSON masks every string in a JSON body, and a body that is not one JSON value as
// text (check refuses such bodies only on the log and the run itself).
func maskJSON(body []byte, mask func(any) any) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers go on as written
	var v any
	if dec.Decode(&v) != nil || dec.Decode(new(json.RawMessage)) != io.EOF {
		if s, ok := mask(string(body)).(string); ok {
			return []byte(s)
		}
		return body
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(mask(v)); err != nil {
		return body
	}
	return bytes.TrimRight(out.Bytes(), "\n")
}

// masked is s as the run's log would show it, once the agent set the run's masks: what the
// agent logs of a command's request (its path, an error quoting its URL) may hold a secret.
func (g *grant) masked(s string) string {
	if m := g.mask.Load(); m != nil {
		if out, ok := (*m)(s).(string); ok {
			return out
		}
	}
	return s
}
