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

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/port-runner/port-runner/internal/config"
	"github.com/port-runner/port-runner/internal/runmsg"
)

var (
	minimal    = []string{"testdata/minimal.yaml"}
	allOptions = []string{"testdata/all-options.yaml"}
	demo       = []string{"../deploy/values-demo.yaml"}
)

// postDrain is what the agent may still spend after executor.shutdownTimeout: closing
// cancelled runs in Port (the agent's close grace, 30s) and the final commit (10s).
const postDrain = 40 * time.Second

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
	if !strings.Contains(r.notes, "restart_service") || strings.Contains(r.notes, "WARNING") {
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
	if min := cfg.Executor.ShutdownTimeout.D() + postDrain; grace <= min {
		t.Errorf("terminationGracePeriodSeconds %v must exceed executor.shutdownTimeout + %v = %v", grace, postDrain, min)
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

// Every option on: every object decodes strictly into its API type (render does that) and
// carries what the values asked for.
func TestAllOptions(t *testing.T) {
	vals := values(t, allOptions)
	r := mustRender(t, vals)
	if msgs := lint(t, vals); len(msgs) != 0 {
		t.Errorf("helm lint with every option:\n%s", strings.Join(msgs, "\n"))
	}
	const name = "platform-runner"
	dep := named[appsv1.Deployment](t, r, "Deployment", name)
	spec := dep.Spec.Template.Spec
	c := agent(t, dep)
	if dep.Spec.Replicas != nil {
		t.Errorf("replicas = %d with KEDA on; KEDA owns the count", *dep.Spec.Replicas)
	}
	if want := "registry.example/platform/port-runner:1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; c.Image != want {
		t.Errorf("image = %s, want %s", c.Image, want)
	}
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "fetch-tools" || len(spec.Containers) != 2 || spec.Containers[1].Name != "log-shipper" {
		t.Errorf("initContainers %v, containers %v", spec.InitContainers, spec.Containers)
	}
	// credentialsAsFiles: the Secret is a volume, not environment (only the IDs are).
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef.Name != "script-settings" {
		t.Errorf("envFrom = %s, want only extraEnvFrom with credentialsAsFiles", dumpYAML(c.EnvFrom))
	}
	if !hasVolume(spec, "credentials", func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == name }) {
		t.Errorf("no credentials volume from the Secret %s: %s", name, dumpYAML(spec.Volumes))
	}
	secretEnv := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
			secretEnv[e.Name] = e.ValueFrom.SecretKeyRef.Key
		}
	}
	if len(secretEnv) != 2 || secretEnv["PORT_CLIENT_ID"] != "PORT_CLIENT_ID" || secretEnv["KAFKA_USERNAME"] != "KAFKA_USERNAME" {
		t.Errorf("env from the Secret %v, want only PORT_CLIENT_ID and KAFKA_USERNAME", secretEnv)
	}
	if len(spec.TopologySpreadConstraints) != 1 || spec.TopologySpreadConstraints[0].WhenUnsatisfiable != corev1.DoNotSchedule {
		t.Errorf("the user's topologySpreadConstraints do not replace the default: %s", dumpYAML(spec.TopologySpreadConstraints))
	}
	if spec.ServiceAccountName != name || spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Errorf("serviceAccount %q automount %v", spec.ServiceAccountName, spec.AutomountServiceAccountToken)
	}
	if c.Ports[0].ContainerPort != 9100 || of[corev1.Service](t, r).Spec.Ports[0].Port != 9100 {
		t.Errorf("the metrics port does not follow config.metrics.addr: %v", c.Ports)
	}
	sec := named[corev1.Secret](t, r, "Secret", name)
	if sec.StringData["PORT_CLIENT_SECRET"] != "client-secret" || dep.Spec.Template.Annotations["checksum/secret"] == "" {
		t.Errorf("Secret %v, checksum/secret %q", sec.StringData, dep.Spec.Template.Annotations["checksum/secret"])
	}
	cfg, raw := renderedConfig(t, r)
	if cfg.Port.ClientSecretFile != "/etc/port-runner-credentials/PORT_CLIENT_SECRET" || cfg.Kafka.SASL.PasswordFile != "/etc/port-runner-credentials/KAFKA_PASSWORD" ||
		strings.Contains(raw, "${PORT_CLIENT_SECRET}") || strings.Contains(raw, "${KAFKA_PASSWORD}") {
		t.Errorf("with credentialsAsFiles the config reads the secrets from files:\n%s", raw)
	}
	if !slices.Equal(cfg.Executor.PassEnv, []string{"HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "GITHUB_TOKEN"}) || cfg.Port.CAFile == "" || len(cfg.Kafka.Brokers) != 3 {
		t.Errorf("config: passEnv %q, caFile %q, brokers %q", cfg.Executor.PassEnv, cfg.Port.CAFile, cfg.Kafka.Brokers)
	}

	so := of[kedav1alpha1.ScaledObject](t, r)
	if so.Spec.ScaleTargetRef == nil || so.Spec.ScaleTargetRef.Name != name || *so.Spec.MaxReplicaCount != 6 || *so.Spec.MinReplicaCount != 2 ||
		len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "prometheus" ||
		!strings.Contains(so.Spec.Triggers[0].Metadata["query"], "sum(max by (topic, partition) (port_runner_consumer_lag{") || so.Spec.Triggers[0].Metadata["threshold"] != "20" {
		t.Errorf("ScaledObject = %s", dumpYAML(so.Spec))
	}
	rule := of[monitoringv1.PrometheusRule](t, r)
	if len(rule.Spec.Groups) == 0 || len(rule.Spec.Groups[0].Rules) == 0 || rule.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule = %s", dumpYAML(rule))
	}
	for _, g := range rule.Spec.Groups {
		for _, rl := range g.Rules {
			if !strings.Contains(rl.Expr.String(), "port_runner_") {
				t.Errorf("rule %s: expr %q uses no port_runner_ metric", rl.Alert, rl.Expr.String())
			}
		}
	}
	dash := named[corev1.ConfigMap](t, r, "ConfigMap", name+"-dashboard")
	wantDash, err := os.ReadFile(filepath.Join(chartDir, "files", "dashboards", "port-runner.json"))
	if err != nil {
		t.Fatal(err)
	}
	if dash.Labels["grafana_dashboard"] != "1" || strings.TrimSpace(dash.Data["port-runner.json"]) != strings.TrimSpace(string(wantDash)) {
		t.Errorf("dashboard ConfigMap labels %v, %d bytes of JSON (file %d)", dash.Labels, len(dash.Data["port-runner.json"]), len(wantDash))
	}
	pm := of[monitoringv1.PodMonitor](t, r)
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port == nil || *pm.Spec.PodMetricsEndpoints[0].Port != "metrics" ||
		!equalLabels(pm.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("PodMonitor = %s", dumpYAML(pm.Spec))
	}
	sm := of[monitoringv1.ServiceMonitor](t, r)
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" {
		t.Errorf("ServiceMonitor = %s", dumpYAML(sm.Spec))
	}
	np := of[networkingv1.NetworkPolicy](t, r)
	if !equalLabels(np.Spec.PodSelector.MatchLabels, dep.Spec.Selector.MatchLabels) || len(np.Spec.PolicyTypes) != 2 ||
		len(np.Spec.Ingress) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != "metrics" || len(np.Spec.Ingress[0].From) != 1 {
		t.Errorf("NetworkPolicy ingress = %s", dumpYAML(np.Spec.Ingress))
	}
	egress := map[string]bool{}
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			for _, to := range e.To {
				egress[fmt.Sprintf("%s:%s", to.IPBlock.CIDR, p.Port)] = true
			}
			if len(e.To) == 0 {
				egress[fmt.Sprintf("any:%s/%s", p.Port, *p.Protocol)] = true
			}
		}
	}
	for _, want := range []string{"any:53/UDP", "any:53/TCP", "10.20.0.0/16:9196", "203.0.113.0/24:443", "198.51.100.0/24:443"} {
		if !egress[want] {
			t.Errorf("NetworkPolicy egress lacks %s: %v", want, egress)
		}
	}
	role := of[rbacv1.Role](t, r)
	rb := of[rbacv1.RoleBinding](t, r)
	if len(role.Rules) != 1 || rb.RoleRef.Name != role.Name || rb.Subjects[0].Name != name {
		t.Errorf("Role %s / RoleBinding %s", dumpYAML(role.Rules), dumpYAML(rb))
	}
	pdb := of[policyv1.PodDisruptionBudget](t, r)
	if pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable %v", pdb.Spec.MaxUnavailable)
	}

	// The HPA alternative.
	r = mustRender(t, values(t, allOptions, "autoscaling: {keda: {enabled: false}, hpa: {enabled: true}}"))
	if r.has("ScaledObject") {
		t.Error("ScaledObject rendered with KEDA off")
	}
	hpa := of[autoscalingv2.HorizontalPodAutoscaler](t, r)
	if hpa.Spec.ScaleTargetRef.Name != name || hpa.Spec.MaxReplicas != 6 || len(hpa.Spec.Metrics) != 1 ||
		hpa.Spec.Metrics[0].Pods.Metric.Name != "port_runner_runs_in_flight" || hpa.Spec.Metrics[0].Pods.Target.AverageValue.String() != "12" {
		t.Errorf("HPA = %s", dumpYAML(hpa.Spec))
	}
	if d := of[appsv1.Deployment](t, r); d.Spec.Replicas != nil {
		t.Error("replicas set with the HPA on")
	}
}

