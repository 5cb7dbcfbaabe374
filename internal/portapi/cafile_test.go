package portapi

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCAFileTrustsACorporateCA: a Port API behind a TLS-inspecting proxy presents a
// certificate of the company's CA; with Options.CAFile naming that CA the client trusts it,
// without it the same server is refused.
func TestCAFileTrustsACorporateCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"accessToken":"tok-tls","expiresIn":10800}`))
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "corp-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := New(Options{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret", CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if tok, err := c.Token(ctx); err != nil || tok != "tok-tls" {
		t.Fatalf("with caFile: token %q, %v", tok, err)
	}

	plain, err := New(Options{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret", BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if _, err := plain.Token(ctx2); err == nil {
		t.Fatal("without caFile the server's certificate was trusted")
	}
}

func TestCAFileErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "missing.pem"), junk} {
		_, err := New(Options{BaseURL: "https://api.getport.io", ClientID: "id", ClientSecret: "secret", CAFile: f})
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("CAFile %s: New = %v, want an error naming the file", f, err)
		}
	}
}
