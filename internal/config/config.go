// Package config reads port-runner's YAML configuration: environment expansion, defaults,
// unknown-key rejection and validation whose errors name the offending key.
package config

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/port-runner/port-runner/executor"
)

// Config is the whole agent configuration (SPEC "Configuration").
type Config struct {
	Port     Port              `yaml:"port"`
	Kafka    Kafka             `yaml:"kafka"`
	Security Security          `yaml:"security"`
	Executor Executor          `yaml:"executor"`
	Logs     Logs              `yaml:"logs"`
	Metrics  Metrics           `yaml:"metrics"`
	Message  Message           `yaml:"message"`
	Actions  map[string]Action `yaml:"actions"`
}

type Port struct {
	BaseURL           string  `yaml:"baseURL"`
	ClientID          string  `yaml:"clientID"`
	ClientSecret      string  `yaml:"clientSecret"`
	OrgID             string  `yaml:"orgID"`
	RequestsPerSecond float64 `yaml:"requestsPerSecond"`
	// CAFile is a PEM bundle trusted for the Port API besides the system roots (a
	// corporate TLS-inspecting proxy's CA).
	CAFile string `yaml:"caFile"`
	// ClientSecretFile names a file holding the client secret (a mounted Secret), instead
	// of clientSecret; Load reads it.
	ClientSecretFile string `yaml:"clientSecretFile"`
}

type Kafka struct {
	Brokers       []string `yaml:"brokers"`
	Topic         string   `yaml:"topic"`
	Group         string   `yaml:"group"`
	StartOffset   string   `yaml:"startOffset"`
	GroupProtocol string   `yaml:"groupProtocol"`
	SASL          SASL     `yaml:"sasl"`
	TLS           TLS      `yaml:"tls"`
	// RevokeTimeout is how long a revoke lets runs of the revoked partitions finish before
	// it cancels them; the partition is released only once they are closed in Port.
	RevokeTimeout Duration `yaml:"revokeTimeout"`
}

// Delivery timings the group's rebalance timeout is made of (see RebalanceTimeout).
const (
	// KillGrace is the time between SIGTERM and SIGKILL for a cancelled command: the
	// executor's, which kills it.
	KillGrace = executor.DefaultKillGrace
	// ClosingBudget is how long one run's closing request is retried.
	ClosingBudget = 60 * time.Second
	// CommitMargin is the time left for the revoke's last commit.
	CommitMargin = 10 * time.Second
	// MaxRevokeTimeout keeps the rebalance timeout, and so every rebalance of the group,
	// within minutes.
	MaxRevokeTimeout = 5 * time.Minute
)

// RebalanceTimeout is how long the group waits for this member in a rebalance: the revoke
// wait, then the kill of what still runs, closing those runs in Port and the last commit.
// A revoke that fits in it never has its partitions taken before their runs are closed.
func (k Kafka) RebalanceTimeout() time.Duration {
	return k.RevokeTimeout.D() + KillGrace + ClosingBudget + CommitMargin
}

// FromPort reports whether the brokers and SASL credentials come from Port
// (GET /v1/kafka-credentials): no brokers configured.
func (k Kafka) FromPort() bool { return len(k.Brokers) == 0 }

type SASL struct {
	Mechanism string `yaml:"mechanism"` // "" (none) | PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	// PasswordFile names a file holding the password, instead of password; Load reads it.
	PasswordFile string `yaml:"passwordFile"`
}

type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"caFile"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
}

type Security struct {
	VerifySignature *bool    `yaml:"verifySignature"` // nil means the default, true
	Mask            []string `yaml:"mask"`
	// RunIsolation says who may use a run's PORT_API_TOKEN: "process" (default) only the
	// run's own processes (Linux; see README "Runs and each other"), "token" whoever has it.
	RunIsolation string `yaml:"runIsolation"`
	// MaxMessageAge: a run message signed longer ago than this is executed only if Port
	// shows its run still open (a replay of an old message is not).
	MaxMessageAge Duration `yaml:"maxMessageAge"`
}

// Verify reports whether run messages must carry a valid signature.
func (s Security) Verify() bool { return s.VerifySignature == nil || *s.VerifySignature }

type Executor struct {
	MaxConcurrent   int      `yaml:"maxConcurrent"`
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
	// PassEnv names variables copied from the agent's environment into every command's
	// (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, ...); never the agent's credentials.
	PassEnv []string `yaml:"passEnv"`
}

