package runmsg

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// Client-side secret inputs (README "Secret inputs"): Port's browser encrypts the value with
// a random AES-256 key (AES-256-GCM, 12-byte IV, no additional data) and wraps that key with
// the RSA public key the input's schema names ("encryption": {"algorithm": "client-side",
// "key": "<PEM>"}), RSA-OAEP with SHA-256 (MGF1-SHA-256, no label). The value is
// base64(iv (12) | wrapped key (the RSA modulus' size) | ciphertext | tag (16)). Port never
// holds the private key: the agent reads it from a file. Errors never contain the value.

// ClientSideAlgorithm is the encryption.algorithm of a client-side secret input.
const ClientSideAlgorithm = "client-side"

const clientSideIVSize = 12

// ErrNoMatchingKey: no configured private key belongs to the input's public key, or none
// unwraps the value.
var ErrNoMatchingKey = errors.New("no key of security.clientSideKeyFiles fits this input")

// DecryptClientSide returns the plaintext of one client-side encrypted value. publicKeyPEM is
// the key the input's schema names ("" when the message does not say): it picks the private
// key; without it each key is tried.
func DecryptClientSide(keys []*rsa.PrivateKey, publicKeyPEM, value string) ([]byte, error) {
	raw, err := decodeSecretValue(value)
	if err != nil {
		return nil, err
	}
	candidates := keys
	if publicKeyPEM != "" {
		pub, err := ParsePublicKeyPEM(publicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("the input's public key: %w", err)
		}
		candidates = nil
		for _, k := range keys {
			if k.PublicKey.Equal(pub) {
				candidates = append(candidates, k)
			}
		}
		if len(candidates) == 0 {
			return nil, fmt.Errorf("%w: none is the private key of the input's public key", ErrNoMatchingKey)
		}
	}
	var short error
	for _, k := range candidates {
		n := k.Size()
		if len(raw) < clientSideIVSize+n+secretTagSize {
			short = fmt.Errorf("%d bytes, shorter than iv, a %d-bit wrapped key and tag", len(raw), n*8)
			continue
		}
		aesKey, err := rsa.DecryptOAEP(sha256.New(), nil, k, raw[clientSideIVSize:clientSideIVSize+n], nil)
		if err != nil {
			continue // another key's, or altered
		}
		return openClientSide(aesKey, raw[:clientSideIVSize], raw[clientSideIVSize+n:])
	}
	if short != nil && len(candidates) == 1 {
		return nil, short
	}
	return nil, fmt.Errorf("%w: the wrapped key does not unwrap with any (wrong key or altered value)", ErrNoMatchingKey)
}

func openClientSide(aesKey, iv, sealed []byte) ([]byte, error) {
	if len(aesKey) != secretKeySize {
		return nil, fmt.Errorf("the wrapped key is %d bytes, not an AES-256 key", len(aesKey))
	}
	g, err := aesGCM(aesKey, clientSideIVSize)
	if err != nil {
		return nil, err
	}
	plain, err := g.Open([]byte{}, iv, sealed, nil)
	if err != nil {
		return nil, errors.New("authentication failed: altered value")
	}
	return plain, nil
}

// EncryptClientSide is the browser's side (for the emulator and tests): a random AES key and
// IV per value.
func EncryptClientSide(pub *rsa.PublicKey, plaintext []byte) (string, error) {
	aesKey := make([]byte, secretKeySize)
	iv := make([]byte, clientSideIVSize)
	for _, b := range [][]byte{aesKey, iv} {
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			return "", err
		}
	}
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, aesKey, nil)
	if err != nil {
		return "", fmt.Errorf("wrap the key: %w", err)
	}
	g, err := aesGCM(aesKey, clientSideIVSize)
	if err != nil {
		return "", err
	}
	out := append(append(iv, wrapped...), g.Seal(nil, iv, plaintext, nil)...)
	return base64.StdEncoding.EncodeToString(out), nil
}

// ParsePublicKeyPEM reads the RSA public key of a client-side input's schema: PEM "PUBLIC
// KEY" (SubjectPublicKeyInfo), as Port's docs require, or "RSA PUBLIC KEY" (PKCS #1).
func ParsePublicKeyPEM(s string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	if block.Type == "RSA PUBLIC KEY" {
		return x509.ParsePKCS1PublicKey(block.Bytes)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an RSA key", k)
	}
	return pub, nil
}

// PublicKeyPEM is pub as Port's schema carries it: PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
func PublicKeyPEM(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
