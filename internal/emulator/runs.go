package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/port-runner/port-runner/internal/runmsg"
)

// CreateRunRequest is the body of POST /v1/actions/{action}/runs.
type CreateRunRequest struct {
	Properties map[string]any `json:"properties"`
	Entity     string         `json:"entity,omitempty"`    // set: a DAY-2 run on that entity
	Blueprint  string         `json:"blueprint,omitempty"` // default "microservice"
}

// CreateRun does in process what POST /v1/actions/{action}/runs does: it
// creates an IN_PROGRESS run and produces Port's signed run message, keyed by
// run id, to the runs topic. If producing fails the run is removed again and
// the error answers 503, since a run no agent will ever see must not exist.
//
// The run is registered before the message is produced: an agent may consume
// the message and GET the run before Produce returns, as it may with Port.
func (e *Emulator) CreateRun(ctx context.Context, action string, req CreateRunRequest) (RunState, error) {
	if action == "" {
		return RunState{}, errf(http.StatusUnprocessableEntity, "invalid_request", "action identifier is required")
	}
	if e.Delivery() == DeliveryPolling {
		return e.HoldRun(action, req)
	}
	return e.publish(ctx, "run", func() (RunState, []byte, error) { return e.PrepareRun(action, req) })
}

// publish creates a run with prepare and produces its message, keyed by run id, to the runs
// topic; if producing fails the run is removed again and the error answers 503. what names
// the run in that error.
func (e *Emulator) publish(ctx context.Context, what string, prepare func() (RunState, []byte, error)) (RunState, error) {
	if e.opts.Produce == nil {
		return RunState{}, &apiError{Status: http.StatusServiceUnavailable, Code: "internal_error", Message: errNoProducer.Error(), Err: errNoProducer}
	}
	run, value, err := prepare()
	if err != nil {
		return RunState{}, err
	}
	if err := e.opts.Produce(ctx, e.opts.Topic, []byte(run.ID), value); err != nil {
		e.removeRun(run.ID)
		return RunState{}, &apiError{Status: http.StatusServiceUnavailable, Code: "internal_error",
			Message: "could not publish the " + what + " to Kafka: " + err.Error(), Err: err}
	}
	run, _ = e.Run(run.ID)
	return run, nil
}

// runInputs is a new run's blueprint and (copied) properties.
func runInputs(req CreateRunRequest) (blueprint string, props map[string]any) {
	blueprint = req.Blueprint
	if blueprint == "" {
		blueprint = "microservice"
	}
	props = maps.Clone(req.Properties)
	if props == nil {
		props = map[string]any{}
	}
	return blueprint, props
}

// shownProps is what Port stores and shows of a run's inputs: never a secret input's value.
func (e *Emulator) shownProps(action string, props map[string]any) map[string]any {
	props = maps.Clone(props)
	for _, n := range e.opts.SecretInputs[action] {
		if _, ok := props[n]; ok {
			props[n] = "***"
		}
	}
	return props
}

// PrepareRun creates the IN_PROGRESS run as CreateRun does and returns its signed message
// instead of producing it (`port-runner try` hands it to the agent directly, no Kafka).
func (e *Emulator) PrepareRun(action string, req CreateRunRequest) (RunState, []byte, error) {
	if action == "" {
		return RunState{}, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "action identifier is required")
	}
	bp, props := runInputs(req)
	now := e.opts.Now()
	id := "r_" + randomID(16)
	value, err := e.buildMessage(id, action, bp, req.Entity, props, now)
	if err != nil {
		return RunState{}, nil, &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: err.Error(), Err: err}
	}
	e.mu.Lock()
	e.insertLocked(&RunState{ID: id, Action: action, Blueprint: bp, Entity: req.Entity, Properties: e.shownProps(action, props)})
	e.mu.Unlock()
	run, _ := e.Run(id)
	return run, value, nil
}

// The run message in Port's v1 layout (the seed's CREATE body). Structs, not
// maps, so the key order is the seed's and the signed bytes are deterministic.
type runMessage struct {
	Action       string         `json:"action"`
	ResourceType string         `json:"resourceType"`
	Status       string         `json:"status"`
	Trigger      msgTrigger     `json:"trigger"`
	Context      msgContext     `json:"context"`
	Payload      msgPayload     `json:"payload"`
	Headers      map[string]any `json:"headers"` // empty; runmsg.Sign fills it
}

