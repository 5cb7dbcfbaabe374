package portproxy

import (
	"context"
	"testing"
)

type nopMasker struct{}

func (*nopMasker) Mask(v any) any { return v }

// BenchmarkQuietRunToken is what the proxy costs a run that never calls it: its token,
// its masking and the token's end.
func BenchmarkQuietRunToken(b *testing.B) {
	p := New(func(context.Context, Request) (Response, error) { return Response{}, nil }, Options{})
	m := &nopMasker{}
	b.ReportAllocs()
	for b.Loop() {
		token, revoke := p.Register("r_bench", "deploy", "svc", nil)
		p.SetMask(token, m)
		p.Bind(token, 1)
		revoke()
	}
}

// A run's requests share what its first request makes; a run that makes none costs none of
// it, and a request that found the token just before its revoke finds its run ended.
func TestLiveStateMadeByFirstRequest(t *testing.T) {
	p := New(func(context.Context, Request) (Response, error) { return Response{}, nil }, Options{})
	token, revoke := p.Register("r_1", "deploy", "svc", nil)
	g := p.lookup(token)
	p.SetMask(token, &nopMasker{})
	p.Bind(token, 1)
	if g.live != nil {
		t.Fatal("a run that made no request has its requests' state")
	}
	revoke()
	if p.serving(g).ctx.Err() == nil {
		t.Fatal("a request of a revoked run would go on")
	}
	revoke() // again: nothing more
	if p.Tokens() != 0 {
		t.Fatalf("%d tokens after revoke", p.Tokens())
	}
}
