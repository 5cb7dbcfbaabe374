package httpserve

import (
	"context"
	"io"
	"net/http"
	"testing"
)

func TestServeUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, wait, err := Serve(ctx, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Fatalf("body %q", body)
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("wait after cancel: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("second wait: %v", err)
	}
	if _, err := http.Get("http://" + addr); err == nil {
		t.Fatal("still serving after ctx ended")
	}
}

func TestServeBadAddress(t *testing.T) {
	if _, _, err := Serve(context.Background(), "not-an-address", http.NotFoundHandler()); err == nil {
		t.Fatal("listening on a bad address succeeded")
	}
}
