package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/port-runner/port-runner/internal/echo"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// secretInput is how one input arrived encrypted: its schema's type, and its algorithm
// (runmsg.SecretAlgorithm, runmsg.ClientSideAlgorithm, or "" when only the action's
// secretInputs names it) with a client-side input's public key.
type secretInput struct {
	typ, algorithm, publicKey string
}

// secretInputs are the run's inputs to decrypt: the action's secretInputs and every input
// the message's action schema marks with an "encryption".
func (a *action) secretInputs(run runmsg.Run) map[string]secretInput {
	var names map[string]secretInput // made for the first: most runs have none
	add := func(n string, in secretInput) {
		if names == nil {
			names = map[string]secretInput{}
		}
		names[n] = in
	}
	for _, n := range a.cfg.SecretInputs {
		add(n, secretInput{})
	}
	msg := run.Context["message"]
	for _, schema := range []any{
		runmsg.Lookup(msg, "payload", "action", "userInputs", "properties"),
		runmsg.Lookup(msg, "payload", "payload", "action", "userInputs", "properties"), // the seed's DAY-2 envelope
	} {
		props, _ := schema.(map[string]any)
		for n, p := range props {
			typ, _ := runmsg.Lookup(p, "type").(string)
			enc := runmsg.Lookup(p, "encryption")
			switch {
			case enc == runmsg.SecretAlgorithm:
				add(n, secretInput{typ: typ, algorithm: runmsg.SecretAlgorithm})
			case runmsg.Lookup(enc, "algorithm") == runmsg.ClientSideAlgorithm:
				key, _ := runmsg.Lookup(enc, "key").(string)
				add(n, secretInput{typ: typ, algorithm: runmsg.ClientSideAlgorithm, publicKey: key})
			}
		}
	}
	return names
}

// decrypt opens one encrypted value as its schema says; an input only secretInputs names is
// tried as Port-managed (port.clientSecret), then as client-side with each key.
func (a *action) decrypt(in secretInput, value string) ([]byte, error) {
	switch in.algorithm {
	case runmsg.SecretAlgorithm:
		b, err := runmsg.DecryptSecret(a.secretKey, value)
		if err != nil {
			return nil, fmt.Errorf("cannot be decrypted with port.clientSecret: %w", err)
		}
		return b, nil
	case runmsg.ClientSideAlgorithm:
		b, err := runmsg.DecryptClientSide(a.keys, in.publicKey, value)
		if err != nil {
			return nil, fmt.Errorf("cannot be decrypted with security.clientSideKeyFiles (client-side): %w", err)
		}
		return b, nil
	}
	b, err := runmsg.DecryptSecret(a.secretKey, value)
	switch {
	case err == nil:
		return b, nil
	case len(a.keys) == 0:
		return nil, fmt.Errorf("cannot be decrypted with port.clientSecret: %w", err)
	}
	if b, cerr := runmsg.DecryptClientSide(a.keys, "", value); cerr == nil {
		return b, nil
	}
	return nil, fmt.Errorf("cannot be decrypted with port.clientSecret (%v) nor with security.clientSideKeyFiles", err)
}

// decryptInputs returns the run with its secret inputs decrypted in a copy of its
// properties, and the plaintexts to mask. Only the child sees them: through its env and
// $PORT_RUN_FILE. A value that does not decrypt fails the run with an error naming the
// input, never its value.
func (a *action) decryptInputs(run runmsg.Run) (runmsg.Run, []string, error) {
	names := a.secretInputs(run)
	props, _ := run.Context["properties"].(map[string]any)
	if len(names) == 0 || len(props) == 0 {
		return run, nil, nil
	}
	props = maps.Clone(props)
	var plain []string
	for _, n := range slices.Sorted(maps.Keys(names)) {
		v, ok := props[n]
		if !ok || v == nil {
			continue
		}
		enc, isString := v.(string)
		if !isString {
			return run, nil, fmt.Errorf("secret input %s is not an encrypted string", echo.Quote(n))
		}
		b, err := a.decrypt(names[n], enc)
		if err != nil {
			return run, nil, fmt.Errorf("secret input %s %w", echo.Quote(n), err)
		}
		plain = append(plain, string(b))
		var val any = string(b)
		if typ := names[n].typ; typ == "object" || typ == "array" {
			// An object secret is encrypted as its JSON text.
			if err := json.Unmarshal(b, &val); err != nil {
				return run, nil, fmt.Errorf("secret input %s: the decrypted %s is not JSON", echo.Quote(n), echo.Cut(typ))
			}
			plain = append(plain, leafValues(val)...)
		}
		props[n] = val
	}
	c := maps.Clone(run.Context)
	c["properties"] = props
	run.Context = c
	return run, plain, nil
}

// leafValues are the strings inside a decoded JSON value, and its numbers of at least
// minMaskedNumber characters as $PORT_RUN_FILE writes them: each is masked on its own. A
// boolean, or a shorter number (a count, port 80), would mask that word in every line.
func leafValues(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case float64:
		if b, err := json.Marshal(t); err == nil && len(b) >= minMaskedNumber {
			return []string{string(b)}
		}
	case map[string]any:
		var out []string
		for _, x := range t {
			out = append(out, leafValues(x)...)
		}
		return out
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, leafValues(x)...)
		}
		return out
	}
	return nil
}

// minMaskedNumber is the shortest number of an object secret that is masked (a PIN).
const minMaskedNumber = 4

// scrub replaces secrets in err's text with ***.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, s := range slices.SortedFunc(slices.Values(secrets), func(a, b string) int { return len(b) - len(a) }) {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	return errors.New(msg)
}
