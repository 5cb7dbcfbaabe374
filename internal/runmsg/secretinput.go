// Port-managed secret inputs (README "Secret inputs"). Port encrypts an input whose
// schema says "encryption": "aes256-gcm" with AES-256-GCM under the first 32 bytes of the
// organization's client secret and sends base64(iv (16 bytes) | ciphertext | tag (16 bytes)).
// Errors never contain the value, encrypted or not: callers put them in labels and logs.

package runmsg

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

// SecretAlgorithm is the "encryption" value Port writes on a secret input's schema.
const SecretAlgorithm = "aes256-gcm"

const (
	secretKeySize   = 32
	secretIVSize    = 16 // Port's choice; GCM's usual nonce is 12 bytes
	secretTagSize   = 16
	secretMaxBase64 = 1 << 20 // a message is at most 1 MiB; this only guards memory
)

// ErrShortSecretKey: the client secret has fewer than 32 bytes, so it cannot be Port's key.
var ErrShortSecretKey = errors.New("the client secret is shorter than the 32 bytes of an AES-256 key")

func secretAEAD(clientSecret string) (cipher.AEAD, error) {
	if len(clientSecret) < secretKeySize {
		return nil, ErrShortSecretKey
	}
	return aesGCM([]byte(clientSecret[:secretKeySize]), secretIVSize)
}

// aesGCM is AES-GCM under key with nonces of nonceSize bytes: Port-managed inputs use 16,
// client-side ones GCM's usual 12.
func aesGCM(key []byte, nonceSize int) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithNonceSize(block, nonceSize)
}

// decodeSecretValue is the bytes of an encrypted value as the message carries it (base64),
// either kind of secret input.
func decodeSecretValue(value string) ([]byte, error) {
	if len(value) > secretMaxBase64 {
		return nil, errors.New("value too large")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		// base64's error names a byte offset, never the input's text.
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return raw, nil
}

// DecryptSecret returns the plaintext of one encrypted value.
func DecryptSecret(clientSecret, value string) ([]byte, error) {
	raw, err := decodeSecretValue(value)
	if err != nil {
		return nil, err
	}
	if len(raw) < secretIVSize+secretTagSize {
		return nil, fmt.Errorf("%d bytes, shorter than iv and tag (%d)", len(raw), secretIVSize+secretTagSize)
	}
	g, err := secretAEAD(clientSecret)
	if err != nil {
		return nil, err
	}
	plain, err := g.Open(nil, raw[:secretIVSize], raw[secretIVSize:], nil)
	if err != nil {
		return nil, errors.New("authentication failed: wrong key or altered value")
	}
	return plain, nil
}

// EncryptSecret is Port's side (for the emulator and tests): a random IV per value.
func EncryptSecret(clientSecret string, plaintext []byte) (string, error) {
	g, err := secretAEAD(clientSecret)
	if err != nil {
		return "", err
	}
	iv := make([]byte, secretIVSize)
	if _, err := io.ReadFull(rand.Reader, iv); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(g.Seal(iv, iv, plaintext, nil)), nil
}
