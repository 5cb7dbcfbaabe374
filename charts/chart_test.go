// Package charts_test checks the deployment files that no compiler sees: the Helm chart
// (charts/port-runner), docker-compose.yaml and its deploy/ files, and the Dockerfile.
//
// There is no helm binary in CI, so the chart is rendered here by a small stand-in: Go's
// text/template with Helm's options and the few Sprig/Helm functions the templates use. A
// template that calls any other function fails to parse, so the stand-in cannot silently
// diverge from what the templates need. The configs (the chart's default `config:` and
// deploy/compose-config.yaml) go through the agent's own config.Parse and Validate.
package charts_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/port-runner/port-runner/config"
	"github.com/port-runner/port-runner/runmsg"
)

const (
	chartDir = "port-runner"
	repoRoot = ".."
	// imageAppDir is where the Dockerfile copies examples/ (WORKDIR /app).
	imageAppDir = "/app/"
	// postDrain is what the agent may still spend after executor.shutdownTimeout: closing
	// cancelled runs in Port (agent.Deps.CloseGrace, 30s) and the final commit (10s).
	postDrain = 40 * time.Second
)

// Values for every ${VAR} a deployment provides; the test checks each reference is bound.
var testEnv = map[string]string{
	"PORT_CLIENT_ID":     "client-id",
	"PORT_CLIENT_SECRET": "client-secret",
	"PORT_ORG_ID":        "org_test",
	"KAFKA_USERNAME":     "user",
	"KAFKA_PASSWORD":     "password",
	"KAFKA_BROKERS":      "b-1.example:9196",
	"PORT_BASE_URL":      "http://emulator:8080",
}

// imageLookPath accepts commands that exist in the image: /app/examples/... is the repo's
// examples/ (Dockerfile: COPY examples/ /app/examples/), and must be executable there.
func imageLookPath(t *testing.T) func(string) (string, error) {
	return func(cmd string) (string, error) {
		if !strings.HasPrefix(cmd, imageAppDir) {
			return "", fmt.Errorf("%s: not a path the image provides (want %s...)", cmd, imageAppDir)
		}
		local := filepath.Join(repoRoot, strings.TrimPrefix(cmd, imageAppDir))
		st, err := os.Stat(local)
		if err != nil {
			return "", err
		}
		if st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not executable", local)
		}
		return cmd, nil
	}
}

var refPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// checkAgentConfig runs raw through the agent's own Parse and Validate, with provided as
// the environment, and checks every ${VAR} without a default is provided.
func checkAgentConfig(t *testing.T, raw []byte, provided map[string]bool) *config.Config {
	t.Helper()
	for _, name := range unboundRefs(t, raw, provided) {
		t.Errorf("config references ${%s}, which the deployment does not set", name)
	}
	lookup := func(name string) (string, bool) {
		if !provided[name] {
			return "", false
		}
		v, ok := testEnv[name]
		if !ok {
			v = "x"
		}
		return v, true
	}
	cfg, err := config.Parse(raw, lookup)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, raw)
	}
	if err := cfg.Validate(runmsg.CompileSelector, imageLookPath(t)); err != nil {
		t.Fatalf("config is not valid:\n%v\n--- config ---\n%s", err, raw)
	}
	return cfg
}

// unboundRefs lists the ${VAR}s (without a :-default) in raw's values, comments aside,
// that provided lacks.
func unboundRefs(t *testing.T, raw []byte, provided map[string]bool) []string {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case string:
			for _, m := range refPattern.FindAllStringSubmatch(v, -1) {
				if m[2] == "" && !provided[m[1]] {
					out = append(out, m[1])
				}
			}
		}
	}
	walk(doc)
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func chartValues(t *testing.T) map[string]any {
	var v map[string]any
	readYAML(t, filepath.Join(chartDir, "values.yaml"), &v)
	return v
}

func keySet(ms ...any) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		if mm, ok := m.(map[string]any); ok {
			for k := range mm {
				out[k] = true
			}
		}
	}
	return out
}

