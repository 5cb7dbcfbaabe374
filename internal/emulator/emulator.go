// Package emulator is an in-process stand-in for Port's REST API (the parts the
// agent uses: auth, action runs, run logs; and entity upserts, which commands
// make through the agent's proxy) plus the producer side of Port's
// Kafka runs topic. It follows Port's documented behaviour closely enough that
// the agent's real HTTP client can be tested against it, and it records every
// request and every run so tests can assert on what the agent did.
package emulator

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxBody is Port's request body limit; the agent must never exceed it.
const maxBody = 1 << 20

// Options configures an Emulator. Zero values get the defaults noted per field.
type Options struct {
	// ClientID and ClientSecret are the only credentials /v1/auth/access_token
	// accepts. ClientSecret also signs produced run messages, as in Port.
	ClientID, ClientSecret string
	// OrgID is reported in run messages; the default Topic is OrgID+".runs".
	OrgID string
	Topic string
	// TokenTTL is the access-token lifetime (expiresIn); default 3h.
	TokenTTL time.Duration
	// Budget is the number of requests the whole org may make per
	// BudgetWindow (default 5m, whole seconds, at least 1s); 0 means unlimited.
	// SetBudget changes both while the emulator runs.
	Budget       int
	BudgetWindow time.Duration
	// Produce writes a run message to Kafka. When nil, creating a run
	// answers 503 because the run could never reach an agent.
	Produce func(ctx context.Context, topic string, key, value []byte) error
	// Now is the clock (default time.Now); tests inject one to expire tokens
	// and roll budget windows without sleeping.
	Now func() time.Time
	// Logf, when set, receives one line per request.
	Logf func(format string, args ...any)
	// MaxRequests bounds how many requests Requests() keeps, oldest dropped first, so a
	// long-running standalone emulator does not grow without end; 0 keeps every one (tests).
	MaxRequests int
	// SecretInputs names, per action, the inputs its schema marks "encryption":
	// "aes256-gcm": CreateRun encrypts them in the message with ClientSecret, as Port does.
	SecretInputs map[string][]string
	// Synchronous lists the actions whose invocation method is synchronized (the caller
	// waits for PATCH .../response).
	Synchronous []string
	// KafkaCredentials, when set, is what GET /v1/kafka-credentials answers; else 404.
	KafkaCredentials *KafkaCredentials
	// Invocations names, per action, the invocation method of its runs' messages: KAFKA
	// (the default), WEBHOOK or GITLAB (both with agent: true, as Port hands them to its
	// agent). A Synchronous action's is WEBHOOK unless named here.
	Invocations map[string]string
	// ClientSideInputs names, per action, inputs encrypted client-side with the given RSA
	// public key, as Port's browser does (encryption: {algorithm: client-side, key: PEM}).
	ClientSideInputs map[string]map[string]*rsa.PublicKey
	// LogsAfterTermination accepts log lines (without terminationStatus) on a terminated run.
	// What Port answers them is not documented; by default, as for every other change, 409.
	LogsAfterTermination bool
	// Delivery is how created runs reach the agent: DeliveryKafka (default) produces their
	// messages; DeliveryPolling holds them pending for the claim-pending routes. PATCH
	// /v1/organization (settings.portAgentStreamerName) changes it, as in Port.
	Delivery string
}

// KafkaCredentials are an organization's managed-Kafka credentials.
type KafkaCredentials struct {
	Brokers            []string
	Username, Password string
}

// Emulator is a fake Port API. All methods are safe for concurrent use.
type Emulator struct {
	opts Options
	mux  *http.ServeMux

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every run change; WaitRun blocks on it
	runs     map[string]*RunState
	order    []string // run ids in creation order
	requests []Request
	tokens   map[string]token
	entities map[string]*EntityState // by entityKey(blueprint, identifier)
	// workflowRuns are the workflow runs node runs belong to (workflows.go).
	workflowRuns map[string]*WorkflowRunState

	delivery string // DeliveryKafka | DeliveryPolling

	down     bool
	failN    int
	failCode int
	// refuseClosings: answers for the next closing requests, in order (RefuseClosings).
	refuseClosings []int
	budget         int           // requests per window; 0: unlimited
	window         time.Duration // the budget window
	next           *budgetChange // SetBudget's change, from the next window on
	budgetSince    time.Time     // the start of the window SetBudget's last change took effect in
	winStart       time.Time     // start of the current budget window
	winCount       int           // requests counted in it
	rejected       int           // requests answered 429 for the budget, ever
}

type budgetChange struct {
	limit  int
	window time.Duration
}

type token struct {
	expires time.Time
	revoked bool
}

