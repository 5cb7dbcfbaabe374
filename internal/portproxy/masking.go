package portproxy

// Masking what a command writes under its run's routes (SetMask).

import (
	"bytes"
	"encoding/json"
	"io"
)

// Masker masks every string in a decoded JSON value as a run's log does (reporter.RunLog).
type Masker interface {
	Mask(v any) any
}

// SetMask gives token's run the masking of its log: what the command writes under its run's
// routes through the proxy is masked like its output. An unknown token is ignored. (An
// interface rather than a func: the run's log is one already, and a method value would cost
// every run an allocation.)
func (p *Proxy) SetMask(token string, m Masker) {
	if g := p.lookup(token); g != nil && m != nil {
		g.mu.Lock()
		g.mask = m
		g.mu.Unlock()
	}
}

// masker is g's Masker, nil until SetMask.
func (g *grant) masker() Masker {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mask
}

// maskJSON masks every string in a JSON body, and a body that is not one JSON value as
// text (check refuses such bodies only on the log and the run itself).
func maskJSON(body []byte, m Masker) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers go on as written
	var v any
	if dec.Decode(&v) != nil || dec.Decode(new(json.RawMessage)) != io.EOF {
		if s, ok := m.Mask(string(body)).(string); ok {
			return []byte(s)
		}
		return body
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m.Mask(v)); err != nil {
		return body
	}
	return bytes.TrimRight(out.Bytes(), "\n")
}

// masked is s as the run's log would show it, once the agent set the run's masks: what the
// agent logs of a command's request (its path, an error quoting its URL) may hold a secret.
func (g *grant) masked(s string) string {
	if m := g.masker(); m != nil {
		if out, ok := m.Mask(s).(string); ok {
			return out
		}
	}
	return s
}
