package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/runmsg"
	"github.com/port-runner/port-runner/metrics"
	"github.com/port-runner/port-runner/test/harness/vectors"
)

// The Port organization an Env emulates. Secret signs its runs and keys their secret inputs:
// the shared message vectors' own, so the vectors are runs of this organization too.
const (
	ClientID = "test-client"
	Secret   = vectors.Secret
	OrgID    = "org_test"
)

// Env is one test's world: a topic and a consumer group of its own on a broker, and Port's
// API emulator serving over HTTP on loopback.
type Env struct {
	Broker *Broker
	Topic  string
	Group  string
	Emu    *emulator.Emulator
	Port   *emulator.Server // Refuse and Accept make Port unreachable and back
	// Metrics is the registry the agents Start runs share, unless given their own.
	Metrics *metrics.Metrics
	// ClientSecret is the emulator's client secret: Secret unless WithPort changed it.
	ClientSecret string
}

// Option changes how New sets an Env up.
type Option func(*envOptions)

type envOptions struct {
	broker *Broker
	port   []func(*emulator.Options)
}

// WithBroker puts the Env on b instead of a broker of its own (NewBroker).
func WithBroker(b *Broker) Option { return func(o *envOptions) { o.broker = b } }

// WithPort changes the emulator's options (budget, token lifetime, credentials, ...).
func WithPort(tune func(*emulator.Options)) Option {
	return func(o *envOptions) { o.port = append(o.port, tune) }
}

// New sets up an Env whose topic has the given number of partitions; everything it starts
// stops when the test ends.
func New(t testing.TB, partitions int, opts ...Option) *Env {
	t.Helper()
	var o envOptions
	for _, opt := range opts {
		opt(&o)
	}
	e := &Env{Broker: o.broker, Metrics: metrics.New()}
	if e.Broker == nil {
		e.Broker = NewBroker(t)
	}
	t.Cleanup(e.Broker.closeProducer) // the emulator's, on a broker New did not start
	e.Topic = e.Broker.Topic(t, partitions)
	e.Group = e.Broker.Group(t)
	po := emulator.Options{ClientID: ClientID, ClientSecret: Secret, OrgID: OrgID, Topic: e.Topic,
		Produce: e.Broker.ProduceContext}
	for _, tune := range o.port {
		tune(&po)
	}
	e.ClientSecret = po.ClientSecret
	e.Emu = emulator.New(po)
	e.Port = Serve(t, e.Emu)
	return e
}

// Serve serves Port's emulator on a loopback port until the test ends.
func Serve(t testing.TB, emu *emulator.Emulator) *emulator.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := emu.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatalf("harness: serving the emulator: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := srv.Wait(); err != nil {
			t.Errorf("harness: the emulator stopped with %v", err)
		}
	})
	return srv
}

// PortURL is the emulator's base URL (port.baseURL).
func (e *Env) PortURL() string { return e.Port.URL() }

// RunMessage is the message of a run of action without inputs.
func RunMessage(id, action string) string {
	return fmt.Sprintf(`{"action":%q,"context":{"runId":%q},"payload":{"properties":{}}}`, action, id)
}

// Sign signs a run message as Port does, now.
func (e *Env) Sign(t testing.TB, body string) []byte {
	t.Helper()
	return e.SignAt(t, time.Now(), body)
}

// SignAt signs a run message as Port does at the given time.
func (e *Env) SignAt(t testing.TB, at time.Time, body string) []byte {
	t.Helper()
	b, err := runmsg.Sign(e.ClientSecret, at.Unix(), []byte(body))
	if err != nil {
		t.Fatalf("harness: signing %s: %v", body, err)
	}
	return b
}

// Produce puts one record on the Env's topic.
func (e *Env) Produce(t testing.TB, key, value []byte) {
	t.Helper()
	e.Broker.Produce(t, e.Topic, key, value)
}

// ProduceRun puts the signed message of a run of action on the topic, keyed by its id. Port
// knows the run only if it was registered (NewRun does both).
func (e *Env) ProduceRun(t testing.TB, id, action string) {
	t.Helper()
	e.Produce(t, []byte(id), e.Sign(t, RunMessage(id, action)))
}

// NewRun is what Port does when a user triggers action: it registers the run, then produces
// its message.
func (e *Env) NewRun(t testing.TB, id, action string) {
	t.Helper()
	e.Emu.RegisterRun(id, action)
	e.ProduceRun(t, id, action)
}

// Script writes an executable /bin/sh script of body into a temporary directory and returns
// its path.
func Script(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
