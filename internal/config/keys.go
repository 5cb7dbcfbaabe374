package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// minClientSideKeyBits is the smallest RSA key Port's docs allow for client-side encryption.
const minClientSideKeyBits = 2048

// ClientSideKeys reads security.clientSideKeyFiles: PEM RSA private keys, PKCS #8 ("PRIVATE
// KEY") or PKCS #1 ("RSA PRIVATE KEY"), of at least 2048 bits. Errors name the file, never
// its content.
func (s Security) ClientSideKeys() ([]*rsa.PrivateKey, error) {
	keys := make([]*rsa.PrivateKey, 0, len(s.ClientSideKeyFiles))
	for i, f := range s.ClientSideKeyFiles {
		k, err := readPrivateKey(f)
		if err != nil {
			return nil, fmt.Errorf("security.clientSideKeyFiles[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func readPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var k any
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: a PEM %q block, want PRIVATE KEY or RSA PRIVATE KEY (an encrypted key must be decrypted first)", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", path)
	}
	if rk.N.BitLen() < minClientSideKeyBits {
		return nil, fmt.Errorf("%s: a %d-bit key; client-side encryption needs at least %d", path, rk.N.BitLen(), minClientSideKeyBits)
	}
	return rk, nil // the x509 parsers have validated it (rsa.PrivateKey.Validate)
}