type Logs struct {
	FlushInterval  Duration `yaml:"flushInterval"`
	MaxBatchBytes  ByteSize `yaml:"maxBatchBytes"`
	MaxBytesPerRun ByteSize `yaml:"maxBytesPerRun"`
}

type Metrics struct {
	Addr string `yaml:"addr"`
	// Pprof serves net/http/pprof on the metrics server (/debug/pprof/); off by default.
	Pprof bool `yaml:"pprof"`
}

// Message holds the jq selectors for custom (v2 KAFKA) payloads.
type Message struct {
	RunID      string `yaml:"runId"`
	Action     string `yaml:"action"`
	Properties string `yaml:"properties"`
	Entity     string `yaml:"entity"`
}

type Action struct {
	Command       []string          `yaml:"command"`
	Env           map[string]string `yaml:"env"` // NAME: jq expression over the run context
	Timeout       Duration          `yaml:"timeout"`
	MaxConcurrent int               `yaml:"maxConcurrent"`
	Workdir       string            `yaml:"workdir"`
	OnInterrupted string            `yaml:"onInterrupted"`
	PortAPI       PortAPI           `yaml:"portAPI"`
	// SecretInputs names inputs Port sends encrypted (secret inputs) for the agent to decrypt
	// for the command; inputs the message's schema marks "encryption" are decrypted anyway.
	SecretInputs []string `yaml:"secretInputs"`
	// WorkflowNode makes this entry the command of Port Workflows' node runs that match it.
	WorkflowNode *WorkflowNode `yaml:"workflowNode"`
}

// WorkflowNode selects workflow node runs (ids wfnr_...): every field given must match.
type WorkflowNode struct {
	Workflow string `yaml:"workflow"` // the workflow's identifier
	Node     string `yaml:"node"`     // the Kafka node's identifier
	Selector string `yaml:"selector"` // jq over the message; selects when it gives true
}

// PortAPI is what a run's command may call through the agent's Port API proxy beyond its
// defaults (its blueprint's entities, its own run): see package portproxy.
type PortAPI struct {
	// Allow lists extra routes, "[METHOD ]PATH" with "*" for one segment and a final "**"
	// for the rest, e.g. "GET /v1/blueprints/*".
	Allow []string `yaml:"allow"`
	// Rules are Allow parsed, set by Validate, so the agent uses the rules validation checked.
	Rules []AllowRule `yaml:"-"`
}

// credentialEnv are the variables that conventionally hold the agent's credentials
// (README, chart): executor.passEnv may never name them.
var credentialEnv = [...]string{"PORT_CLIENT_ID", "PORT_CLIENT_SECRET", "KAFKA_USERNAME", "KAFKA_PASSWORD"}

// MaxConcurrentLimit bounds the pool of one replica: each running run is one entry in its
// partition's commit metadata, which Kafka caps at 4 KiB (offset.metadata.max.bytes), and
// 100 runs plus an earlier owner's as many stay well inside it (consumer/meta_test.go).
const MaxConcurrentLimit = 100

// MaxRequestBytes is Port's limit for one request body; a log batch must leave room
// for the JSON envelope around it.
const MaxRequestBytes = 1 << 20

// maxBatchLimit keeps the JSON-escaped batch plus the closing fields under MaxRequestBytes
// even when a line is escape-heavy (see reporter): half the request leaves room for escaping.
const maxBatchLimit = 512 << 10

