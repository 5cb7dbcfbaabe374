// Package config reads port-runner's YAML configuration: environment expansion, defaults,
// unknown-key rejection and validation whose errors name the offending key.
package config

import (
	"time"
)

// Config is the whole agent configuration (README "Configuration").
type Config struct {
	Port      Port              `yaml:"port"`
	Transport string            `yaml:"transport"` // kafka (default) | polling: see polling.go
	Kafka     Kafka             `yaml:"kafka"`
	Polling   Polling           `yaml:"polling"`
	Security  Security          `yaml:"security"`
	Executor  Executor          `yaml:"executor"`
	Logs      Logs              `yaml:"logs"`
	Metrics   Metrics           `yaml:"metrics"`
	Message   Message           `yaml:"message"`
	Actions   map[string]Action `yaml:"actions"`
	// WorkflowNodeRuns says what becomes of workflow node runs no action here matches.
	WorkflowNodeRuns WorkflowNodeRuns `yaml:"workflowNodeRuns"`

	// fromEnv: the values ${VAR} filled, quoted as problems quote them, with the text the file
	// wrote, which Validate's problems show instead (hideEnvValues).
	fromEnv []envValue `yaml:"-"`
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
	// AppURL is Port's web app, for /status's links to runs; empty: PortAppURL derives it.
	AppURL string `yaml:"appURL"`
	// RunStatusInterval: a run whose command has run this long is asked about in Port this
	// often, so a run terminated there (a user set it to FAILURE, its workflow was
	// cancelled) stops here too; shorter runs cost no request for it.
	RunStatusInterval Duration `yaml:"runStatusInterval"`
	// InsecureHTTP allows an http:// baseURL whose host is not this machine (a test
	// emulator on a private network): the token request then carries the client secret in
	// clear text, so Validate refuses it otherwise.
	InsecureHTTP bool `yaml:"insecureHTTP"`
}

type Kafka struct {
	Brokers       []string `yaml:"brokers"`
	Topic         string   `yaml:"topic"`
	Group         string   `yaml:"group"`
	StartOffset   string   `yaml:"startOffset"`
	GroupProtocol string   `yaml:"groupProtocol"`
	SASL          SASL     `yaml:"sasl"`
	TLS           TLS      `yaml:"tls"`
	// SessionTimeout: a replica that stops heartbeating (crashed, frozen, cut off) loses its
	// partitions after this; its fence (Fence) is shorter (README "Delivery"). Classic
	// groups; with groupProtocol consumer the broker's group.consumer.session.timeout.ms
	// applies, which must not be shorter.
	SessionTimeout Duration `yaml:"sessionTimeout"`
	// MaxDecompressBatchBytes bounds what one fetched batch may decompress to: a batch
	// past it is skipped (README "Delivery"), so a small compressed record cannot take the
	// agent past its memory limit.
	MaxDecompressBatchBytes ByteSize `yaml:"maxDecompressBatchBytes"`
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
	// ClientSideKeyFiles name PEM RSA private keys of client-side secret inputs (Port's
	// browser encrypts those with the input's public key); see ClientSideKeys.
	ClientSideKeyFiles []string `yaml:"clientSideKeyFiles"`
}

// Verify reports whether run messages must carry a valid signature.
func (s Security) Verify() bool { return s.VerifySignature == nil || *s.VerifySignature }

type Executor struct {
	MaxConcurrent   int      `yaml:"maxConcurrent"`
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
	// PassEnv names variables copied from the agent's environment into every command's
	// (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, ...); never the agent's credentials.
	PassEnv []string `yaml:"passEnv"`
	// Sandbox is each run's kernel sandbox (README "Isolation"): auto (default: where the
	// kernel has Landlock), required (refuse to start without all of it) or off.
	Sandbox string `yaml:"sandbox"`
	// Private are more paths no sandboxed command may read, beside the agent's config file,
	// its credential files and the run directories.
	Private []string `yaml:"private"`
	// RunAs is a range of uids, "LO-HI", one of its own for each running run (needs
	// CAP_SETUID and CAP_SETGID); "": commands run as the agent's uid.
	RunAs string `yaml:"runAs"`
	// RunsDir is where run directories go ("": port-runner-<uid> under $TMPDIR, /dev/shm or
	// the system's temp dir). The sandbox keeps it from every command but each run's own.
	RunsDir string `yaml:"runsDir"`
	// Cgroups: each run gets cgroups of its own (its processes and memory limits) under the
	// agent's, which the agent must be able to write (a privileged pod, or a cgroup v2
	// subtree delegated to it); false: limits use rlimits only.
	Cgroups bool `yaml:"cgroups"`
	// Limits bound each run; an action's own limits replace them one by one.
	Limits Limits `yaml:"limits"`
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

// MaxConcurrentLimit bounds the pool of one replica. Runs that wait (approvals, long
// deployments) need more places than cores; a thousand sleeping runs fit in the memory and
// CPU of one replica (BENCHMARKS.md "Cost per run and a thousand runs at once"). One
// partition holds at most 100 of them, which its commit metadata can carry (README
// "Delivery").
const MaxConcurrentLimit = 1000

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
	if c.Kafka.SessionTimeout == 0 {
		c.Kafka.SessionTimeout = Duration(15 * time.Second)
	}
	c.applyPortWatchDefaults()
	c.applyTransportDefaults()
	if c.Kafka.MaxDecompressBatchBytes == 0 {
		c.Kafka.MaxDecompressBatchBytes = DefaultDecompressBatchBytes
	}
	if c.Security.MaxMessageAge == 0 {
		c.Security.MaxMessageAge = Duration(10 * time.Minute)
	}
	if c.Executor.MaxConcurrent == 0 {
		c.Executor.MaxConcurrent = 8
	}
	c.Executor.isolationDefaults()
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

// applyPortWatchDefaults: how often long runs are asked about in Port, and what an
// unmatched node run gets (README "Cancelled in Port", "Workflow node runs").
func (c *Config) applyPortWatchDefaults() {
	if c.Port.RunStatusInterval == 0 {
		c.Port.RunStatusInterval = Duration(30 * time.Second)
	}
	if c.WorkflowNodeRuns.Unmatched == "" {
		c.WorkflowNodeRuns.Unmatched = "leave"
	}
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
