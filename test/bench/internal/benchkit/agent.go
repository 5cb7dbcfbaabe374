//go:build linux

package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Action is one configured action of a bench agent.
type Action struct {
	Command       []string // argv; argv[0] absolute or looked up in PATH
	MaxConcurrent int
	Timeout       time.Duration
}

// Config is what a bench agent's YAML is made of.
type Config struct {
	PortURL         string
	Brokers         []string
	Topic, Group    string
	StartOffset     string // default earliest
	MaxConcurrent   int
	FlushInterval   time.Duration // 0: the agent's default
	ShutdownTimeout time.Duration // default 10s
	RPS             float64       // default 5000: the bench measures the agent, not the limiter
	Pprof           bool
	Actions         map[string]Action
}

// YAML renders the config file.
func (c Config) YAML() (string, error) {
	if c.StartOffset == "" {
		c.StartOffset = "earliest"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.RPS == 0 {
		c.RPS = 5000
	}
	bs, _ := json.Marshal(c.Brokers)
	var b strings.Builder
	fmt.Fprintf(&b, "port:\n  baseURL: %s\n  clientID: %s\n  clientSecret: %s\n  orgID: %s\n  requestsPerSecond: %g\n",
		c.PortURL, ClientID, ClientSecret, OrgID, c.RPS)
	fmt.Fprintf(&b, "kafka:\n  brokers: %s\n  topic: %s\n  group: %s\n  startOffset: %s\n", bs, c.Topic, c.Group, c.StartOffset)
	fmt.Fprintf(&b, "executor:\n  maxConcurrent: %d\n  shutdownTimeout: %s\n", c.MaxConcurrent, c.ShutdownTimeout)
	if c.FlushInterval > 0 {
		fmt.Fprintf(&b, "logs:\n  flushInterval: %s\n", c.FlushInterval)
	}
	fmt.Fprintf(&b, "metrics:\n  addr: 127.0.0.1:0\n  pprof: %v\n", c.Pprof)
	b.WriteString("actions:\n")
	for name, a := range c.Actions {
		if len(a.Command) == 0 {
			return "", fmt.Errorf("action %s: no command", name)
		}
		argv := append([]string(nil), a.Command...)
		if !filepath.IsAbs(argv[0]) {
			p, err := exec.LookPath(argv[0])
			if err != nil {
				return "", fmt.Errorf("action %s: %w", name, err)
			}
			argv[0] = p
		}
		cmd, _ := json.Marshal(argv)
		timeout := a.Timeout
		if timeout == 0 {
			timeout = time.Hour
		}
		fmt.Fprintf(&b, "  %s:\n    command: %s\n    timeout: %s\n", name, cmd, timeout)
		if a.MaxConcurrent > 0 {
			fmt.Fprintf(&b, "    maxConcurrent: %d\n", a.MaxConcurrent)
		}
	}
	return b.String(), nil
}

// Agent is the agent running as a separate process (`port-runner run --config FILE`).
type Agent struct {
	Pid         int
	MetricsAddr string
	ConfigPath  string
	LogPath     string

	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	warns    atomic.Int64
	errs     atomic.Int64
	logFile  *os.File
	stopOnce sync.Once
	stopErr  error
}

// StartAgent writes the config into dir/NAME.yaml and starts the agent binary on it, with its
// log in dir/NAME.log. It returns once the agent serves its metrics; Ready waits for the group.
func StartAgent(ctx context.Context, bin, dir, name string, cfg Config) (*Agent, error) {
	y, err := cfg.YAML()
	if err != nil {
		return nil, err
	}
	a := &Agent{ConfigPath: filepath.Join(dir, name+".yaml"), LogPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	if err := os.WriteFile(a.ConfigPath, []byte(y), 0o600); err != nil {
		return nil, err
	}
	if a.logFile, err = os.Create(a.LogPath); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", a.ConfigPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT_RUNNER_LOG_LEVEL=info", "PORT_RUNNER_LOG_FORMAT=json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the bench
	cmd.Stdout = a.logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		a.logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		a.logFile.Close()
		return nil, fmt.Errorf("start agent: %w", err)
	}
	a.cmd, a.Pid = cmd, cmd.Process.Pid
	addr := make(chan string, 1)
	go func() {
		scanLog(stderr, a.logFile, addr, &a.warns, &a.errs)
		a.waitErr = cmd.Wait()
		a.logFile.Close()
		close(a.exited)
	}()
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case a.MetricsAddr = <-addr:
		return a, nil
	case <-a.exited:
		return nil, fmt.Errorf("agent exited before serving metrics: %v (log %s)", a.waitErr, a.LogPath)
	case <-t.C:
	case <-ctx.Done():
	}
	a.Kill()
	return nil, fmt.Errorf("agent did not serve metrics in time (log %s)", a.LogPath)
}

// Ready waits until /readyz answers 200: the group is joined and the Port token valid.
func (a *Agent) Ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := c.Get("http://" + a.MetricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-a.exited:
			return fmt.Errorf("agent exited: %v (log %s)", a.waitErr, a.LogPath)
		case <-ctx.Done():
			return fmt.Errorf("agent not ready: %w (log %s)", ctx.Err(), a.LogPath)
		}
	}
}

// Exited is closed when the agent process has ended.
func (a *Agent) Exited() <-chan struct{} { return a.exited }

// Stop sends SIGTERM and waits up to grace, then SIGKILL. It returns why the agent did not
// exit cleanly, if it did not.
func (a *Agent) Stop(grace time.Duration) error {
	a.stopOnce.Do(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-a.exited:
			if a.waitErr != nil {
				a.stopErr = fmt.Errorf("agent exited with %v (log %s)", a.waitErr, a.LogPath)
			}
		case <-t.C:
			_ = a.cmd.Process.Kill()
			<-a.exited
			a.stopErr = fmt.Errorf("agent did not exit %s after SIGTERM (log %s)", grace, a.LogPath)
		}
	})
	return a.stopErr
}

// Kill ends the agent at once.
func (a *Agent) Kill() {
	a.stopOnce.Do(func() {
		_ = a.cmd.Process.Kill()
		<-a.exited
		a.stopErr = errors.New("agent killed")
	})
}

// LogCounts is how many warn and error lines the agent logged.
func (a *Agent) LogCounts() (warn, errs int64) { return a.warns.Load(), a.errs.Load() }

// Get fetches a path of the agent's metrics server.
func (a *Agent) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.MetricsAddr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return b, err
}

// Metric reads one unlabelled sample (e.g. port_runner_runs_in_flight) from /metrics; -1 if
// it is missing.
func (a *Agent) Metric(ctx context.Context, name string) float64 {
	b, err := a.Get(ctx, "/metrics")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var x float64
			if _, err := fmt.Sscan(v, &x); err == nil {
				return x
			}
		}
	}
	return -1
}

// scanLog copies the agent's stderr to the log file, finds the bound metrics address and
// counts warnings and errors.
func scanLog(r io.Reader, w io.Writer, addr chan<- string, warns, errs *atomic.Int64) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	found := false
	for sc.Scan() {
		line := sc.Bytes()
		bw.Write(line)
		bw.WriteByte('\n')
		switch {
		case bytes.Contains(line, []byte(`"level":"warn"`)):
			warns.Add(1)
		case bytes.Contains(line, []byte(`"level":"error"`)), bytes.Contains(line, []byte(`"level":"fatal"`)):
			errs.Add(1)
		}
		if !found && bytes.Contains(line, []byte(`serving metrics`)) {
			var l struct {
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &l) == nil && l.Addr != "" {
				found = true
				addr <- l.Addr
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
}