// (a) The chart's default config, as values.yaml holds it, is a valid agent config for
// Port's managed Kafka (credentials from Port), and terminationGracePeriodSeconds covers the
// agent's drain.
func TestChartDefaultConfig(t *testing.T) {
	vals := chartValues(t)
	raw, err := yaml.Marshal(vals["config"])
	if err != nil {
		t.Fatal(err)
	}
	cfg := checkAgentConfig(t, raw, keySet(vals["env"], vals["secretEnv"]))

	k := cfg.Kafka
	if !k.FromPort() || k.SASL.Mechanism != "" {
		t.Errorf("default kafka = brokers %q, sasl %s; want none: the agent gets Port's managed Kafka credentials from Port", k.Brokers, k.SASL.Mechanism)
	}
	if want := testEnv["PORT_ORG_ID"] + ".port-runner"; k.Group != want {
		t.Errorf("kafka.group = %q, want %q (Port's <ORG_ID>.<name> rule)", k.Group, want)
	}
	if want := testEnv["PORT_ORG_ID"] + ".runs"; k.Topic != want {
		t.Errorf("kafka.topic = %q, want %q", k.Topic, want)
	}
	if !cfg.Security.Verify() {
		t.Error("security.verifySignature must stay on by default")
	}
	if len(cfg.Actions) == 0 {
		t.Error("want an example action")
	}

	grace, ok := vals["terminationGracePeriodSeconds"].(int)
	if !ok {
		t.Fatalf("terminationGracePeriodSeconds = %v, want an integer", vals["terminationGracePeriodSeconds"])
	}
	if g, min := time.Duration(grace)*time.Second, cfg.Executor.ShutdownTimeout.D()+postDrain; g <= min {
		t.Errorf("terminationGracePeriodSeconds = %v, must exceed executor.shutdownTimeout %v + %v", g, cfg.Executor.ShutdownTimeout, postDrain)
	}
}

// (b) deploy/compose-config.yaml is valid with the environment docker-compose.yaml gives it.
func TestComposeConfig(t *testing.T) {
	compose := loadCompose(t)
	svc := compose.Services["port-runner"]
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "compose-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := svc.envMap(t)
	provided := map[string]bool{}
	for k := range env {
		provided[k] = true
	}
	// Parse with the compose file's own values, not testEnv.
	for _, name := range unboundRefs(t, raw, provided) {
		t.Errorf("compose-config.yaml references ${%s}, not set in port-runner's environment", name)
	}
	cfg, err := config.Parse(raw, func(n string) (string, bool) { v, ok := env[n]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(runmsg.CompileSelector, imageLookPath(t)); err != nil {
		t.Fatalf("deploy/compose-config.yaml is not valid:\n%v", err)
	}
	if cfg.Kafka.Group != "org_local.port-runner" || cfg.Kafka.StartOffset != "earliest" || cfg.Kafka.Topic != "org_local.runs" {
		t.Errorf("kafka = group %q, startOffset %q, topic %q", cfg.Kafka.Group, cfg.Kafka.StartOffset, cfg.Kafka.Topic)
	}
	if cfg.Metrics.Addr != ":9464" {
		t.Errorf("metrics.addr = %q, want :9464 (Prometheus scrapes it)", cfg.Metrics.Addr)
	}

	// The agent talks to the emulator with the credentials the emulator accepts, and its
	// signatures verify with the same secret.
	emu := flagMap(compose.Services["emulator"].Command)
	for flag, envName := range map[string]string{"client-id": "PORT_CLIENT_ID", "client-secret": "PORT_CLIENT_SECRET", "org": "PORT_ORG_ID", "brokers": "KAFKA_BROKERS"} {
		if emu[flag] != env[envName] {
			t.Errorf("emulator --%s %q != port-runner %s %q", flag, emu[flag], envName, env[envName])
		}
	}
	if !strings.HasSuffix(env["PORT_BASE_URL"], ":"+portOf(emu["addr"])) || !strings.Contains(env["PORT_BASE_URL"], "//emulator:") {
		t.Errorf("PORT_BASE_URL %q does not reach the emulator on %s", env["PORT_BASE_URL"], emu["addr"])
	}

	// docker compose stop must leave the agent its whole drain.
	stop, err := time.ParseDuration(svc.StopGracePeriod)
	if err != nil {
		t.Fatalf("port-runner stop_grace_period %q: %v", svc.StopGracePeriod, err)
	}
	if min := cfg.Executor.ShutdownTimeout.D() + postDrain; stop <= min {
		t.Errorf("stop_grace_period %v must exceed executor.shutdownTimeout + %v = %v", stop, postDrain, min)
	}
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image           string         `yaml:"image"`
	Build           any            `yaml:"build"`
	Command         []string       `yaml:"command"`
	Environment     map[string]any `yaml:"environment"`
	Ports           []any          `yaml:"ports"`
	Volumes         []string       `yaml:"volumes"`
	StopGracePeriod string         `yaml:"stop_grace_period"`
	Healthcheck     map[string]any `yaml:"healthcheck"`
	Deploy          struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	DependsOn any `yaml:"depends_on"`
}

func (s composeService) envMap(t *testing.T) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		out[k] = fmt.Sprint(v)
	}
	return out
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, filepath.Join(repoRoot, "docker-compose.yaml"), &c)
	return c
}

