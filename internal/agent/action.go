package agent

import (
	"context"
	"crypto/rsa"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/itchyny/gojq"

	"github.com/port-runner/port-runner/executor"
	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/jqerr"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// action is a configured action with its env expressions compiled once.
type action struct {
	name  string
	cfg   config.Action
	env   []envExpr // by name: the order spec evaluates them in
	shim  []string
	iso   executor.Isolation // its sandbox, uid and limits (Runs is set per run)
	allow []config.AllowRule // portAPI.allow
	pass  map[string]string  // executor.passEnv, read from the agent's environment at start
	// passSecrets: what of pass is masked in each run's log (envSecrets), worked out once.
	passSecrets []string
	// node selects the workflow node runs this action takes (nil: none), when the runs this
	// deployment takes (nil: all); secretKey (the Port client secret) and keys
	// (security.clientSideKeyFiles) decrypt its secret inputs. See route.go, secrets.go.
	node      *nodeMatcher
	when      *gojq.Code
	secretKey string
	keys      []*rsa.PrivateKey
}

// envExpr is one env entry of an action: its variable's name and its compiled expression.
type envExpr struct {
	name string
	code *gojq.Code
}

func newAction(name string, ac config.Action, shim []string) (*action, error) {
	a := &action{name: name, cfg: ac, shim: shim}
	for _, envName := range slices.Sorted(maps.Keys(ac.Env)) {
		code, err := compileJQ("actions."+name+".env."+envName, ac.Env[envName])
		if err != nil {
			return nil, err
		}
		a.env = append(a.env, envExpr{envName, code})
	}
	if ac.When != "" {
		code, err := compileJQ("actions."+name+".when", ac.When)
		if err != nil {
			return nil, err
		}
		a.when = code
	}
	if wn := ac.WorkflowNode; wn != nil {
		m, err := newNodeMatcher(name, *wn)
		if err != nil {
			return nil, err
		}
		a.node = m
	}
	rules, err := config.ParseAllowRules(ac.PortAPI.Allow)
	if err != nil {
		return nil, fmt.Errorf("actions.%s.portAPI.%w", name, err)
	}
	a.allow = rules
	return a, nil
}

// passedEnv reads executor.passEnv from the agent's environment once, at start. Validation
// refuses the conventional credential names; a variable of another name containing one of
// the agent's credentials (config.AgentSecrets) is refused here, where the values are known.
func passedEnv(cfg *config.Config, lookup func(string) (string, bool)) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range cfg.Executor.PassEnv {
		v, ok := lookup(n)
		if !ok {
			continue
		}
		for _, cred := range cfg.AgentSecrets() {
			if strings.Contains(v, cred) {
				return nil, fmt.Errorf("executor.passEnv: %s holds one of the agent's credentials (port.clientSecret, kafka.sasl.password); commands never get them", n)
			}
		}
		out[n] = v
	}
	return out, nil
}

// secretSuffixes name env entries whose values are masked in the run's log.
var secretSuffixes = [...]string{"_TOKEN", "_SECRET", "_PASSWORD", "_KEY"}

// isSecretName reports whether an env entry's value is masked in the run's log, whatever
// the name's case.
func isSecretName(n string) bool {
	for _, suf := range secretSuffixes {
		if len(n) >= len(suf) && strings.EqualFold(n[len(n)-len(suf):], suf) {
			return true
		}
	}
	return false
}

// envSecrets are what of env entry n=v is masked in the run's log: all of v under a
// secret's name, else the password of a URL v holds (HTTPS_PROXY=http://user:pass@proxy,
// DATABASE_URL=postgres://user:pass@db/app).
func envSecrets(n, v string) []string {
	if isSecretName(n) {
		return []string{v}
	}
	if !strings.Contains(v, "://") || !strings.Contains(v, "@") {
		return nil // not a URL with credentials: spares the parse on every run
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return nil
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return nil
	}
	// As written too, where it is percent-encoded (p%40ss for p@ss): cut from v itself, as
	// re-encoding it could spell it otherwise (%2f, not %2F).
	if written := writtenPassword(v); written != "" && written != pw {
		return []string{pw, written}
	}
	return []string{pw}
}

