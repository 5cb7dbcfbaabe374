package charts_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
)

var (
	minimal    = []string{"testdata/minimal.yaml"}
	allOptions = []string{"testdata/all-options.yaml"}
	demo       = []string{"../deploy/values-demo.yaml"}
)

// postDrain is what the agent may still spend after executor.shutdownTimeout: the kill
// grace (10s), closing cancelled runs in Port (the closing budget, 60s) and its exit (10s).
const postDrain = 80 * time.Second

// imageAppDir is where the Dockerfile copies internal/examples/ (WORKDIR /app).
const imageAppDir = "/app/"

// imageLookPath accepts commands that exist in the image: /app/examples/... is the repo's
// internal/examples/ (deploy/Dockerfile: COPY internal/examples/ /app/examples/), and must be
// executable there.
func imageLookPath(cmd string) (string, error) {
	if !strings.HasPrefix(cmd, imageAppDir) {
		return "", fmt.Errorf("%s: not a path the image provides (want %s...)", cmd, imageAppDir)
	}
	st, err := os.Stat(fromRepo("internal", strings.TrimPrefix(cmd, imageAppDir)))
	if err != nil {
		return "", err
	}
	if st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not executable", cmd)
	}
	return cmd, nil
}

var refPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// agentConfig parses and validates raw as the agent does, with env as its environment; every
// ${VAR} without a default must be in env. Files the config names (port.caFile) must be
// under one of mounts, the container's volume mounts; they are not on this machine.
func agentConfig(t *testing.T, raw []byte, env map[string]string, mounts []corev1.VolumeMount) *config.Config {
	t.Helper()
	for _, name := range unboundRefs(t, raw, env) {
		t.Errorf("config references ${%s}, which the deployment does not set", name)
	}
	cfg, err := config.Parse(raw, func(n string) (string, bool) { v, ok := env[n]; return v, ok })
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, raw)
	}
	// Files are on the pod's volumes, not on this machine: check each is under a mount, then
	// validate as if Load had read them.
	check := *cfg
	onMount := func(key, f string) {
		if !slices.ContainsFunc(mounts, func(m corev1.VolumeMount) bool { return strings.HasPrefix(f, m.MountPath+"/") }) {
			t.Errorf("%s %s is on no volume of the container", key, f)
		}
	}
	if f := cfg.Port.CAFile; f != "" {
		onMount("port.caFile", f)
		check.Port.CAFile = ""
	}
	if f := cfg.Port.ClientSecretFile; f != "" {
		onMount("port.clientSecretFile", f)
		check.Port.ClientSecretFile, check.Port.ClientSecret = "", "from-"+filepath.Base(f)
	}
	if f := cfg.Kafka.SASL.PasswordFile; f != "" {
		onMount("kafka.sasl.passwordFile", f)
		check.Kafka.SASL.PasswordFile, check.Kafka.SASL.Password = "", "from-"+filepath.Base(f)
	}
	for _, f := range cfg.Security.ClientSideKeyFiles {
		onMount("security.clientSideKeyFiles", f)
	}
	check.Security.ClientSideKeyFiles = nil
	if err := check.Validate(runmsg.CompileSelector, imageLookPath); err != nil {
		t.Fatalf("the rendered config is not valid for the agent:\n%v\n--- config ---\n%s", err, raw)
	}
	return cfg
}

// unboundRefs lists the ${VAR}s without a :-default in raw's values (comments aside) that
// env lacks.
func unboundRefs(t *testing.T, raw []byte, env map[string]string) []string {
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
				if _, ok := env[m[1]]; !ok && m[2] == "" {
					out = append(out, m[1])
				}
			}
		}
	}
	walk(doc)
	return out
}

