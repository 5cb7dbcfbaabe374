package runmsg

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"github.com/port-runner/port-runner/test/harness/vectors"
)

// loadClientSide is the client-side vectors, written with Python's `cryptography` (an
// implementation independent of this package's), and their private keys.
func loadClientSide(t testing.TB) (vectors.ClientSide, []*rsa.PrivateKey) {
	t.Helper()
	v := vectors.ClientSideVectors(t)
	var keys []*rsa.PrivateKey
	for _, file := range v.KeyFiles {
		name := filepath.Base(file)
		block, _ := pem.Decode(readFileIn(t, filepath.Dir(file), name))
		if block == nil {
			t.Fatalf("%s: not PEM", name)
		}
		var k any
		var err error
		if block.Type == "RSA PRIVATE KEY" {
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		} else {
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		keys = append(keys, k.(*rsa.PrivateKey))
	}
	return v, keys
}

func TestClientSideVectors(t *testing.T) {
	v, keys := loadClientSide(t)
	for _, c := range v.Valid {
		// Chosen by the schema's public key, and found by trying each key when it is not given.
		for _, pub := range []string{c.PublicKey, ""} {
			got, err := DecryptClientSide(keys, pub, c.Encrypted)
			if err != nil || string(got) != c.Plaintext {
				t.Errorf("%s (public key given: %v): got %q, %v", c.Name, pub != "", got, err)
			}
		}
	}
	plain := v.Valid[0].Plaintext
	for _, c := range v.Invalid {
		got, err := DecryptClientSide(keys, c.PublicKey, c.Encrypted)
		if err == nil {
			t.Errorf("%s: decrypted to %q", c.Name, got)
			continue
		}
		if strings.Contains(err.Error(), plain) || (len(c.Encrypted) > 8 && strings.Contains(err.Error(), c.Encrypted[:8])) {
			t.Errorf("%s: the error carries the value: %v", c.Name, err)
		}
	}
	if _, err := DecryptClientSide(nil, "", v.Valid[0].Encrypted); err == nil {
		t.Error("decrypted with no key")
	}
}

// What EncryptClientSide (the emulator's browser) writes, the vectors' keys decrypt, and a
// public key written by PublicKeyPEM names its private key.
func TestClientSideRoundTrip(t *testing.T) {
	_, keys := loadClientSide(t)
	for _, k := range keys {
		pub, err := PublicKeyPEM(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := EncryptClientSide(&k.PublicKey, []byte("s3cr3t ✓"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecryptClientSide(keys, pub, enc); err != nil || string(got) != "s3cr3t ✓" {
			t.Fatalf("%d-bit key: %q, %v", k.Size()*8, got, err)
		}
	}
	for _, bad := range []string{"", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not pem"} {
		if _, err := ParsePublicKeyPEM(bad); err == nil {
			t.Errorf("ParsePublicKeyPEM(%q) accepted", bad)
		}
	}
}

func FuzzDecryptClientSide(f *testing.F) {
	v, keys := loadClientSide(f)
	for _, c := range v.Valid {
		f.Add(c.Encrypted, c.PublicKey)
	}
	for _, c := range v.Invalid {
		f.Add(c.Encrypted, c.PublicKey)
	}
	f.Fuzz(func(t *testing.T, value, pub string) {
		got, err := DecryptClientSide(keys, pub, value)
		if err == nil && got == nil {
			t.Fatal("nil plaintext without an error")
		}
	})
}