// writtenPassword is the password of URL v as v writes it: between the userinfo's first
// ':' and the authority's last '@'.
func writtenPassword(v string) string {
	_, rest, _ := strings.Cut(v, "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}

// Variables the agent sets for the Port API proxy (README "Scripts calling Port"). The config
// reserves the PORT_ prefix, and they are set after the configured env, so no configured
// value can replace them.
const (
	envPortAPIURL   = "PORT_API_URL"
	envPortAPIToken = "PORT_API_TOKEN"
)

// withPortAPI gives the command the proxy's URL and its run's token, in spec.Env, which is
// the run's own (spec made it).
func withPortAPI(spec *executor.Spec, url, token string) {
	spec.Env[envPortAPIURL] = url
	spec.Env[envPortAPIToken] = token
}

// blueprint is the run's blueprint identifier from its context, "" when it has none.
func blueprint(run runmsg.Run) string {
	s, _ := run.Context["blueprint"].(string)
	return s
}

// spec evaluates the env expressions over the run context and returns the command to run
// and the values to mask.
func (a *action) spec(run runmsg.Run) (_ executor.Spec, secrets []string, err error) {
	run, secrets, err = a.decryptInputs(run)
	if err != nil {
		return executor.Spec{}, nil, err
	}
	// An error about a value (a jq type error quotes it) must not carry a decrypted secret
	// into a label or the agent's log.
	plain := secrets // a failing return clears secrets before the deferred scrub runs
	defer func() { err = scrub(err, plain) }()
	ctxJSON, err := run.ContextJSON()
	if err != nil {
		return executor.Spec{}, nil, fmt.Errorf("run context: %w", err)
	}
	// runmsg gives the context in the value types gojq takes, and gojq never modifies its input.
	input := map[string]any(run.Context)
	// The run's own: its run files and the Port API variables are added to it (withPortAPI).
	env := make(map[string]string, len(a.pass)+len(a.env)+envAdded)
	// Passed variables first: an action's own env entry of the same name wins.
	maps.Copy(env, a.pass)
	secrets = append(secrets, a.passSecrets...)
	if len(a.env) == 0 {
		return a.specOf(run, env, ctxJSON), secrets, nil // no expressions: no timer for them
	}
	// All of them together get the time a message's selectors get: one that never ends
	// (`def f: f; f`) must not hold the run's slot and its partition's commit forever.
	ctx, cancel := context.WithTimeout(context.Background(), runmsg.SelectorTimeout)
	defer cancel()
	for _, e := range a.env {
		v, err := evalString(ctx, e.code, input)
		if err != nil {
			// Neither the error's text nor the expression: gojq quotes the value it failed on,
			// which may be a secret input, and an expression may hold a literal secret.
			return executor.Spec{}, nil, fmt.Errorf("env %s: %s", e.name, jqerr.Kind(err))
		}
		env[e.name] = v
		secrets = append(secrets, envSecrets(e.name, v)...)
	}
	return a.specOf(run, env, ctxJSON), secrets, nil
}

// specOf is the command to run for run, with env and the run file.
func (a *action) specOf(run runmsg.Run, env map[string]string, runFile []byte) executor.Spec {
	return executor.Spec{
		RunID:     run.ID,
		Action:    run.Action,
		Argv:      a.cfg.Command,
		Env:       env,
		Dir:       a.cfg.Workdir,
		Timeout:   a.cfg.Timeout.D(),
		RunFile:   runFile,
		Shim:      a.shim,
		Isolation: a.iso,
	}
}

// evalString takes an expression's first result: a string as is, null as "", anything
// else as JSON (README "What a command sees").
func evalString(ctx context.Context, code *gojq.Code, input any) (string, error) {
	iter := code.RunWithContext(ctx, input)
	v, ok := iter.Next()
	if !ok {
		return "", nil
	}
	if err, isErr := v.(error); isErr {
		return "", err
	}
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	}
	b, err := gojq.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