// podEnv is the agent container's environment as the pod gets it: env values, and for
// envFrom secrets and valueFrom entries a placeholder value (the keys are what matter).
func podEnv(t *testing.T, r rendered, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "from-" + e.Name
		}
		env[e.Name] = v
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef == nil {
			continue
		}
		if s, ok := r.objects["Secret/"+ef.SecretRef.Name].(*corev1.Secret); ok {
			for k, v := range s.StringData {
				env[k] = v
			}
		} else {
			// existingSecret: the keys the chart documents it must hold.
			for _, k := range []string{"PORT_CLIENT_ID", "PORT_CLIENT_SECRET", "KAFKA_USERNAME", "KAFKA_PASSWORD"} {
				env[k] = "secret-" + strings.ToLower(k)
			}
		}
	}
	return env
}

func agent(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "port-runner" {
			return c
		}
	}
	t.Fatalf("no port-runner container in %v", d.Spec.Template.Spec.Containers)
	return corev1.Container{}
}

// renderedConfig is the agent config the ConfigMap holds, parsed and validated.
func renderedConfig(t *testing.T, r rendered) (*config.Config, string) {
	t.Helper()
	dep := of[appsv1.Deployment](t, r)
	cm := named[corev1.ConfigMap](t, r, "ConfigMap", dep.Name)
	raw := cm.Data["config.yaml"]
	c := agent(t, dep)
	return agentConfig(t, []byte(raw), podEnv(t, r, c), c.VolumeMounts), raw
}

// With the user's values naming only restart_service, the agent runs only that action: no
// default action is merged in.
func TestUserActionsOnly(t *testing.T) {
	r := mustRender(t, values(t, minimal))
	cfg, raw := renderedConfig(t, r)
	if names := cfg.ActionNames(); !slices.Equal(names, []string{"restart_service"}) {
		t.Errorf("rendered actions %v, want only restart_service:\n%s", names, raw)
	}
	// No brokers: the agent gets Port's managed Kafka and its credentials from Port.
	k := cfg.Kafka
	if !k.FromPort() || k.SASL.Mechanism != "" || k.Group != "org_test.port-runner" || k.Topic != "org_test.runs" {
		t.Errorf("kafka = %+v; want brokers and credentials from Port, group org_test.port-runner", k)
	}
	if !cfg.Security.Verify() {
		t.Error("security.verifySignature must stay on by default")
	}
	if msgs := lint(t, values(t, minimal)); len(msgs) != 0 {
		t.Errorf("helm lint with minimal values:\n%s", strings.Join(msgs, "\n"))
	}
	// The invocation method the notes name is the one README recommends: Port signs its runs,
	// which verifySignature (on, above) requires.
	if !strings.Contains(r.notes, "restart_service") || strings.Contains(r.notes, "WARNING") ||
		!strings.Contains(r.notes, `Webhook with "agent": true`) {
		t.Errorf("NOTES:\n%s", r.notes)
	}
}

// Own brokers: one variable with a comma list gives every broker; the Kafka credentials are
// then required like the Port ones.
func TestOwnBrokersFromOneVariable(t *testing.T) {
	own := `{env: {KAFKA_BROKERS: "b-1.example:9196,b-2.example:9196"}, config: {kafka: {brokers: "${KAFKA_BROKERS}",
  sasl: {mechanism: SCRAM-SHA-512, username: "${KAFKA_USERNAME}", password: "${KAFKA_PASSWORD}"}, tls: {enabled: true}}}}`
	cfg, _ := renderedConfig(t, mustRender(t, values(t, minimal, own)))
	if !slices.Equal(cfg.Kafka.Brokers, []string{"b-1.example:9196", "b-2.example:9196"}) || cfg.Kafka.SASL.Mechanism != "SCRAM-SHA-512" || !cfg.Kafka.TLS.Enabled {
		t.Errorf("kafka = %+v, want the two brokers of env.KAFKA_BROKERS over SCRAM and TLS", cfg.Kafka)
	}
	_, err := render(t, values(t, minimal, own, `{existingSecret: "", secretEnv: {PORT_CLIENT_ID: a, PORT_CLIENT_SECRET: b}}`))
	if err == nil || !strings.Contains(err.Error(), "secretEnv.KAFKA_USERNAME is empty") {
		t.Errorf("own brokers without Kafka credentials: %v, want the KAFKA_USERNAME message", err)
	}
	_, err = render(t, values(t, minimal, own, `env: {KAFKA_BROKERS: ""}`))
	if err == nil || !strings.Contains(err.Error(), "env.KAFKA_BROKERS is empty") {
		t.Errorf("own brokers without env.KAFKA_BROKERS: %v, want the KAFKA_BROKERS message", err)
	}
}

