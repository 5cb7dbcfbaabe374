package runmsg

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

type secretVectors struct {
	ClientSecret string `json:"clientSecret"`
	Valid        []struct{ Name, Plaintext, Encrypted string }
	Invalid      []struct{ Name, Encrypted string }
}

// testdata/secretinput/vectors.json comes from testdata/make_vectors.py (Python's cryptography), so a
// mistake shared by Encrypt and Decrypt cannot hide here.
func readSecretVectors(t testing.TB) secretVectors {
	raw, err := os.ReadFile("testdata/secretinput/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v secretVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 {
		t.Fatal("no secretVectors")
	}
	return v
}

func TestDecryptSecretIndependentVectors(t *testing.T) {
	v := readSecretVectors(t)
	for _, c := range v.Valid {
		got, err := DecryptSecret(v.ClientSecret, c.Encrypted)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if string(got) != c.Plaintext {
			t.Errorf("%s: got %q, want %q", c.Name, got, c.Plaintext)
		}
	}
	for _, c := range v.Invalid {
		got, err := DecryptSecret(v.ClientSecret, c.Encrypted)
		if err == nil {
			t.Errorf("%s: decrypted to %q, want an error", c.Name, got)
			continue
		}
		if strings.Contains(err.Error(), c.Encrypted) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q carries the value", c.Name, err)
		}
	}
}

func TestEncryptSecretRoundTripAndFreshIV(t *testing.T) {
	v := readSecretVectors(t)
	a, err := EncryptSecret(v.ClientSecret, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := EncryptSecret(v.ClientSecret, []byte("x"))
	if a == b {
		t.Fatal("two encryptions of one value are equal: the IV is not random")
	}
	got, err := DecryptSecret(v.ClientSecret, a)
	if err != nil || string(got) != "x" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	// Only the first 32 bytes are the key: a longer secret with the same prefix decrypts it.
	if got, err := DecryptSecret(v.ClientSecret[:32]+"other-tail", a); err != nil || string(got) != "x" {
		t.Fatalf("key is not the first 32 bytes: %q, %v", got, err)
	}
}

func TestSecretShortKey(t *testing.T) {
	if _, err := DecryptSecret("short", "AAAA"); err == nil {
		t.Fatal("want an error")
	}
	if _, err := EncryptSecret("short", []byte("x")); err != ErrShortSecretKey {
		t.Fatalf("got %v, want ErrShortSecretKey", err)
	}
}

// FuzzDecryptSecret: untrusted bytes from a message never panic, and an error never echoes them.
func FuzzDecryptSecret(f *testing.F) {
	v := readSecretVectors(f)
	for _, c := range v.Valid {
		f.Add(c.Encrypted)
	}
	for _, c := range v.Invalid {
		f.Add(c.Encrypted)
	}
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		_, err := DecryptSecret(v.ClientSecret, value)
		if err != nil && len(value) > 8 && strings.Contains(err.Error(), value) {
			t.Fatalf("error %q echoes the value", err)
		}
	})
}
