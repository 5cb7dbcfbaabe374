package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// CompileFunc checks one jq expression; the message package provides it, so config stays
// free of jq and Kafka knowledge while still validating expressions.
type CompileFunc func(expr string) error

// credentialEnv are the variables that conventionally hold the agent's credentials
// (README, chart): executor.passEnv may never name them.
var credentialEnv = [...]string{"PORT_CLIENT_ID", "PORT_CLIENT_SECRET", "KAFKA_USERNAME", "KAFKA_PASSWORD"}

// Validate checks the config and returns Problems (nil when valid); it changes nothing.
// compile checks jq expressions; lookPath checks commands (exec.LookPath in production).
func (c *Config) Validate(compile CompileFunc, lookPath func(string) (string, error)) error {
	var ps Problems
	add := func(err error) { ps = append(ps, err) }
	validatePort(c.Port, add)
	c.validateTransport(add)
	validateSecurity(c.Security, add)
	validateExecutor(c.Executor, add)
	validateIsolation(c.Executor, add)
	validateLogs(c.Logs, add)
	validateMessage(c.Message, compile, add)
	if !oneOf(c.WorkflowNodeRuns.Unmatched, "leave", "fail") {
		add(problem("workflowNodeRuns.unmatched", "must be leave or fail, got %q", c.WorkflowNodeRuns.Unmatched))
	}
	if len(c.Actions) == 0 {
		add(problem("actions", "at least one action is required"))
	}
	for _, name := range c.ActionNames() {
		validateAction("actions."+name, c.Actions[name], c.Executor.Cgroups, compile, lookPath, add)
	}
	if len(ps) == 0 {
		return nil
	}
	return hideEnvValues(ps, c.fromEnv)
}

func validatePort(p Port, add func(error)) {
	switch {
	case !strings.HasPrefix(p.BaseURL, "http://") && !strings.HasPrefix(p.BaseURL, "https://"):
		add(problem("port.baseURL", "must be an http(s) URL, got %q", ShownURL(p.BaseURL)))
	case strings.HasPrefix(p.BaseURL, "http://") && !p.InsecureHTTP && !loopbackURL(p.BaseURL):
		add(problem("port.baseURL", "http:// sends the client secret unencrypted: use https://, or http:// only to localhost or a loopback address (port.insecureHTTP: true allows another host, for a test emulator on a private network), got %q", ShownURL(p.BaseURL)))
	}
	if a := p.AppURL; a != "" && !strings.HasPrefix(a, "http://") && !strings.HasPrefix(a, "https://") {
		add(problem("port.appURL", "must be an http(s) URL, got %q", a))
	}
	if p.ClientID == "" {
		add(problem("port.clientID", "required (set PORT_CLIENT_ID or write it in the file)"))
	}
	if p.ClientSecret == "" {
		add(problem("port.clientSecret", "required (set PORT_CLIENT_SECRET, write it in the file, or name a file with port.clientSecretFile)"))
	}
	if p.CAFile != "" {
		if _, err := os.Stat(p.CAFile); err != nil {
			add(problem("port.caFile", "%v", err))
		}
	}
	// NaN compares false with everything and +Inf means no limit: both would turn the
	// limiter off, so only finite positive rates pass.
	if rps := p.RequestsPerSecond; rps < 0 || math.IsNaN(rps) || math.IsInf(rps, 0) {
		add(problem("port.requestsPerSecond", "must be a finite positive number, got %v", rps))
	}
	if d := p.RunStatusInterval.D(); d < time.Second || d > time.Hour {
		add(problem("port.runStatusInterval", "must be between 1s and 1h (each check of long runs costs a Port request), got %s", d))
	}
}

// loopbackURL reports whether u's host is this machine: "localhost" or a loopback IP literal
// (127.0.0.0/8, ::1). Names are not resolved: validation does not depend on DNS.
func loopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := parsed.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateKafka(k Kafka, add func(error)) {
	for i, b := range k.Brokers {
		if strings.Contains(b, ",") {
			add(problem(fmt.Sprintf("kafka.brokers[%d]", i), "one broker per element, got the comma list %q (write brokers: ${VAR} without brackets to split a comma list)", b))
		} else if b == "" || !strings.Contains(b, ":") {
			add(problem(fmt.Sprintf("kafka.brokers[%d]", i), "want host:port, got %q", b))
		}
	}
	if k.Topic == "" {
		add(problem("kafka.topic", "required when port.orgID is not set (the default is <orgID>.runs)"))
	}
	if k.Group == "" && !k.FromPort() {
		add(problem("kafka.group", `required: Port's rule is "<ORG_ID>.<name>" or the Kafka username`))
	}
	if k.FromPort() && k.SASL.Mechanism != "" {
		add(problem("kafka.sasl", "set kafka.brokers too, or neither: without brokers the agent gets brokers and SASL credentials from Port"))
	}
	if !oneOf(k.StartOffset, "latest", "earliest") {
		add(problem("kafka.startOffset", "must be latest or earliest, got %q", k.StartOffset))
	}
	if !oneOf(k.GroupProtocol, "classic", "consumer") {
		add(problem("kafka.groupProtocol", "must be classic or consumer, got %q", k.GroupProtocol))
	}
	validateSASL(k.SASL, add)
	if k.TLS.CAFile != "" {
		if _, err := os.Stat(k.TLS.CAFile); err != nil {
			add(problem("kafka.tls.caFile", "%v", err))
		}
	}
	if s := k.SessionTimeout.D(); s < MinSessionTimeout || s > MaxSessionTimeout {
		add(problem("kafka.sessionTimeout", "must be between %s and %s (what brokers accept by default), got %s; the fence is 2/3 of it",
			MinSessionTimeout, MaxSessionTimeout, s))
	}
	if b := k.MaxDecompressBatchBytes; b < MinDecompressBatchBytes || b > MaxDecompressBatchBytes {
		add(problem("kafka.maxDecompressBatchBytes", "must be between %s (a producer's batch: a 1MiB run message, a zstd window of up to 8MiB) and %s (a batch at the bound takes up to about three times it of the agent's memory), got %s",
			ByteSize(MinDecompressBatchBytes), ByteSize(MaxDecompressBatchBytes), k.MaxDecompressBatchBytes))
	}
}

