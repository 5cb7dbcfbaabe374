package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// Files a command may write for Port (README "What a command sees"), set after the
// configured env like the Port API variables, so no configured value replaces them.
const (
	envOutputFile   = "PORT_OUTPUT_FILE"   // workflow node runs: a JSON object, the node's output
	envResponseFile = "PORT_RESPONSE_FILE" // action runs: a synchronous action's response
	maxRunFileBytes = 512 << 10            // the closing request must stay far under Port's 1 MiB
)

// runFiles is a private directory (0700) per run holding the paths the command may write.
type runFiles struct {
	dir, output, response string
	runs                  *executor.RunsDir // the directory's maker; nil: os.MkdirTemp
}

// envAdded is how many variables the agent adds to a spec's env after the configured ones:
// a run file's (newRunFiles) and the Port API's two (withPortAPI).
const envAdded = 3

// newRunFiles makes the run's directory (in runs, the agent's place for them, when it has
// one) and names the files the command may write there; the command's PORT_RUN_FILE, HOME
// and TMPDIR go there too (spec.RunDir), so its sandbox and uid cover them all.
func newRunFiles(spec *executor.Spec, run runmsg.Run, runs *executor.RunsDir) (*runFiles, error) {
	var dir string
	var err error
	if runs != nil {
		dir, err = runs.NewRunDir()
	} else {
		dir, err = os.MkdirTemp(executor.RunDirRoot(), "port-runner-run-*")
	}
	if err != nil {
		return nil, fmt.Errorf("run files: %w", err)
	}
	spec.RunDir, spec.Isolation.Runs = dir, runs
	f := &runFiles{dir: dir, runs: runs}
	if runmsg.IsWorkflowNodeRun(run.ID) {
		f.output = filepath.Join(dir, "output.json")
		spec.Env[envOutputFile] = f.output
	} else {
		f.response = filepath.Join(dir, "response.json")
		spec.Env[envResponseFile] = f.response
	}
	return f, nil
}

// remove ends the run's directory: removed with what the command left there, or cleared
// for the next run (executor.RunsDir.ReleaseRunDir). What cannot be removed (a file the
// command made immutable, say) is logged: only the directory and the system's reason, not
// the name inside it, which the command chose.
func (f *runFiles) remove(log *zap.Logger) {
	name := f.response // the one file of ours a run has: node runs write output, action runs a response
	if f.output != "" {
		name = f.output
	}
	if err := f.runs.ReleaseRunDir(f.dir, filepath.Base(name)); err != nil { // a nil runs only removes
		log.Warn("run directory not removed: what the command left there stays", zap.String("dir", f.dir), zap.NamedError("reason", cause(err)))
	}
}

// outputs reads $PORT_OUTPUT_FILE: a JSON object, or nothing.
func (f *runFiles) outputs() (map[string]any, error) {
	b, err := readRunFile(f.output)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return nil, err
	}
	var out map[string]any
	if err := decodeJSON(b, &out); err != nil {
		return nil, errors.New("not a JSON object")
	}
	return out, nil
}

// responseBody reads $PORT_RESPONSE_FILE: JSON as it is, other text as a string; nil when
// the command wrote none.
func (f *runFiles) responseBody() (any, bool, error) {
	b, err := readRunFile(f.response)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return nil, false, err
	}
	var v any
	if decodeJSON(b, &v) != nil {
		v = string(b)
	}
	return v, true, nil
}

// decodeJSON reads b, one JSON value, with its numbers as written (json.Number), as the
// Port API proxy does: a float64 would send 12345678901234567891 to Port as
// 12345678901234567000, unlike what the command wrote, and past the mask of a numeric secret
// it holds (README "What Port sees").
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.Decode(new(json.RawMessage)) != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}