type msgTrigger struct {
	By     msgBy  `json:"by"`
	Origin string `json:"origin"`
	At     string `json:"at"`
}

type msgBy struct {
	OrgID  string `json:"orgId"`
	UserID string `json:"userId"`
}

type msgContext struct {
	Entity    *string `json:"entity"` // null for CREATE
	Blueprint string  `json:"blueprint"`
	RunID     string  `json:"runId"`
}

type msgPayload struct {
	Entity     *msgEntity     `json:"entity"` // null for CREATE
	Action     msgAction      `json:"action"`
	Properties map[string]any `json:"properties"`
}

type msgEntity struct {
	Identifier string         `json:"identifier"`
	Title      string         `json:"title"`
	Blueprint  string         `json:"blueprint"`
	Properties map[string]any `json:"properties"`
	Relations  map[string]any `json:"relations"`
}

type msgAction struct {
	Identifier       string         `json:"identifier"`
	Title            string         `json:"title"`
	UserInputs       *msgUserInputs `json:"userInputs,omitempty"` // only when some input is secret
	InvocationMethod msgInvocation  `json:"invocationMethod"`
	Trigger          string         `json:"trigger"`
	Blueprint        string         `json:"blueprint"`
}

type msgInvocation struct {
	Type         string `json:"type"`
	Agent        bool   `json:"agent,omitempty"`
	URL          string `json:"url,omitempty"`
	GroupName    string `json:"groupName,omitempty"`
	ProjectName  string `json:"projectName,omitempty"`
	Synchronized bool   `json:"synchronized,omitempty"`
}

type msgUserInputs struct {
	Properties map[string]msgInput `json:"properties"`
}

type msgInput struct {
	Type       string `json:"type"`
	Encryption any    `json:"encryption,omitempty"` // "aes256-gcm", or {"algorithm": "client-side", "key": PEM}
}

// encryptSecrets encrypts the action's secret inputs in the message as Port does
// (it never stores or logs their values) and marks them in the action's userInputs.
func (e *Emulator) encryptSecrets(m *runMessage, action string) error {
	names := e.opts.SecretInputs[action]
	clientSide := e.opts.ClientSideInputs[action]
	if len(names) == 0 && len(clientSide) == 0 {
		return nil
	}
	props := maps.Clone(m.Payload.Properties)
	ui := &msgUserInputs{Properties: map[string]msgInput{}}
	encrypt := func(n string, encryption any, seal func([]byte) (string, error)) error {
		v, ok := props[n]
		typ := "string"
		if _, isString := v.(string); !isString && ok {
			typ = "object"
		}
		ui.Properties[n] = msgInput{Type: typ, Encryption: encryption}
		if !ok {
			return nil
		}
		plain, isString := v.(string)
		if !isString {
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("emulator: secret input %s: %w", n, err)
			}
			plain = string(b)
		}
		enc, err := seal([]byte(plain))
		if err != nil {
			return fmt.Errorf("emulator: encrypt secret input %s: %w", n, err)
		}
		props[n] = enc
		return nil
	}
	for _, n := range names {
		if err := encrypt(n, runmsg.SecretAlgorithm, func(p []byte) (string, error) { return runmsg.EncryptSecret(e.opts.ClientSecret, p) }); err != nil {
			return err
		}
	}
	for _, n := range slices.Sorted(maps.Keys(clientSide)) {
		pub := clientSide[n]
		pem, err := runmsg.PublicKeyPEM(pub)
		if err != nil {
			return fmt.Errorf("emulator: client-side input %s: %w", n, err)
		}
		enc := map[string]string{"algorithm": runmsg.ClientSideAlgorithm, "key": pem}
		if err := encrypt(n, enc, func(p []byte) (string, error) { return runmsg.EncryptClientSide(pub, p) }); err != nil {
			return err
		}
	}
	m.Payload.Properties = props
	m.Payload.Action.UserInputs = ui
	return nil
}
