// Package secretinput decrypts Port's secret user inputs. Port encrypts an input whose
// schema says "encryption": "aes256-gcm" with AES-256-GCM under the first 32 bytes of the
// organization's client secret and sends base64(iv (16 bytes) | ciphertext | tag (16 bytes)).
// Errors never contain the value, encrypted or not: callers put them in labels and logs.
package secretinput

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Algorithm is the "encryption" value Port writes on a secret input's schema.
const Algorithm = "aes256-gcm"

const (
	keySize   = 32
	ivSize    = 16 // Port's choice; GCM's usual nonce is 12 bytes
	tagSize   = 16
	maxBase64 = 1 << 20 // a message is at most 1 MiB; this only guards memory
)

// ErrShortKey: the client secret has fewer than 32 bytes, so it cannot be Port's key.
var ErrShortKey = errors.New("the client secret is shorter than the 32 bytes of an AES-256 key")

func aead(clientSecret string) (cipher.AEAD, error) {
	if len(clientSecret) < keySize {
		return nil, ErrShortKey
	}
	block, err := aes.NewCipher([]byte(clientSecret[:keySize]))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithNonceSize(block, ivSize)
}

// Decrypt returns the plaintext of one encrypted value.
func Decrypt(clientSecret, value string) ([]byte, error) {
	if len(value) > maxBase64 {
		return nil, errors.New("value too large")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		// base64's error names a byte offset, never the input's text.
		return nil, fmt.Errorf("not base64: %w", err)
	}
	if len(raw) < ivSize+tagSize {
		return nil, fmt.Errorf("%d bytes, shorter than iv and tag (%d)", len(raw), ivSize+tagSize)
	}
	g, err := aead(clientSecret)
	if err != nil {
		return nil, err
	}
	plain, err := g.Open(nil, raw[:ivSize], raw[ivSize:], nil)
	if err != nil {
		return nil, errors.New("authentication failed: wrong key or altered value")
	}
	return plain, nil
}

// Encrypt is Port's side (for the emulator and tests): a random IV per value.
func Encrypt(clientSecret string, plaintext []byte) (string, error) {
	g, err := aead(clientSecret)
	if err != nil {
		return "", err
	}
	iv := make([]byte, ivSize)
	if _, err := io.ReadFull(rand.Reader, iv); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(g.Seal(iv, iv, plaintext, nil)), nil
}