// applyDefaults fills every unset field with its documented default.
func (c *Config) applyDefaults() {
	if c.Port.BaseURL == "" {
		c.Port.BaseURL = "https://api.getport.io"
	}
	if c.Port.RequestsPerSecond == 0 {
		c.Port.RequestsPerSecond = 20
	}
	if c.Kafka.Topic == "" && c.Port.OrgID != "" {
		c.Kafka.Topic = c.Port.OrgID + ".runs"
	}
	if c.Kafka.StartOffset == "" {
		c.Kafka.StartOffset = "latest"
	}
	if c.Security.RunIsolation == "" {
		c.Security.RunIsolation = "process"
	}
	if c.Kafka.GroupProtocol == "" {
		c.Kafka.GroupProtocol = "classic"
	}
	if c.Kafka.RevokeTimeout == 0 {
		c.Kafka.RevokeTimeout = Duration(20 * time.Second)
	}
	if c.Security.MaxMessageAge == 0 {
		c.Security.MaxMessageAge = Duration(10 * time.Minute)
	}
	if c.Executor.MaxConcurrent == 0 {
		c.Executor.MaxConcurrent = 8
	}
	if c.Executor.ShutdownTimeout == 0 {
		c.Executor.ShutdownTimeout = Duration(60 * time.Second)
	}
	if c.Logs.FlushInterval == 0 {
		c.Logs.FlushInterval = Duration(time.Second)
	}
	if c.Logs.MaxBatchBytes == 0 {
		c.Logs.MaxBatchBytes = 64 << 10
	}
	if c.Logs.MaxBytesPerRun == 0 {
		c.Logs.MaxBytesPerRun = 4 << 20
	}
	if c.Metrics.Addr == "" {
		c.Metrics.Addr = ":9464"
	}
	if c.Message.RunID == "" {
		c.Message.RunID = ".context.runId"
	}
	if c.Message.Action == "" {
		c.Message.Action = ".action"
	}
	if c.Message.Properties == "" {
		c.Message.Properties = ".payload.properties"
	}
	if c.Message.Entity == "" {
		c.Message.Entity = ".payload.entity"
	}
	for name, a := range c.Actions {
		if a.OnInterrupted == "" {
			a.OnInterrupted = "fail"
		}
		c.Actions[name] = a
	}
	// An unset ${SOME_TOKEN} expands to "": masking the empty string would mask nothing useful
	// and everything at once, so empty values are dropped.
	mask := c.Security.Mask[:0]
	for _, m := range c.Security.Mask {
		if m != "" {
			mask = append(mask, m)
		}
	}
	c.Security.Mask = mask
}

// Problems is every validation error of a config, each naming its key.
type Problems []error

func (p Problems) Error() string {
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// keyError names the key a problem is about, and its line when known, so users find it in
// their file.
type keyError struct {
	key  string
	msg  string
	line int
}

func (e keyError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", e.key, e.msg, e.line)
	}
	return e.key + ": " + e.msg
}

// WithLines gives each problem about a key without a line the line of that key, or of its
// nearest ancestor, in lines (from ParseAll).
func (p Problems) WithLines(lines Lines) Problems {
	out := make(Problems, len(p))
	for i, e := range p {
		if ke, ok := e.(keyError); ok && ke.line == 0 {
			ke.line = lines.Of(ke.key)
			e = ke
		}
		out[i] = e
	}
	return out
}

// Key is the key path a problem names ("" when it names none).
func Key(err error) string {
	if ke, ok := err.(keyError); ok {
		return ke.key
	}
	return ""
}

func problem(key, format string, args ...any) error {
	return keyError{key: key, msg: fmt.Sprintf(format, args...)}
}

// CompileFunc checks one jq expression; the message package provides it, so config stays
// free of jq and Kafka knowledge while still validating expressions.
type CompileFunc func(expr string) error