// The all-options file sets every value values.yaml has, so TestAllOptions covers them all.
func TestAllOptionsCoversEveryValue(t *testing.T) {
	defaults := chartDefaults(t)
	all := values(t, allOptions)
	for _, p := range leafPaths(defaults, "") {
		if strings.HasPrefix(p, "config.") || strings.HasPrefix(p, "env.") || strings.HasPrefix(p, "secretEnv.") {
			continue // the agent's config and free-form maps: checked by the agent and above
		}
		if !hasPath(all, p) {
			t.Errorf("testdata/all-options.yaml does not set %s", p)
		}
	}
}

// leafPaths lists the dotted paths of the non-map values in v.
func leafPaths(v map[string]any, prefix string) []string {
	var out []string
	for k, e := range v {
		if m, ok := e.(map[string]any); ok && len(m) > 0 {
			out = append(out, leafPaths(m, prefix+k+".")...)
			continue
		}
		out = append(out, prefix+k)
	}
	slices.Sort(out)
	return out
}

func hasPath(v map[string]any, path string) bool {
	cur := any(v)
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

// Values that would install a broken agent fail to render, and the message says why.
func TestInvalidValuesFail(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []string
		override string
		want     []string // all in the error
	}{
		{"non-integer replicas", minimal, "replicaCount: two", []string{"replicaCount", "integer"}},
		{"fractional replicas", minimal, "replicaCount: 1.5", []string{"replicaCount"}},
		{"unknown key", minimal, "serviceMonitor: {enable: true}", []string{"serviceMonitor", "enable"}},
		{"unknown top-level key", minimal, "replicas: 3", []string{"replicas"}},
		{"unknown agent config key", minimal, "config: {executor: {maxConcurent: 3}}", []string{"config", "maxConcurent"}},
		{"bad agent enum", minimal, "config: {kafka: {startOffset: oldest}}", []string{"startOffset"}},
		{"bad agent duration", minimal, "config: {executor: {shutdownTimeout: 10 minutes}}", []string{"shutdownTimeout"}},
		{"empty credentials without existingSecret", minimal, `existingSecret: ""`,
			[]string{"secretEnv.PORT_CLIENT_ID is empty and existingSecret is not set"}},
		{"grace period shorter than shutdownTimeout + closing", minimal, "config: {executor: {shutdownTimeout: 10m}}",
			[]string{"terminationGracePeriodSeconds (120) must exceed config.executor.shutdownTimeout (600s) + 40s"}},
		{"grace period equal to shutdownTimeout + closing", minimal, "{terminationGracePeriodSeconds: 100, config: {executor: {shutdownTimeout: 1m}}}",
			[]string{"terminationGracePeriodSeconds (100) must exceed"}},
		{"grace period with the default shutdownTimeout", minimal, "terminationGracePeriodSeconds: 90",
			[]string{"must exceed config.executor.shutdownTimeout (60s)"}},
		{"no actions", nil, "{existingSecret: s, env: {PORT_ORG_ID: o}}", []string{"config.actions is empty"}},
		{"no org", minimal, "env: {PORT_ORG_ID: ''}", []string{"env.PORT_ORG_ID is empty"}},
		{"KEDA and HPA", minimal, "autoscaling: {keda: {enabled: true, prometheus: {serverAddress: 'http://p:9090'}}, hpa: {enabled: true}}", []string{"choose one"}},
		{"KEDA without Prometheus", minimal, "autoscaling: {keda: {enabled: true}}", []string{"autoscaling.keda.prometheus.serverAddress is required"}},
		{"RBAC without a ServiceAccount", minimal, "rbac: {create: true}", []string{"rbac.create needs serviceAccount.create=true"}},
		{"bad digest", minimal, "image: {digest: latest}", []string{"digest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, values(t, tc.files, tc.override))
			if err == nil {
				t.Fatalf("rendered; want an error naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
	// A ${VAR} shutdownTimeout is the agent's to expand: not checked here.
	if _, err := render(t, values(t, minimal, "config: {executor: {shutdownTimeout: '${SHUTDOWN:-60s}'}}")); err != nil {
		t.Errorf("a ${VAR} shutdownTimeout: %v", err)
	}
	// Longer grace, longer shutdownTimeout: fine.
	if _, err := render(t, values(t, minimal, "{terminationGracePeriodSeconds: 700, config: {executor: {shutdownTimeout: 1h1m-1h}}}")); err == nil {
		t.Errorf("a malformed duration rendered")
	}
	if _, err := render(t, values(t, minimal, "{terminationGracePeriodSeconds: 701, config: {executor: {shutdownTimeout: 5m30s}}}")); err != nil {
		t.Errorf("grace 701s with shutdownTimeout 5m30s: %v", err)
	}
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

// With config.transport: polling the agent needs no Kafka: the rendered config validates
// with the chart's kafka defaults left unused, the NetworkPolicy opens only DNS and Port's
// API, and KEDA (which scales on the Kafka lag) is refused.
func TestPollingTransport(t *testing.T) {
	polling := `{config: {transport: polling}, networkPolicy: {enabled: true}}`
	r := mustRender(t, values(t, minimal, polling))
	cfg, _ := renderedConfig(t, r)
	if !cfg.Polls() {
		t.Fatalf("transport %q, want polling", cfg.Transport)
	}
	np := of[networkingv1.NetworkPolicy](t, r)
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			if p.Port.IntValue() == 9196 {
				t.Errorf("NetworkPolicy opens Kafka's port with transport: polling: %s", dumpYAML(np.Spec.Egress))
			}
		}
	}
	if len(np.Spec.Egress) != 2 {
		t.Errorf("NetworkPolicy egress %s: want DNS and Port's API only", dumpYAML(np.Spec.Egress))
	}
	_, err := render(t, values(t, minimal, polling, `{autoscaling: {keda: {enabled: true, prometheus: {serverAddress: "http://p:9090"}}}}`))
	if err == nil || !strings.Contains(err.Error(), "transport: polling") {
		t.Errorf("KEDA with polling: %v, want a refusal naming transport: polling", err)
	}
}
