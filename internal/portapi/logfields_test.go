package portapi

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"go.uber.org/zap"
)

// BenchmarkWithLogFields is what every run's context pays for its requests' log fields:
// one allocation (the value context holds the fields).
func BenchmarkWithLogFields(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		_ = WithLogFields(ctx, zap.String("action", "deploy"))
	}
}

// The fields add up along a context's parents, and a child's do not change its parent's.
func TestWithLogFieldsNested(t *testing.T) {
	parent := WithLogFields(context.Background(), zap.String("action", "deploy"))
	child := WithLogFields(parent, zap.String("step", "two"), zap.Int("n", 3))
	sibling := WithLogFields(parent, zap.String("step", "three"))
	for _, tc := range []struct {
		ctx  context.Context
		want []zap.Field
	}{
		{context.Background(), nil},
		{parent, []zap.Field{zap.String("action", "deploy")}},
		{child, []zap.Field{zap.String("action", "deploy"), zap.String("step", "two"), zap.Int("n", 3)}},
		{sibling, []zap.Field{zap.String("action", "deploy"), zap.String("step", "three")}},
	} {
		if got := logFields(tc.ctx); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("logFields = %v, want %v", got, tc.want)
		}
	}
	// The context is still its parent's otherwise: values, cancellation and its cause.
	type key struct{}
	base, cancel := context.WithCancelCause(context.WithValue(context.Background(), key{}, "v"))
	ctx := WithLogFields(base, zap.String("action", "deploy"))
	if ctx.Value(key{}) != "v" {
		t.Fatal("the parent's value is lost")
	}
	why := errors.New("why")
	cancel(why)
	if ctx.Err() != context.Canceled || context.Cause(ctx) != why {
		t.Fatalf("err %v, cause %v: want the parent's", ctx.Err(), context.Cause(ctx))
	}
}
