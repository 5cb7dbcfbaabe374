package portapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Endpoint labels of workflow node runs, synchronous responses and Kafka credentials.
const (
	EndpointNodeRunGet       = "node_run_get"
	EndpointNodeRunPatch     = "node_run_patch"
	EndpointNodeRunLogs      = "node_run_logs"
	EndpointRunResponse      = "run_response"
	EndpointKafkaCredentials = "kafka_credentials"
)

// Workflow node run statuses and results as Port reports them.
const (
	NodeStatusCompleted = "COMPLETED"
	NodeResultSuccess   = "SUCCESS"
	NodeResultFailed    = "FAILED"
)

// NodeRuns reports workflow node runs (ids wfnr_...) through Port's workflow API with the
// same calls as action runs, so the reporter and the agent treat both alike:
// AppendLog is POST /v1/workflows/nodes/runs/{id}/logs {"logs":[{"level","message"}]},
// CloseRun sends the last lines, then PATCH /v1/workflows/nodes/runs/{id}
// {"status":"COMPLETED","result":"SUCCESS"|"FAILED","output":{...}}.
type NodeRuns struct{ C *Client }

func nodeRunPath(id string) string { return "/v1/workflows/nodes/runs/" + url.PathEscape(id) }

type nodeLog struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// AppendLog adds each line of message as one INFO entry of the node run's log.
func (n NodeRuns) AppendLog(ctx context.Context, runID, message string) error {
	return n.appendLog(ctx, runID, message, PriorityLog)
}

// AppendLogFrom is AppendLog with the message taken when the request's turn comes (see
// Client.AppendLogFrom).
func (n NodeRuns) AppendLogFrom(ctx context.Context, runID string, abandon <-chan struct{}, take func() (string, bool)) (bool, error) {
	var encErr error
	err := n.C.do(ctx, request{
		endpoint: EndpointNodeRunLogs, method: http.MethodPost, path: nodeRunPath(runID) + "/logs",
		prio: PriorityLog, runID: runID, abandon: abandon,
		take: func() ([]byte, bool) {
			m, ok := take()
			if !ok {
				return nil, false
			}
			b, err := nodeLogBody(n.C, m)
			encErr = err
			return b, err == nil
		},
	}, nil)
	return sentOrErr(err, encErr, "post logs for node run "+runID)
}

func (n NodeRuns) appendLog(ctx context.Context, runID, message string, prio Priority) error {
	body, err := nodeLogBody(n.C, message)
	if err == nil {
		err = n.C.do(ctx, request{
			endpoint: EndpointNodeRunLogs, method: http.MethodPost, path: nodeRunPath(runID) + "/logs",
			body: body, prio: prio, runID: runID,
		}, nil)
	}
	if err != nil {
		return fmt.Errorf("post logs for node run %s: %w", runID, err)
	}
	return nil
}

func nodeLogBody(c *Client, message string) ([]byte, error) {
	lines := strings.Split(message, "\n")
	logs := make([]nodeLog, 0, len(lines))
	for _, l := range lines {
		logs = append(logs, nodeLog{Level: "INFO", Message: l})
	}
	return c.encodeJSON(struct {
		Logs []nodeLog `json:"logs"`
	}{logs})
}

// CloseRun sends cl's message as the last log lines, then completes the node run with its
// result and output. A permanent refusal of the PATCH is checked against the node run: one
// Port already shows completed counts as closed (alreadyClosed).
func (n NodeRuns) CloseRun(ctx context.Context, runID string, cl Closing) (alreadyClosed bool, err error) {
	if cl.Message != "" {
		if err := n.appendLog(ctx, runID, cl.Message, PriorityClose); err != nil && !Permanent(err) {
			return false, fmt.Errorf("close node run %s: %w", runID, err)
		}
		// A refused log (the node run completed already, say) must not keep the result out:
		// the PATCH below decides.
	}
	result := NodeResultFailed
	if cl.TerminationStatus == StatusSuccess {
		result = NodeResultSuccess
	}
	output := cl.Output
	if output == nil {
		output = map[string]any{}
	}
	body, err := n.C.encodeJSON(struct {
		Status string         `json:"status"`
		Result string         `json:"result"`
		Output map[string]any `json:"output"`
	}{NodeStatusCompleted, result, output})
	if err != nil {
		return false, fmt.Errorf("close node run %s: %w", runID, err)
	}
	err = n.C.do(ctx, request{
		endpoint: EndpointNodeRunPatch, method: http.MethodPatch, path: nodeRunPath(runID),
		body: body, prio: PriorityClose, runID: runID,
	}, nil)
	if err == nil {
		return false, nil
	}
	if !Permanent(err) {
		return false, fmt.Errorf("close node run %s: %w", runID, err)
	}
	run, gerr := n.getRun(ctx, runID, PriorityClose)
	if gerr == nil && run.Terminated() {
		return true, nil
	}
	if gerr != nil {
		err = fmt.Errorf("%w (and checking the node run failed: %v)", err, gerr)
	}
	return false, fmt.Errorf("close node run %s: %w", runID, err)
}

