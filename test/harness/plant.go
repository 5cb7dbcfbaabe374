package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/portapi"
)

// What a test plants before its agent starts, or does beside it: what other agents, Port or
// its users did; and the commands whose traces it reads afterwards.

// portClient is a Port API client with the Env's credentials.
func (e *Env) portClient(t testing.TB) *portapi.Client {
	t.Helper()
	api, err := portapi.New(portapi.Options{BaseURL: e.PortURL(), ClientID: ClientID, ClientSecret: e.ClientSecret, RequestsPerSecond: 100})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// CloseInPort closes the run in Port with a successful termination, as an agent that ran it
// earlier (or someone by hand) did: through Port's API with the Env's credentials.
func (e *Env) CloseInPort(t testing.TB, id, message string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := e.portClient(t).CloseRun(ctx, id, portapi.Closing{Message: message, TerminationStatus: portapi.StatusSuccess}); err != nil {
		t.Fatalf("harness: closing %s in Port: %v", id, err)
	}
}

// AsUser sends one request to Port's API as a user of the organization does (Port's UI
// sends the same): body as JSON, with a token of the Env's credentials. It fails t unless
// Port answers 200.
func (e *Env) AsUser(t testing.TB, method, path string, query url.Values, body any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := e.portClient(t).Forward(ctx, portapi.ProxyRequest{Method: method, Path: path, Query: query, Body: b})
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, resp.Body)
	}
	if err != nil {
		t.Fatalf("harness: %s %s as a user: %v", method, path, err)
	}
}

// CommitAs commits, for the Env's group, the partition at offset with metadata, as the last
// commit of an earlier owner of it said (an agent that died).
func (e *Env) CommitAs(t testing.TB, partition int32, offset int64, metadata string) {
	t.Helper()
	adm := e.Broker.admin(t)
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: e.Topic, Partition: partition, At: offset, LeaderEpoch: -1, Metadata: metadata})
	resp, err := adm.CommitOffsets(ctx, e.Group, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("harness: committing %s/%d@%d: %v", e.Topic, partition, offset, err)
	}
}

// Recorder is a command that appends its run's id to a file: which runs executed, and how
// many times.
type Recorder struct {
	Script string // the command: the script, its one argument the file
	File   string
}

// NewRecorder writes the recording script; body, if given, runs after it records.
func NewRecorder(t testing.TB, body ...string) Recorder {
	t.Helper()
	file := filepath.Join(t.TempDir(), "executed")
	return Recorder{Script: Script(t, `echo "$PORT_RUN_ID" >> "$1"`+"\n"+strings.Join(body, "\n")), File: file}
}

// RecordingConfig is a config (Config) whose one action runs a Recorder's command.
func (e *Env) RecordingConfig(t testing.TB, action string, body ...string) (*config.Config, Recorder) {
	t.Helper()
	rec := NewRecorder(t, body...)
	return e.Config(t, Actions(fmt.Sprintf("  %s: {command: %s}\n", action, rec.Command()))), rec
}

// Command is the action's command line, as YAML: [script, file].
func (r Recorder) Command() string { return fmt.Sprintf("[%q, %q]", r.Script, r.File) }

// Executed is the ids of the runs that executed, sorted, an id once per execution.
func (r Recorder) Executed(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(r.File)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	ids := strings.Fields(string(b))
	slices.Sort(ids)
	return ids
}

// StealToken is the /bin/sh code of a hostile command: it reads every environment it can
// in /proc, finds the run's, and leaves its PORT_API_TOKEN in $tok and PORT_API_URL in $url.
func StealToken(runID string) string {
	return fmt.Sprintf(`for f in /proc/[0-9]*/environ; do
  env=$( (tr '\0' '\n' < "$f") 2>/dev/null) || continue
  case "$env" in *PORT_RUN_ID=%s*) ;; *) continue ;; esac
  tok=$(printf '%%s\n' "$env" | sed -n 's/^PORT_API_TOKEN=//p')
  url=$(printf '%%s\n' "$env" | sed -n 's/^PORT_API_URL=//p')
  [ -n "$tok" ] && break
done
`, runID)
}
