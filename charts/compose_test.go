package charts_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
)

// loadCompose loads docker-compose.yaml as `docker compose` does (compose-go: the spec's
// schema, interpolation, merge keys, relative paths), with an empty environment.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "deploy", "docker-compose.yaml")},
		cli.WithWorkingDirectory(filepath.Join(root, "deploy")), cli.WithName("port-runner"), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("service %q missing", name)
	}
	return s
}

func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// mountOf is the host source of the volume s mounts at target ("" if none).
func mountOf(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v.Source
		}
	}
	return ""
}

// docker-compose.yaml: the services README "On one machine (docker compose)" names,
// published ports only on 127.0.0.1, host paths that exist, two agents of one image, and
// monitoring from the chart's own files.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	root, _ := filepath.Abs(repoRoot)
	for _, name := range []string{"kafka", "emulator", "port-runner", "prometheus", "grafana"} {
		service(t, p, name)
	}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: published port %s is bound to %q, not 127.0.0.1", name, port.Published, port.HostIP)
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: volume %s: %v", name, v.Source, err)
				}
			}
		}
	}
	pr := service(t, p, "port-runner")
	if pr.Deploy == nil || pr.Deploy.Replicas == nil || *pr.Deploy.Replicas < 2 {
		t.Errorf("port-runner replicas = %v, want 2 (one consumer group)", pr.Deploy)
	}
	if len(pr.Ports) > 0 {
		t.Error("port-runner has replicas: it cannot publish fixed host ports")
	}
	if pr.HealthCheck == nil || !strings.Contains(strings.Join(pr.HealthCheck.Test, " "), ":9464/healthz") {
		t.Errorf("port-runner healthcheck %v, want /healthz on :9464", pr.HealthCheck)
	}
	emu := service(t, p, "emulator")
	if pr.Build == nil || pr.Image == "" || pr.Image != emu.Image || pr.Build.Context != root {
		t.Errorf("port-runner and emulator should be built from . into one image: %s %v / %s", pr.Image, pr.Build, emu.Image)
	}
	if pr.Build.Args["COMMIT"] == nil || *pr.Build.Args["COMMIT"] != "unknown" || *pr.Build.Args["VERSION"] != "compose" {
		t.Errorf("build args %v: want VERSION and COMMIT (default unknown)", pr.Build.Args)
	}

	// Grafana shows the chart's dashboard; Prometheus loads the chart's alert rules.
	graf := service(t, p, "grafana")
	if got, want := mountOf(graf, "/var/lib/grafana/dashboards"), filepath.Join(root, "charts", "port-runner", "files", "dashboards"); got != want {
		t.Errorf("grafana dashboards from %q, want the chart's %q", got, want)
	}
	prom := service(t, p, "prometheus")
	rulesDir := mountOf(prom, "/etc/prometheus/rules")
	if rulesDir != filepath.Join(root, "charts", "port-runner", "files", "alerts") {
		t.Errorf("prometheus rules from %q, want the chart's files/alerts", rulesDir)
	}
	var promCfg struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			DNSSD []struct {
				Names []string `json:"names"`
				Port  int      `json:"port"`
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, mountOf(prom, "/etc/prometheus/prometheus.yml"), &promCfg)
	if !slices.Contains(promCfg.RuleFiles, "/etc/prometheus/rules/*.yaml") {
		t.Errorf("prometheus.yml rule_files %v does not load the mounted rules", promCfg.RuleFiles)
	}
	found := false
	for _, sc := range promCfg.ScrapeConfigs {
		for _, d := range sc.DNSSD {
			found = found || (slices.Contains(d.Names, "port-runner") && d.Port == 9464)
		}
	}
	if !found {
		t.Error("deploy/prometheus.yml does not scrape port-runner:9464")
	}

	// Grafana's Prometheus datasource; the dashboard itself (its queries, its datasource
	// variable) is checked by test/monitoring/ against the agent's registry.
	var ds struct {
		Datasources []struct {
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"datasources"`
	}
	readYAML(t, filepath.Join(mountOf(graf, "/etc/grafana/provisioning"), "datasources", "prometheus.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("grafana datasource: %+v", ds.Datasources)
	}
	if _, err := os.Stat(filepath.Join(chartDir, "files", "dashboards", "port-runner.json")); err != nil {
		t.Error(err)
	}
}

// deploy/compose-config.yaml is a valid agent config with the environment compose gives it,
// talks to the emulator with the credentials the emulator accepts, and gets its whole drain
// from docker compose stop.
func TestComposeConfig(t *testing.T) {
	p := loadCompose(t)
	pr := service(t, p, "port-runner")
	env := envOf(pr)
	raw, err := os.ReadFile(mountOf(pr, "/etc/port-runner/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range unboundRefs(t, raw, env) {
		t.Errorf("compose-config.yaml references ${%s}, not set in port-runner's environment", name)
	}
	cfg, err := config.Parse(raw, func(n string) (string, bool) { v, ok := env[n]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(runmsg.CompileSelector, imageLookPath); err != nil {
		t.Fatalf("deploy/compose-config.yaml is not valid:\n%v", err)
	}
	if cfg.Kafka.Group != "org_local.port-runner" || cfg.Kafka.StartOffset != "earliest" || cfg.Kafka.Topic != "org_local.runs" {
		t.Errorf("kafka = group %q, startOffset %q, topic %q", cfg.Kafka.Group, cfg.Kafka.StartOffset, cfg.Kafka.Topic)
	}
	if cfg.Metrics.Addr != ":9464" {
		t.Errorf("metrics.addr = %q, want :9464 (Prometheus scrapes it)", cfg.Metrics.Addr)
	}

	emu := flagMap(service(t, p, "emulator").Command)
	for flag, envName := range map[string]string{"client-id": "PORT_CLIENT_ID", "client-secret": "PORT_CLIENT_SECRET", "org": "PORT_ORG_ID", "brokers": "KAFKA_BROKERS"} {
		if emu[flag] != env[envName] {
			t.Errorf("emulator --%s %q != port-runner %s %q", flag, emu[flag], envName, env[envName])
		}
	}
	_, emuPort, _ := strings.Cut(strings.TrimPrefix(emu["addr"], "0.0.0.0"), ":")
	if env["PORT_BASE_URL"] != "http://emulator:"+emuPort {
		t.Errorf("PORT_BASE_URL %q does not reach the emulator on %s", env["PORT_BASE_URL"], emu["addr"])
	}
	if pr.StopGracePeriod == nil {
		t.Fatal("port-runner has no stop_grace_period (compose's default is 10s)")
	}
	if stop, min := time.Duration(*pr.StopGracePeriod), cfg.Executor.ShutdownTimeout.D()+postDrain; stop < min {
		t.Errorf("stop_grace_period %v must be at least executor.shutdownTimeout + %v = %v", stop, postDrain, min)
	}
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