// The chart's defaults alone do not install an agent that crash-loops: the render fails
// and says what is missing. (helm lint runs templates in lint mode, where required and fail
// only log, so the chart itself lints clean with its defaults.)
func TestDefaultValuesFailWithAMessage(t *testing.T) {
	_, err := render(t, values(t, nil))
	if err == nil || !strings.Contains(err.Error(), "secretEnv.PORT_CLIENT_ID is empty and existingSecret is not set") {
		t.Fatalf("render with default values: %v, want the credentials message", err)
	}
	if msgs := lint(t, values(t, nil)); len(msgs) != 0 {
		t.Errorf("helm lint with default values:\n%s", strings.Join(msgs, "\n"))
	}
}

func TestDefaults(t *testing.T) {
	r := mustRender(t, values(t, minimal))
	for _, k := range []string{"Deployment", "ConfigMap", "Service", "PodDisruptionBudget"} {
		if !r.has(k) {
			t.Errorf("no %s rendered by default", k)
		}
	}
	for _, k := range []string{"Secret", "ServiceMonitor", "PodMonitor", "PrometheusRule", "ServiceAccount", "Role",
		"ScaledObject", "HorizontalPodAutoscaler", "NetworkPolicy"} {
		if r.has(k) {
			t.Errorf("%s rendered, but it is off by default (or existingSecret is set)", k)
		}
	}
	dep := of[appsv1.Deployment](t, r)
	spec := dep.Spec.Template.Spec
	c := agent(t, dep)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", dep.Spec.Replicas)
	}
	if !slices.Equal(c.Args, []string{"run", "--config", "/etc/port-runner/config.yaml"}) {
		t.Errorf("args = %q", c.Args)
	}
	if c.Image != "ghcr.io/port-runner/port-runner:0.1.0" {
		t.Errorf("image = %s, want the appVersion tag", c.Image)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9464 || c.Ports[0].Name != "metrics" {
		t.Errorf("ports = %v, want metrics 9464 (config.metrics.addr)", c.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe, "/healthz ": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != strings.TrimSpace(name) || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("probe %s = %v", name, p)
		}
	}
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Error("enableServiceLinks must be false (it injects PORT_RUNNER_* variables)")
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "port-runner-credentials" {
		t.Errorf("envFrom %v, want existingSecret", c.EnvFrom)
	}
	cm := named[corev1.ConfigMap](t, r, "ConfigMap", dep.Name)
	if got := dep.Spec.Template.Annotations["checksum/config"]; got == "" || cm.Data["config.yaml"] == "" {
		t.Errorf("checksum/config %q, config %d bytes", got, len(cm.Data["config.yaml"]))
	}
	if !hasVolume(spec, "config", func(v corev1.Volume) bool { return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name }) {
		t.Errorf("no config volume from the ConfigMap: %v", spec.Volumes)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if mounts["/etc/port-runner"] != "config" || mounts["/tmp"] == "" || mounts["/home/port-runner"] == "" {
		t.Errorf("volumeMounts %v: want the config at /etc/port-runner and writable /tmp and HOME", mounts)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem ||
		spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Error("want a non-root pod with a read-only root filesystem")
	}
	// Spread over nodes by default, never blocking scheduling.
	if len(spec.TopologySpreadConstraints) != 2 || spec.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" ||
		spec.TopologySpreadConstraints[0].WhenUnsatisfiable != corev1.ScheduleAnyway ||
		!equalLabels(spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("topologySpreadConstraints = %s", dumpYAML(spec.TopologySpreadConstraints))
	}
	pdb := of[policyv1.PodDisruptionBudget](t, r)
	if pdb.Spec.UnhealthyPodEvictionPolicy == nil || *pdb.Spec.UnhealthyPodEvictionPolicy != policyv1.AlwaysAllow {
		t.Errorf("PDB unhealthyPodEvictionPolicy = %v, want AlwaysAllow (unready replicas must not block drains)", pdb.Spec.UnhealthyPodEvictionPolicy)
	}
	svc := of[corev1.Service](t, r)
	for what, sel := range map[string]map[string]string{"Service": svc.Spec.Selector, "PDB": pdb.Spec.Selector.MatchLabels, "pod labels": dep.Spec.Template.Labels} {
		if !equalLabels(sel, dep.Spec.Selector.MatchLabels) {
			t.Errorf("%s %v != the Deployment's selector %v", what, sel, dep.Spec.Selector.MatchLabels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9464 {
		t.Errorf("Service ports = %v", svc.Spec.Ports)
	}

	cfg, _ := renderedConfig(t, r)
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if min := cfg.Executor.ShutdownTimeout.D() + postDrain; grace < min {
		t.Errorf("terminationGracePeriodSeconds %v must be at least executor.shutdownTimeout + %v = %v", grace, postDrain, min)
	}
}

// chartDefaults is values.yaml as a map.
func chartDefaults(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func hasVolume(spec corev1.PodSpec, name string, ok func(corev1.Volume) bool) bool {
	for _, v := range spec.Volumes {
		if v.Name == name && ok(v) {
			return true
		}
	}
	return false
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// deploy/values-demo.yaml installs the demo action the image ships, and nothing else.
func TestDemoValues(t *testing.T) {
	r := mustRender(t, values(t, demo, "env: {PORT_ORG_ID: org_demo}"))
	cfg, _ := renderedConfig(t, r)
	if names := cfg.ActionNames(); !slices.Equal(names, []string{"create_microservice"}) {
		t.Errorf("demo actions %v", names)
	}
	if _, err := render(t, values(t, demo)); err == nil || !strings.Contains(err.Error(), "env.PORT_ORG_ID is empty") {
		t.Errorf("demo values without the org: %v, want the env.PORT_ORG_ID message", err)
	}
}

// The checksum annotation changes with the config, so a config change rolls the pods.
func TestConfigChangeRollsPods(t *testing.T) {
	a := of[appsv1.Deployment](t, mustRender(t, values(t, minimal)))
	b := of[appsv1.Deployment](t, mustRender(t, values(t, minimal, "config: {executor: {maxConcurrent: 3}}")))
	if a.Spec.Template.Annotations["checksum/config"] == b.Spec.Template.Annotations["checksum/config"] {
		t.Error("checksum/config did not change with the config")
	}
}

// The chart's README documents every value the schema declares (and every config section),
// so a value added to the chart without documentation fails here.
func TestREADMEListsEveryValue(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := yaml.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var walk func(s map[string]any, path string)
	walk = func(s map[string]any, path string) {
		props, ok := s["properties"].(map[string]any)
		if !ok || path == "config" {
			if !strings.Contains(string(readme), "`"+path+"`") {
				t.Errorf("README.md does not document `%s`", path)
			}
			if path != "config" {
				return
			}
		}
		for k, p := range props {
			next := k
			if path != "" {
				next = path + "." + k
			}
			if path == "config" {
				if !strings.Contains(string(readme), "`"+next+"`") {
					t.Errorf("README.md does not name the config section `%s`", next)
				}
				continue
			}
			walk(p.(map[string]any), next)
		}
	}
	walk(schema, "")
}
