package secretinput

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

type vectors struct {
	ClientSecret string `json:"clientSecret"`
	Valid        []struct{ Name, Plaintext, Encrypted string }
	Invalid      []struct{ Name, Encrypted string }
}

// testdata/vectors.json comes from testdata/make_vectors.py (Python's cryptography), so a
// mistake shared by Encrypt and Decrypt cannot hide here.
func readVectors(t testing.TB) vectors {
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func TestDecryptIndependentVectors(t *testing.T) {
	v := readVectors(t)
	for _, c := range v.Valid {
		got, err := Decrypt(v.ClientSecret, c.Encrypted)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if string(got) != c.Plaintext {
			t.Errorf("%s: got %q, want %q", c.Name, got, c.Plaintext)
		}
	}
	for _, c := range v.Invalid {
		got, err := Decrypt(v.ClientSecret, c.Encrypted)
		if err == nil {
			t.Errorf("%s: decrypted to %q, want an error", c.Name, got)
			continue
		}
		if strings.Contains(err.Error(), c.Encrypted) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q carries the value", c.Name, err)
		}
	}
}

func TestEncryptRoundTripAndFreshIV(t *testing.T) {
	v := readVectors(t)
	a, err := Encrypt(v.ClientSecret, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Encrypt(v.ClientSecret, []byte("x"))
	if a == b {
		t.Fatal("two encryptions of one value are equal: the IV is not random")
	}
	got, err := Decrypt(v.ClientSecret, a)
	if err != nil || string(got) != "x" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	// Only the first 32 bytes are the key: a longer secret with the same prefix decrypts it.
	if got, err := Decrypt(v.ClientSecret[:32]+"other-tail", a); err != nil || string(got) != "x" {
		t.Fatalf("key is not the first 32 bytes: %q, %v", got, err)
	}
}

func TestShortKey(t *testing.T) {
	if _, err := Decrypt("short", "AAAA"); err == nil {
		t.Fatal("want an error")
	}
	if _, err := Encrypt("short", []byte("x")); err != ErrShortKey {
		t.Fatalf("got %v, want ErrShortKey", err)
	}
}

// FuzzDecrypt: untrusted bytes from a message never panic, and an error never echoes them.
func FuzzDecrypt(f *testing.F) {
	v := readVectors(f)
	for _, c := range v.Valid {
		f.Add(c.Encrypted)
	}
	for _, c := range v.Invalid {
		f.Add(c.Encrypted)
	}
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		_, err := Decrypt(v.ClientSecret, value)
		if err != nil && len(value) > 8 && strings.Contains(err.Error(), value) {
			t.Fatalf("error %q echoes the value", err)
		}
	})
}