// Validate checks the config and returns Problems (nil when valid). compile checks jq
// expressions; lookPath checks commands (exec.LookPath in production).
func (c *Config) Validate(compile CompileFunc, lookPath func(string) (string, error)) error {
	var ps Problems
	add := func(err error) { ps = append(ps, err) }

	if !strings.HasPrefix(c.Port.BaseURL, "http://") && !strings.HasPrefix(c.Port.BaseURL, "https://") {
		add(problem("port.baseURL", "must be an http(s) URL, got %q", c.Port.BaseURL))
	}
	if c.Port.ClientID == "" {
		add(problem("port.clientID", "required (set PORT_CLIENT_ID or write it in the file)"))
	}
	if c.Port.ClientSecret == "" {
		add(problem("port.clientSecret", "required (set PORT_CLIENT_SECRET, write it in the file, or name a file with port.clientSecretFile)"))
	}
	if c.Port.CAFile != "" {
		if _, err := os.Stat(c.Port.CAFile); err != nil {
			add(problem("port.caFile", "%v", err))
		}
	}
	// NaN compares false with everything and +Inf means no limit: both would turn the
	// limiter off, so only finite positive rates pass.
	if rps := c.Port.RequestsPerSecond; rps < 0 || math.IsNaN(rps) || math.IsInf(rps, 0) {
		add(problem("port.requestsPerSecond", "must be a finite positive number, got %v", rps))
	}
	for i, b := range c.Kafka.Brokers {
		if strings.Contains(b, ",") {
			add(problem(fmt.Sprintf("kafka.brokers[%d]", i), "one broker per element, got the comma list %q (write brokers: ${VAR} without brackets to split a comma list)", b))
		} else if b == "" || !strings.Contains(b, ":") {
			add(problem(fmt.Sprintf("kafka.brokers[%d]", i), "want host:port, got %q", b))
		}
	}
	if c.Kafka.Topic == "" {
		add(problem("kafka.topic", "required when port.orgID is not set (the default is <orgID>.runs)"))
	}
	if c.Kafka.Group == "" && !c.Kafka.FromPort() {
		add(problem("kafka.group", `required: Port's rule is "<ORG_ID>.<name>" or the Kafka username`))
	}
	if c.Kafka.FromPort() && c.Kafka.SASL.Mechanism != "" {
		add(problem("kafka.sasl", "set kafka.brokers too, or neither: without brokers the agent gets brokers and SASL credentials from Port"))
	}
	if !oneOf(c.Kafka.StartOffset, "latest", "earliest") {
		add(problem("kafka.startOffset", "must be latest or earliest, got %q", c.Kafka.StartOffset))
	}
	if !oneOf(c.Kafka.GroupProtocol, "classic", "consumer") {
		add(problem("kafka.groupProtocol", "must be classic or consumer, got %q", c.Kafka.GroupProtocol))
	}
	switch c.Kafka.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Kafka.SASL.Username == "" {
			add(problem("kafka.sasl.username", "required with mechanism %s", c.Kafka.SASL.Mechanism))
		}
		if c.Kafka.SASL.Password == "" {
			add(problem("kafka.sasl.password", "required with mechanism %s (or kafka.sasl.passwordFile)", c.Kafka.SASL.Mechanism))
		}
	default:
		add(problem("kafka.sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", c.Kafka.SASL.Mechanism))
	}
	if c.Kafka.TLS.CAFile != "" {
		if _, err := os.Stat(c.Kafka.TLS.CAFile); err != nil {
			add(problem("kafka.tls.caFile", "%v", err))
		}
	}
	if r := c.Kafka.RevokeTimeout.D(); r < time.Second || r > MaxRevokeTimeout {
		add(problem("kafka.revokeTimeout", "must be between 1s and %s, got %s (the group's rebalance timeout is revokeTimeout + %s kill grace + %s closing budget + %s commit)",
			MaxRevokeTimeout, r, KillGrace, ClosingBudget, CommitMargin))
	}
	if c.Security.MaxMessageAge.D() < time.Minute {
		add(problem("security.maxMessageAge", "must be at least 1m (older signed messages cost one Port request each), got %s", c.Security.MaxMessageAge.D()))
	}
	if c.Executor.MaxConcurrent < 1 {
		add(problem("executor.maxConcurrent", "must be at least 1, got %d", c.Executor.MaxConcurrent))
	} else if c.Executor.MaxConcurrent > MaxConcurrentLimit {
		add(problem("executor.maxConcurrent", "at most %d per replica (scale out with replicas), got %d", MaxConcurrentLimit, c.Executor.MaxConcurrent))
	}
	if c.Executor.ShutdownTimeout < 0 {
		add(problem("executor.shutdownTimeout", "must not be negative"))
	}
	for i, n := range c.Executor.PassEnv {
		key := fmt.Sprintf("executor.passEnv[%d]", i)
		switch {
		case !validEnvName(n):
			add(problem(key, "%q is not a valid environment variable name", n))
		case slices.Contains(credentialEnv[:], n):
			add(problem(key, "%s holds the agent's credentials; commands never get them", n))
		case strings.HasPrefix(n, "PORT_"):
			add(problem(key, "the PORT_ prefix is the agent's (its settings, credentials and the variables it sets for commands)"))
		}
	}
	if c.Logs.FlushInterval <= 0 {
		add(problem("logs.flushInterval", "must be positive"))
	}
	if c.Logs.MaxBatchBytes <= 0 || c.Logs.MaxBatchBytes > maxBatchLimit {
		add(problem("logs.maxBatchBytes", "must be between 1 and %s (Port rejects requests over 1MiB), got %d", ByteSize(maxBatchLimit), c.Logs.MaxBatchBytes))
	}
	if c.Logs.MaxBytesPerRun <= 0 {
		add(problem("logs.maxBytesPerRun", "must be positive"))
	}
	for key, expr := range map[string]string{
		"message.runId": c.Message.RunID, "message.action": c.Message.Action,
		"message.properties": c.Message.Properties, "message.entity": c.Message.Entity,
	} {
		if err := compile(expr); err != nil {
			add(problem(key, "bad jq expression %q: %v", expr, err))
		}
	}
	if !oneOf(c.Security.RunIsolation, "process", "token") {
		add(problem("security.runIsolation", "must be process or token, got %q", c.Security.RunIsolation))
	}
	if len(c.Actions) == 0 {
		add(problem("actions", "at least one action is required"))
	}
	for _, name := range c.ActionNames() {
		a := c.Actions[name]
		key := "actions." + name
		if len(a.Command) == 0 || a.Command[0] == "" {
			add(problem(key+".command", "required: the argv to run"))
		} else if _, err := lookPath(a.Command[0]); err != nil {
			add(problem(key+".command", "%q is not an executable: %v", a.Command[0], err))
		}
		envNames := make([]string, 0, len(a.Env))
		for n := range a.Env {
			envNames = append(envNames, n)
		}
		sort.Strings(envNames)
		for _, n := range envNames {
			if !validEnvName(n) {
				add(problem(key+".env."+n, "not a valid environment variable name"))
			}
			if strings.HasPrefix(n, "PORT_") {
				add(problem(key+".env."+n, "the PORT_ prefix is reserved for variables the agent sets"))
			}
			if err := compile(a.Env[n]); err != nil {
				add(problem(key+".env."+n, "bad jq expression %q: %v", a.Env[n], err))
			}
		}
		if a.Timeout < 0 {
			add(problem(key+".timeout", "must not be negative"))
		}
		if a.MaxConcurrent < 0 {
			add(problem(key+".maxConcurrent", "must not be negative (0 means only the global limit)"))
		}
		if a.Workdir != "" {
			if st, err := os.Stat(a.Workdir); err != nil || !st.IsDir() {
				add(problem(key+".workdir", "%q is not a directory", a.Workdir))
			}
		}
		if !oneOf(a.OnInterrupted, "fail", "rerun") {
			add(problem(key+".onInterrupted", "must be fail or rerun, got %q", a.OnInterrupted))
		}
		for i, in := range a.SecretInputs {
			if in == "" {
				add(problem(fmt.Sprintf("%s.secretInputs[%d]", key, i), "empty input name"))
			}
		}
		if wn := a.WorkflowNode; wn != nil {
			if wn.Workflow == "" && wn.Node == "" && wn.Selector == "" {
				add(problem(key+".workflowNode", "give workflow, node or selector: an empty match would take every node run"))
			}
			if wn.Selector != "" {
				if err := compile(wn.Selector); err != nil {
					add(problem(key+".workflowNode.selector", "bad jq expression %q: %v", wn.Selector, err))
				}
			}
		}
		a.PortAPI.Rules = nil
		for i, p := range a.PortAPI.Allow {
			r, err := ParseAllowRule(p)
			if err != nil {
				add(problem(fmt.Sprintf("%s.portAPI.allow[%d]", key, i), "%v", err))
				continue
			}
			a.PortAPI.Rules = append(a.PortAPI.Rules, r)
		}
		c.Actions[name] = a
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// AgentSecrets are the agent's own credentials (the Port client secret, the Kafka
// password), the non-empty ones: masked in every run's log and removed from the agent's
// environment once read.
func (c *Config) AgentSecrets() []string {
	var s []string
	for _, v := range []string{c.Port.ClientSecret, c.Kafka.SASL.Password} {
		if v != "" {
			s = append(s, v)
		}
	}
	return s
}

// ActionNames returns the configured action identifiers, sorted.
func (c *Config) ActionNames() []string {
	names := make([]string, 0, len(c.Actions))
	for n := range c.Actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ResolveCommands makes relative command paths absolute against base (the agent's working
// directory), so a per-action workdir cannot change which program runs.
func (c *Config) ResolveCommands(base string) {
	for name, a := range c.Actions {
		if len(a.Command) > 0 && strings.Contains(a.Command[0], "/") && !filepath.IsAbs(a.Command[0]) {
			cmd := append([]string(nil), a.Command...)
			cmd[0] = filepath.Join(base, cmd[0])
			a.Command = cmd
			c.Actions[name] = a
		}
	}
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i, r := range n {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