// flagMap reads ["emulator", "--addr", "x", ...] into {"addr": "x"}.
func flagMap(argv []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(argv); i++ {
		if name, ok := strings.CutPrefix(argv[i], "--"); ok {
			if n, v, ok := strings.Cut(name, "="); ok {
				out[n] = v
			} else if i+1 < len(argv) {
				out[name] = argv[i+1]
				i++
			}
		}
	}
	return out
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return p
}

// (c) docker-compose.yaml: the services SPEC names, published ports only on 127.0.0.1,
// host paths that exist, and the monitoring wiring.
func TestCompose(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"kafka", "emulator", "port-runner", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			var host string
			switch p := p.(type) {
			case string:
				host = p
			case map[string]any: // long syntax
				host, _ = p["host_ip"].(string)
				host += ":"
			default:
				t.Errorf("%s: port %v: unexpected form", name, p)
				continue
			}
			if !strings.HasPrefix(host, "127.0.0.1:") {
				t.Errorf("%s: published port %v is not bound to 127.0.0.1", name, p)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("%s: volume %s: %v", name, v, err)
				}
			}
		}
	}
	pr := c.Services["port-runner"]
	if pr.Deploy.Replicas < 2 {
		t.Errorf("port-runner replicas = %d, want 2 (one consumer group)", pr.Deploy.Replicas)
	}
	if len(pr.Ports) > 0 {
		t.Error("port-runner has replicas: it cannot publish fixed host ports")
	}
	if hc := fmt.Sprint(pr.Healthcheck["test"]); !strings.Contains(hc, ":9464/healthz") {
		t.Errorf("port-runner healthcheck %s, want /healthz on :9464", hc)
	}
	if pr.Build == nil || pr.Image == "" || pr.Image != c.Services["emulator"].Image {
		t.Error("port-runner and emulator should be built from . into one image")
	}

	// Prometheus scrapes each replica's metrics port.
	var prom struct {
		ScrapeConfigs []struct {
			DNSSD []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(repoRoot, "deploy", "prometheus.yml"), &prom)
	found := false
	for _, sc := range prom.ScrapeConfigs {
		for _, d := range sc.DNSSD {
			if slices.Contains(d.Names, "port-runner") && d.Port == 9464 {
				found = true
			}
		}
	}
	if !found {
		t.Error("deploy/prometheus.yml does not scrape port-runner:9464")
	}

	// Grafana: the provisioned datasource. The dashboard itself (charts/port-runner/files/
	// dashboards, mounted above) is checked by monitoringtest/ against the agent's registry.
	var ds struct {
		Datasources []struct {
			UID string `yaml:"uid"`
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(repoRoot, "deploy", "grafana", "provisioning", "datasources", "prometheus.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Fatalf("grafana datasource: %+v", ds.Datasources)
	}
	if !slices.Contains(c.Services["grafana"].Volumes, "./charts/port-runner/files/dashboards:/var/lib/grafana/dashboards:ro") {
		t.Errorf("grafana does not mount the chart's dashboards: %v", c.Services["grafana"].Volumes)
	}
}

// The Dockerfile's user, port and example path agree with the chart and the configs.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []string{
		"FROM golang:1.26 AS build",
		"FROM debian:bookworm-slim",
		"USER 10001:10001",
		"EXPOSE 9464",
		"WORKDIR /app",
		"COPY examples/ /app/examples/",
		`ENTRYPOINT ["tini", "--", "port-runner"]`,
		`CMD ["run", "--config", "/etc/port-runner/config.yaml"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	psc := chartValues(t)["podSecurityContext"].(map[string]any)
	if psc["runAsUser"] != 10001 || psc["runAsNonRoot"] != true {
		t.Errorf("chart podSecurityContext %v does not match the image's USER 10001", psc)
	}
}

// ---- the chart, rendered -----------------------------------------------------------------

type manifest = map[string]any

// renderChart renders every template with values.yaml merged with overrides, as
// `helm template` would, and returns the manifests by kind and the NOTES text.
func renderChart(t *testing.T, overrides map[string]any) (map[string]manifest, string) {
	t.Helper()
	vals := chartValues(t)
	mergeInto(vals, overrides)
	var chart map[string]any
	readYAML(t, filepath.Join(chartDir, "Chart.yaml"), &chart)
	if chart["apiVersion"] != "v2" || chart["appVersion"] == nil {
		t.Fatalf("Chart.yaml: apiVersion %v, appVersion %v", chart["apiVersion"], chart["appVersion"])
	}
	top := map[string]any{
		"Values":  vals,
		"Release": map[string]any{"Name": "port-runner", "Namespace": "runners", "Service": "Helm", "IsInstall": true},
		"Chart": map[string]any{"Name": chart["name"], "Version": chart["version"],
			"AppVersion": fmt.Sprint(chart["appVersion"])},
	}

	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v", err)
	}
	root := template.New("chart").Option("missingkey=zero")
	root.Funcs(helmFuncs(root))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.New(filepath.Base(f)).Parse(string(b)); err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
	}
	byKind := map[string]manifest{}
	var notes string
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, top); err != nil {
			t.Fatalf("render %s: %v", name, err)
		}
		out := strings.ReplaceAll(buf.String(), "<no value>", "")
		if os.Getenv("CHART_TEST_DUMP") != "" {
			t.Logf("--- %s ---\n%s", name, out)
		}
		if name == "NOTES.txt" {
			notes = out
			continue
		}
		if strings.TrimSpace(out) == "" {
			continue // disabled by values
		}
		var m manifest
		if err := yaml.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%s renders invalid YAML: %v\n%s", name, err, out)
		}
		kind, _ := m["kind"].(string)
		if m["apiVersion"] == nil || kind == "" {
			t.Fatalf("%s: no apiVersion/kind:\n%s", name, out)
		}
		if _, dup := byKind[kind]; dup {
			t.Fatalf("two %s manifests", kind)
		}
		if get(m, "metadata", "namespace") != "runners" {
			t.Errorf("%s: metadata.namespace = %v", name, get(m, "metadata", "namespace"))
		}
		byKind[kind] = m
	}
	return byKind, notes
}

// mergeInto deep-merges src into dst, as helm merges --set/-f over values.yaml.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeInto(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// get walks nested maps and lists (by int index).
func get(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[p]
		case int:
			l, ok := v.([]any)
			if !ok || p >= len(l) {
				return nil
			}
			v = l[p]
		}
	}
	return v
}

func TestChartRendersDefaults(t *testing.T) {
	kinds, notes := renderChart(t, nil)
	for _, k := range []string{"Deployment", "ConfigMap", "Secret", "Service", "PodDisruptionBudget"} {
		if kinds[k] == nil {
			t.Errorf("no %s rendered by default", k)
		}
	}
	for _, k := range []string{"ServiceMonitor", "ServiceAccount"} {
		if kinds[k] != nil {
			t.Errorf("%s rendered, but it is off by default", k)
		}
	}
	vals := chartValues(t)

	// The ConfigMap's config.yaml is what the agent reads: parse and validate it as the agent does.
	cm := kinds["ConfigMap"]
	cfgText, _ := get(cm, "data", "config.yaml").(string)
	checkAgentConfig(t, []byte(cfgText), keySet(vals["env"], vals["secretEnv"]))

	dep := kinds["Deployment"]
	spec := get(dep, "spec", "template", "spec")
	c := get(spec, "containers", 0)
	if get(dep, "spec", "replicas") != 2 {
		t.Errorf("replicas = %v, want 2", get(dep, "spec", "replicas"))
	}
	if got := fmt.Sprint(get(c, "args")); got != "[run --config /etc/port-runner/config.yaml]" {
		t.Errorf("args = %s", got)
	}
	if get(c, "image") != "ghcr.io/port-runner/port-runner:0.1.0" {
		t.Errorf("image = %v, want the appVersion tag", get(c, "image"))
	}
	if get(c, "ports", 0, "containerPort") != 9464 || get(c, "ports", 0, "name") != "metrics" {
		t.Errorf("ports = %v, want metrics 9464 (config.metrics.addr)", get(c, "ports"))
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if get(c, probe, "httpGet", "path") != path || get(c, probe, "httpGet", "port") != "metrics" {
			t.Errorf("%s = %v, want GET %s on metrics", probe, get(c, probe), path)
		}
	}
	if get(spec, "terminationGracePeriodSeconds") != vals["terminationGracePeriodSeconds"] {
		t.Errorf("terminationGracePeriodSeconds = %v", get(spec, "terminationGracePeriodSeconds"))
	}
	if get(spec, "enableServiceLinks") != false {
		t.Error("enableServiceLinks must be false (it injects PORT_RUNNER_* variables)")
	}
	if get(c, "envFrom", 0, "secretRef", "name") != get(kinds["Secret"], "metadata", "name") {
		t.Errorf("envFrom %v does not reference the chart's Secret", get(c, "envFrom"))
	}
	if got := keySet(get(kinds["Secret"], "stringData")); !reflect.DeepEqual(got, keySet(vals["secretEnv"])) {
		t.Errorf("Secret keys %v, want secretEnv's", slices.Sorted(maps.Keys(got)))
	}
	env := map[string]bool{}
	for _, e := range get(c, "env").([]any) {
		env[get(e, "name").(string)] = true
	}
	for k := range keySet(vals["env"]) {
		if !env[k] {
			t.Errorf("env %s not set on the container", k)
		}
	}
	sum := sha256.Sum256([]byte(mustYAML(t, vals["config"])))
	if get(dep, "spec", "template", "metadata", "annotations", "checksum/config") != hex.EncodeToString(sum[:]) {
		t.Errorf("checksum/config annotation = %v", get(dep, "spec", "template", "metadata", "annotations", "checksum/config"))
	}
	mounts := map[string]any{}
	for _, m := range get(c, "volumeMounts").([]any) {
		mounts[get(m, "mountPath").(string)] = get(m, "name")
	}
	if mounts["/etc/port-runner"] != "config" || mounts["/tmp"] == nil || mounts["/home/port-runner"] == nil {
		t.Errorf("volumeMounts %v: want the config at /etc/port-runner and writable /tmp and HOME", mounts)
	}
	if get(spec, "volumes", 0, "configMap", "name") != get(cm, "metadata", "name") {
		t.Errorf("config volume %v does not reference the ConfigMap", get(spec, "volumes", 0))
	}
	if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(spec, "securityContext", "runAsNonRoot") != true {
		t.Error("want a non-root pod with a read-only root filesystem")
	}

	sel := get(dep, "spec", "selector", "matchLabels")
	for _, k := range []string{"Service", "PodDisruptionBudget"} {
		path := []any{"spec", "selector"}
		if k == "PodDisruptionBudget" {
			path = append(path, "matchLabels")
		}
		if got := get(kinds[k], path...); !reflect.DeepEqual(got, sel) {
			t.Errorf("%s selector %v != Deployment's %v", k, got, sel)
		}
	}
	if !reflect.DeepEqual(get(dep, "spec", "template", "metadata", "labels"), sel) {
		t.Errorf("pod labels %v do not match the selector %v", get(dep, "spec", "template", "metadata", "labels"), sel)
	}
	if get(kinds["Service"], "spec", "ports", 0, "port") != 9464 {
		t.Errorf("Service port = %v", get(kinds["Service"], "spec", "ports", 0))
	}
	if !strings.Contains(notes, "create_microservice") || !strings.Contains(notes, "WARNING: env.PORT_ORG_ID is empty") {
		t.Errorf("NOTES.txt:\n%s", notes)
	}
}

func TestChartRendersOptions(t *testing.T) {
	kinds, notes := renderChart(t, map[string]any{
		"existingSecret":      "my-creds",
		"fullnameOverride":    "runner",
		"env":                 map[string]any{"PORT_ORG_ID": "org_1", "KAFKA_BROKERS": "b:9196"},
		"serviceMonitor":      map[string]any{"enabled": true, "labels": map[string]any{"release": "kps"}},
		"serviceAccount":      map[string]any{"create": true, "annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:x"}},
		"podAnnotations":      map[string]any{"a": "b"},
		"podLabels":           map[string]any{"team": "platform"},
		"extraEnv":            []any{map[string]any{"name": "X", "value": "1"}},
		"extraVolumes":        []any{map[string]any{"name": "work", "emptyDir": map[string]any{}}},
		"extraVolumeMounts":   []any{map[string]any{"name": "work", "mountPath": "/work"}},
		"nodeSelector":        map[string]any{"kubernetes.io/os": "linux"},
		"tolerations":         []any{map[string]any{"key": "k", "operator": "Exists"}},
		"podDisruptionBudget": map[string]any{"enabled": false},
		"config":              map[string]any{"metrics": map[string]any{"addr": "0.0.0.0:9100"}},
	})
	if kinds["Secret"] != nil {
		t.Error("a Secret is rendered although existingSecret is set")
	}
	if kinds["PodDisruptionBudget"] != nil {
		t.Error("PDB rendered although disabled")
	}
	sm := kinds["ServiceMonitor"]
	if sm == nil || get(sm, "spec", "endpoints", 0, "port") != "metrics" || get(sm, "metadata", "labels", "release") != "kps" {
		t.Errorf("ServiceMonitor = %v", sm)
	}
	dep := kinds["Deployment"]
	if get(dep, "metadata", "name") != "runner" {
		t.Errorf("name = %v, want the fullnameOverride", get(dep, "metadata", "name"))
	}
	spec := get(dep, "spec", "template", "spec")
	c := get(spec, "containers", 0)
	if get(c, "envFrom", 0, "secretRef", "name") != "my-creds" {
		t.Errorf("envFrom = %v, want existingSecret", get(c, "envFrom"))
	}
	if get(dep, "spec", "template", "metadata", "annotations", "checksum/secret") != nil {
		t.Error("checksum/secret set for an existingSecret")
	}
	if get(dep, "spec", "template", "metadata", "annotations", "a") != "b" || get(dep, "spec", "template", "metadata", "labels", "team") != "platform" {
		t.Error("podAnnotations/podLabels not applied")
	}
	if get(spec, "serviceAccountName") != "runner" || get(kinds["ServiceAccount"], "metadata", "annotations", "eks.amazonaws.com/role-arn") != "arn:x" {
		t.Errorf("serviceAccount: %v / %v", get(spec, "serviceAccountName"), kinds["ServiceAccount"])
	}
	if get(c, "ports", 0, "containerPort") != 9100 || get(kinds["Service"], "spec", "ports", 0, "port") != 9100 {
		t.Errorf("metrics port does not follow config.metrics.addr: %v", get(c, "ports"))
	}
	names := fmt.Sprint(get(c, "env"))
	if !strings.Contains(names, "name:X") || !strings.Contains(names, "value:org_1") {
		t.Errorf("env = %s", names)
	}
	if fmt.Sprint(get(spec, "volumes", 3, "name")) != "work" || fmt.Sprint(get(c, "volumeMounts", 3, "mountPath")) != "/work" {
		t.Errorf("extra volumes: %v / %v", get(spec, "volumes"), get(c, "volumeMounts"))
	}
	if get(spec, "nodeSelector", "kubernetes.io/os") != "linux" || get(spec, "tolerations", 0, "key") != "k" {
		t.Error("nodeSelector/tolerations not applied")
	}
	if strings.Contains(notes, "WARNING") || !strings.Contains(notes, `Secret "my-creds"`) {
		t.Errorf("NOTES.txt:\n%s", notes)
	}
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	s, err := toYAML(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// toYAML is Helm's toYaml: the document without its trailing newline.
func toYAML(v any) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// helmFuncs is the part of Helm's function map (Sprig plus include) the templates use,
// with Sprig's semantics.
func helmFuncs(root *template.Template) template.FuncMap {
	return template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var buf bytes.Buffer
			err := root.ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"toYaml": func(v any) string {
			s, err := toYAML(v)
			if err != nil {
				return ""
			}
			return s
		},
		"default": func(d any, v ...any) any {
			if len(v) == 0 || empty(v[0]) {
				return d
			}
			return v[0]
		},
		"quote": func(v ...any) string {
			out := make([]string, 0, len(v))
			for _, s := range v {
				if s != nil {
					out = append(out, strconv.Quote(fmt.Sprint(s)))
				}
			}
			return strings.Join(out, " ")
		},
		"toString":   func(v any) string { return fmt.Sprint(v) },
		"trunc":      func(n int, s string) string { return s[:min(n, len(s))] },
		"trimSuffix": func(suf, s string) string { return strings.TrimSuffix(s, suf) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"indent":     func(n int, s string) string { return indent(n, s) },
		"nindent":    func(n int, s string) string { return "\n" + indent(n, s) },
		"sha256sum": func(s string) string {
			h := sha256.Sum256([]byte(s))
			return hex.EncodeToString(h[:])
		},
		"splitList": func(sep, s string) []string { return strings.Split(s, sep) },
		"last": func(l []string) string {
			if len(l) == 0 {
				return ""
			}
			return l[len(l)-1]
		},
		"dig": func(args ...any) (any, error) {
			if len(args) < 3 {
				return nil, fmt.Errorf("dig: want keys, a default and a map")
			}
			m, ok := args[len(args)-1].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("dig: last argument is %T, not map[string]interface{}", args[len(args)-1])
			}
			def := args[len(args)-2]
			var cur any = m
			for _, k := range args[:len(args)-2] {
				cm, ok := cur.(map[string]any)
				if !ok {
					return def, nil
				}
				if cur, ok = cm[k.(string)]; !ok {
					return def, nil
				}
			}
			return cur, nil
		},
		"keys": func(m map[string]any) []string { return slices.Collect(maps.Keys(m)) },
		"sortAlpha": func(l []string) []string {
			return slices.Sorted(slices.Values(l))
		},
		"join": func(sep string, l []string) string { return strings.Join(l, sep) },
	}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// empty is Sprig's notion of an empty value.
func empty(v any) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String, reflect.Array, reflect.Map, reflect.Slice:
		return r.Len() == 0
	case reflect.Bool:
		return !r.Bool()
	case reflect.Int, reflect.Int64, reflect.Int32:
		return r.Int() == 0
	case reflect.Float64, reflect.Float32:
		return r.Float() == 0
	case reflect.Pointer, reflect.Interface:
		return r.IsNil()
	}
	return false
}
