package charts_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

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
	if cfg.Actions["restart_service"].When == "" || cfg.Actions["build_image"].WorkflowNode == nil || cfg.WorkflowNodeRuns.Unmatched != "fail" || len(cfg.Security.ClientSideKeyFiles) != 1 {
		t.Errorf("config: routing and client-side keys lost on the way:\n%s", raw)
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

// Every option on, the autoscalers and the alerts: KEDA with both triggers and their
// TriggerAuthentications, the HPA alternative, every alert rule as the values set it.
func TestAllOptionsScalingAndAlerts(t *testing.T) {
	r := mustRender(t, values(t, allOptions))
	const name = "platform-runner"
	so := of[kedav1alpha1.ScaledObject](t, r)
	if so.Spec.ScaleTargetRef == nil || so.Spec.ScaleTargetRef.Name != name || *so.Spec.MaxReplicaCount != 6 || *so.Spec.MinReplicaCount != 2 ||
		len(so.Spec.Triggers) != 2 || so.Spec.Triggers[0].Type != "prometheus" || so.Spec.Triggers[1].Type != "kafka" {
		t.Fatalf("ScaledObject = %s", dumpYAML(so.Spec))
	}
	prom, kafka := so.Spec.Triggers[0], so.Spec.Triggers[1]
	if !strings.Contains(prom.Metadata["query"], "sum(max by (topic, partition) (port_runner_consumer_lag{") || prom.Metadata["threshold"] != "20" ||
		prom.Metadata["activationThreshold"] != "1" || prom.Metadata["authModes"] != "basic" ||
		prom.AuthenticationRef == nil || prom.AuthenticationRef.Name != name+"-prometheus" {
		t.Errorf("Prometheus trigger = %s", dumpYAML(prom))
	}
	// The Kafka scaler reads the agent's own topic and group, with env's PORT_ORG_ID.
	if kafka.Metadata["topic"] != "org_1.runs" || kafka.Metadata["consumerGroup"] != "org_1.port-runner" ||
		kafka.Metadata["bootstrapServers"] != "b-1.example:9196,b-2.example:9196" || kafka.Metadata["activationLagThreshold"] != "1" ||
		kafka.AuthenticationRef == nil || kafka.AuthenticationRef.Name != name+"-kafka" {
		t.Errorf("Kafka trigger = %s", dumpYAML(kafka))
	}
	promAuth := named[kedav1alpha1.TriggerAuthentication](t, r, "TriggerAuthentication", name+"-prometheus")
	kafkaAuth := named[kedav1alpha1.TriggerAuthentication](t, r, "TriggerAuthentication", name+"-kafka")
	params := func(ta *kedav1alpha1.TriggerAuthentication, secret string) []string {
		var ps []string
		for _, ref := range ta.Spec.SecretTargetRef {
			if ref.Name == secret && ref.Key == ref.Parameter {
				ps = append(ps, ref.Parameter)
			}
		}
		return ps
	}
	if got := params(promAuth, "prometheus-reader"); !slices.Equal(got, []string{"username", "password"}) {
		t.Errorf("Prometheus TriggerAuthentication parameters %v", got)
	}
	if got := params(kafkaAuth, "keda-kafka"); !slices.Equal(got, []string{"sasl", "username", "password", "tls", "ca"}) {
		t.Errorf("Kafka TriggerAuthentication parameters %v", got)
	}

	rule := of[monitoringv1.PrometheusRule](t, r)
	if len(rule.Spec.Groups) != 1 || rule.Labels["release"] != "kube-prometheus-stack" {
		t.Fatalf("PrometheusRule = %s", dumpYAML(rule))
	}
	alerts := map[string]monitoringv1.Rule{}
	for _, rl := range rule.Spec.Groups[0].Rules {
		alerts[rl.Alert] = rl
		if rl.Labels["team"] != "platform" || !strings.HasPrefix(rl.Annotations["runbook_url"], "https://runbooks.example.com/port-runner#portrunner") {
			t.Errorf("rule %s: labels %v, runbook_url %q", rl.Alert, rl.Labels, rl.Annotations["runbook_url"])
		}
	}
	if _, ok := alerts["PortRunnerReplicaNotReady"]; ok || len(alerts) != 8 {
		t.Errorf("alerts %v: want the 8 enabled, PortRunnerReplicaNotReady switched off", slices.Sorted(maps.Keys(alerts)))
	}
	for alert, want := range map[string]string{
		"PortRunnerDown":               `absent(up{job="port-runner-pods"} == 1)`,
		"PortRunnerConsumerLagGrowing": "(port_runner_consumer_lag)) > 100",
		"PortRunnerOldestRunWaiting":   "(port_runner_consumer_lag_seconds) > 1800",
		"PortRunnerFailureRatioHigh":   ") > 0.25",
		"PortRunnerRateLimited":        "[5m])) > 0.5",
		"PortRunnerRunsUnclosed":       "[30m])) > 1",
		"PortRunnerClosingsWaiting":    "(port_runner_runs_closing_oldest_seconds) > 1200",
		"PortRunnerBatchSkipped":       `{outcome="skipped_batch"}[30m])) > 3`,
	} {
		rl := alerts[alert]
		if got := rl.Expr.String(); !strings.Contains(got, want) {
			t.Errorf("%s: expr %q lacks %q", alert, got, want)
		}
	}
	if a := alerts["PortRunnerFailureRatioHigh"]; !strings.Contains(a.Expr.String(), ">= 10") || a.For == nil || *a.For != "30m" {
		t.Errorf("PortRunnerFailureRatioHigh: minRuns or for not applied: %s", dumpYAML(a))
	}
	if a := alerts["PortRunnerDown"]; a.Labels["severity"] != "page" || a.For == nil || *a.For != "3m" {
		t.Errorf("PortRunnerDown: labels %v, for %v", a.Labels, a.For)
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