func validateSASL(s SASL, add func(error)) {
	switch s.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if s.Username == "" {
			add(problem("kafka.sasl.username", "required with mechanism %s", s.Mechanism))
		}
		if s.Password == "" {
			add(problem("kafka.sasl.password", "required with mechanism %s (or kafka.sasl.passwordFile)", s.Mechanism))
		}
	default:
		add(problem("kafka.sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", s.Mechanism))
	}
}

func validateSecurity(s Security, add func(error)) {
	if s.MaxMessageAge.D() < time.Minute {
		add(problem("security.maxMessageAge", "must be at least 1m (older signed messages cost one Port request each), got %s", s.MaxMessageAge.D()))
	}
	if !oneOf(s.RunIsolation, "process", "token") {
		add(problem("security.runIsolation", "must be process or token, got %q", s.RunIsolation))
	}
	for i, f := range s.ClientSideKeyFiles {
		if _, err := readPrivateKey(f); err != nil {
			add(problem(fmt.Sprintf("security.clientSideKeyFiles[%d]", i), "%v", err))
		}
	}
}

func validateExecutor(e Executor, add func(error)) {
	if e.MaxConcurrent < 1 {
		add(problem("executor.maxConcurrent", "must be at least 1, got %d", e.MaxConcurrent))
	} else if e.MaxConcurrent > MaxConcurrentLimit {
		add(problem("executor.maxConcurrent", "at most %d per replica (scale out with replicas), got %d", MaxConcurrentLimit, e.MaxConcurrent))
	}
	if e.ShutdownTimeout < 0 {
		add(problem("executor.shutdownTimeout", "must not be negative"))
	}
	for i, n := range e.PassEnv {
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
}

func validateLogs(l Logs, add func(error)) {
	if l.FlushInterval <= 0 {
		add(problem("logs.flushInterval", "must be positive"))
	}
	if l.MaxBatchBytes <= 0 || l.MaxBatchBytes > maxBatchLimit {
		add(problem("logs.maxBatchBytes", "must be between 1 and %s (Port rejects requests over 1MiB), got %d", ByteSize(maxBatchLimit), l.MaxBatchBytes))
	}
	if l.MaxBytesPerRun <= 0 {
		add(problem("logs.maxBytesPerRun", "must be positive"))
	}
}

func validateMessage(m Message, compile CompileFunc, add func(error)) {
	for key, expr := range map[string]string{
		"message.runId": m.RunID, "message.action": m.Action,
		"message.properties": m.Properties, "message.entity": m.Entity,
	} {
		if err := compile(expr); err != nil {
			add(jqProblem(key, expr, err))
		}
	}
}

// validateAction checks one action; key is "actions.<name>".
func validateAction(key string, a Action, cgroups bool, compile CompileFunc, lookPath func(string) (string, error), add func(error)) {
	if len(a.Command) == 0 || a.Command[0] == "" {
		add(problem(key+".command", "required: the argv to run"))
	} else if _, err := lookPath(a.Command[0]); err != nil {
		add(problem(key+".command", "%q is not an executable: %v", a.Command[0], err))
	}
	validateActionEnv(key, a.Env, compile, add)
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
	if a.When != "" {
		if err := compile(a.When); err != nil {
			add(jqProblem(key+".when", a.When, err))
		}
	}
	if wn := a.WorkflowNode; wn != nil {
		if wn.URL == "" && wn.Workflow == "" && wn.Node == "" && wn.Selector == "" {
			add(problem(key+".workflowNode", "give url, workflow, node or selector: an empty match would take every node run"))
		}
		if wn.Selector != "" {
			if err := compile(wn.Selector); err != nil {
				add(jqProblem(key+".workflowNode.selector", wn.Selector, err))
			}
		}
	}
	validateActionSandbox(key, a.Sandbox, add)
	validateLimits(key+".limits", a.Limits, add)
	if a.Limits.Memory > 0 && !cgroups {
		add(problem(key+".limits.memory", "needs executor.cgroups: a run's memory is bounded by its memory cgroup"))
	}
	for i, p := range a.PortAPI.Allow {
		if _, err := ParseAllowRule(p); err != nil {
			add(problem(fmt.Sprintf("%s.portAPI.allow[%d]", key, i), "%v", err))
		}
	}
}

func validateActionEnv(key string, env map[string]string, compile CompileFunc, add func(error)) {
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !validEnvName(n) {
			add(problem(key+".env."+n, "not a valid environment variable name"))
		}
		if strings.HasPrefix(n, "PORT_") {
			add(problem(key+".env."+n, "the PORT_ prefix is reserved for variables the agent sets"))
		}
		if err := compile(env[n]); err != nil {
			add(jqProblem(key+".env."+n, env[n], err))
		}
	}
}

func oneOf(v string, allowed ...string) bool { return slices.Contains(allowed, v) }

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