// PatchRun: a node run has no label, link or summary; the command's workflow commands for
// them are dropped (its log still says what it did).
func (n NodeRuns) PatchRun(context.Context, string, RunPatch) error { return nil }

// PatchRunFrom drops the patch, as PatchRun does, and sends nothing.
func (n NodeRuns) PatchRunFrom(_ context.Context, _ string, _ <-chan struct{}, take func() (RunPatch, bool)) (bool, error) {
	take()
	return false, nil
}

// GetRun reads the node run as a Run: COMPLETED with SUCCESS is StatusSuccess, any other
// result StatusFailure, anything else StatusInProgress.
func (n NodeRuns) GetRun(ctx context.Context, runID string) (Run, error) {
	return n.getRun(ctx, runID, PriorityLog)
}

// WatchRun is GetRun at the lowest priority (Client.WatchRun).
func (n NodeRuns) WatchRun(ctx context.Context, runID string) (Run, error) {
	return n.getRun(ctx, runID, PriorityWatch)
}

func (n NodeRuns) getRun(ctx context.Context, runID string, prio Priority) (Run, error) {
	var resp struct {
		NodeRun *struct {
			Identifier string  `json:"identifier"`
			Status     string  `json:"status"`
			Result     *string `json:"result"`
		} `json:"nodeRun"`
	}
	err := n.C.do(ctx, request{
		endpoint: EndpointNodeRunGet, method: http.MethodGet, path: nodeRunPath(runID),
		prio: prio, runID: runID,
	}, &resp)
	if err == nil && resp.NodeRun == nil {
		err = errors.New(`answer has no "nodeRun"`)
	}
	if err != nil {
		return Run{}, fmt.Errorf("get node run %s: %w", runID, err)
	}
	r := Run{ID: resp.NodeRun.Identifier, Status: StatusInProgress}
	if resp.NodeRun.Status == NodeStatusCompleted {
		r.Status = StatusFailure
		if resp.NodeRun.Result != nil && *resp.NodeRun.Result == NodeResultSuccess {
			r.Status = StatusSuccess
		}
	}
	return r, nil
}

// SendResponse gives a synchronous action's caller the command's response:
// PATCH /v1/actions/runs/{id}/response {"response": ...}. It has closing priority: the run
// is closed right after it.
func (c *Client) SendResponse(ctx context.Context, runID string, response any) error {
	body, err := c.encodeJSON(struct {
		Response any `json:"response"`
	}{response})
	if err == nil {
		err = c.do(ctx, request{
			endpoint: EndpointRunResponse, method: http.MethodPatch, path: runPath(runID) + "/response",
			body: body, prio: PriorityClose, runID: runID,
		}, nil)
	}
	if err != nil {
		return fmt.Errorf("send response of run %s: %w", runID, err)
	}
	return nil
}

// KafkaCredentials is what GET /v1/kafka-credentials gives an organization: its managed
// Kafka's brokers (SASL_SSL, SCRAM-SHA-512) and a username and password.
type KafkaCredentials struct {
	Brokers            []string
	Username, Password string
}

// KafkaCredentials fetches the organization's Kafka credentials with the client's Port
// credentials. Errors never contain the password.
func (c *Client) KafkaCredentials(ctx context.Context) (KafkaCredentials, error) {
	var resp struct {
		Credentials *struct {
			Brokers  []string `json:"brokers"`
			Username string   `json:"username"`
			Password string   `json:"password"`
		} `json:"credentials"`
	}
	err := c.do(ctx, request{endpoint: EndpointKafkaCredentials, method: http.MethodGet, path: "/v1/kafka-credentials", prio: PriorityClose}, &resp)
	if err != nil {
		return KafkaCredentials{}, fmt.Errorf("get kafka credentials: %w", err)
	}
	cr := resp.Credentials
	if cr == nil || len(cr.Brokers) == 0 || cr.Username == "" || cr.Password == "" {
		return KafkaCredentials{}, errors.New(`get kafka credentials: the answer lacks "credentials" with brokers, username and password`)
	}
	return KafkaCredentials{Brokers: cr.Brokers, Username: cr.Username, Password: cr.Password}, nil
}