// RunState is a snapshot of one action run as Port stores it.
type RunState struct {
	ID, Action, Blueprint string
	Status                string // IN_PROGRESS | SUCCESS | FAILURE
	StatusLabel           string
	Link                  []string
	Summary               string
	ExternalRunID         string
	Properties            map[string]any
	Entity                string
	Logs                  []LogEntry
	// Terminations counts accepted requests that ended the run (a log with
	// terminationStatus or a PATCH with status); a correct agent leaves it at 1.
	Terminations int
	// RejectedTerminations counts attempts to end an already ended run, which
	// is a client bug: tests assert it stays 0.
	RejectedTerminations int
	// Response is what PATCH .../response gave a synchronous run (nil: none).
	Response any
	// A workflow node run (NodeRun) has a Workflow, a Node, and on completion a Result
	// (SUCCESS | FAILED | CANCELLED) and an Output; its Status reads SUCCESS or FAILURE
	// once completed, like an action run's, so waiting works the same for both.
	NodeRun              bool
	Workflow, Node       string
	WorkflowRunID        string // the workflow run the node run belongs to
	Result               string
	Output               map[string]any
	CreatedAt, UpdatedAt time.Time
	EndedAt              *time.Time
	// A run held for the agent's claims (delivery "polling"): Pending, how many times it
	// was claimed, until when its last claim hides it, whether it was acknowledged, and
	// the acknowledgements refused because it already was (409).
	Pending      bool
	Claims       int
	ClaimedUntil time.Time
	Acked        bool
	RejectedAcks int
	claimBody    []byte // the claim's payload (an action run) or config (a node run)
}

// LogEntry is one accepted POST .../logs.
type LogEntry struct {
	Level             string    `json:"level,omitempty"` // node run logs only
	Message           string    `json:"message"`
	TerminationStatus string    `json:"terminationStatus,omitempty"`
	StatusLabel       string    `json:"statusLabel,omitempty"`
	CreatedAt         time.Time `json:"createdAt"`
}

// Request is one HTTP request as received, with the status it was answered.
type Request struct {
	Method, Path string
	Query        string // the raw query, without "?"
	Status       int
	Body         []byte // at most 1 MiB + 1 bytes: what the emulator read
	At           time.Time
	Token        string // the bearer token, if any
}

// New returns an Emulator with defaults applied.
func New(opts Options) *Emulator {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 3 * time.Hour
	}
	opts.BudgetWindow = budgetWindow(opts.BudgetWindow)
	if opts.Topic == "" {
		opts.Topic = opts.OrgID + ".runs"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Delivery == "" {
		opts.Delivery = DeliveryKafka
	}
	e := &Emulator{
		delivery:     opts.Delivery,
		opts:         opts,
		changed:      make(chan struct{}),
		runs:         map[string]*RunState{},
		tokens:       map[string]token{},
		entities:     map[string]*EntityState{},
		workflowRuns: map[string]*WorkflowRunState{},
		budget:       opts.Budget,
		window:       opts.BudgetWindow,
	}
	e.routes()
	return e
}

func (e *Emulator) logf(format string, args ...any) {
	if e.opts.Logf != nil {
		e.opts.Logf(format, args...)
	}
}

// notifyLocked wakes every WaitRun. Callers hold e.mu.
func (e *Emulator) notifyLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *Emulator) insertLocked(r *RunState) {
	now := e.opts.Now()
	r.Status = statusInProgress
	r.CreatedAt, r.UpdatedAt = now, now
	e.runs[r.ID] = r
	e.order = append(e.order, r.ID)
	e.notifyLocked()
}

func (r *RunState) clone() RunState {
	c := *r
	c.Link = slices.Clone(r.Link)
	c.Logs = slices.Clone(r.Logs)
	c.Output = maps.Clone(r.Output)
	if r.Properties != nil {
		c.Properties = make(map[string]any, len(r.Properties))
		for k, v := range r.Properties {
			c.Properties[k] = v
		}
	}
	if r.EndedAt != nil {
		t := *r.EndedAt
		c.EndedAt = &t
	}
	return c
}

const (
	statusInProgress = "IN_PROGRESS"
	statusSuccess    = "SUCCESS"
	statusFailure    = "FAILURE"
)

func terminal(s string) bool { return s == statusSuccess || s == statusFailure }

// apiError is an error answer: HTTP status, Port error code and message.
type apiError struct {
	Status  int
	Code    string
	Message string
	Err     error // the cause, if any (e.g. the Produce error)
}

func (a *apiError) Error() string { return fmt.Sprintf("%d %s: %s", a.Status, a.Code, a.Message) }
func (a *apiError) Unwrap() error { return a.Err }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// randomID returns n random characters from [A-Za-z0-9], the alphabet of
// Port's run ids (r_QOz6WoOB1Q2lmhZZ).
func randomID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(buf)
		for _, b := range buf {
			if b < 248 && len(out) < n { // 248 = 4*62: reject to stay uniform
				out = append(out, alphabet[int(b)%62])
			}
		}
	}
	return string(out)
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

var errNoProducer = errors.New("emulator: no Kafka producer configured")
