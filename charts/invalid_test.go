package charts_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

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
		{"bad unmatched node runs", minimal, "config: {workflowNodeRuns: {unmatched: drop}}", []string{"unmatched"}},
		{"unknown workflowNode key", minimal, "config: {actions: {restart_service: {workflowNode: {uri: x}}}}", []string{"uri"}},
		{"bad agent duration", minimal, "config: {executor: {shutdownTimeout: 10 minutes}}", []string{"shutdownTimeout"}},
		{"empty credentials without existingSecret", minimal, `existingSecret: ""`,
			[]string{"secretEnv.PORT_CLIENT_ID is empty and existingSecret is not set"}},
		{"grace period shorter than shutdownTimeout + drain", minimal, "{terminationGracePeriodSeconds: 620, config: {executor: {shutdownTimeout: 10m}}}",
			[]string{"terminationGracePeriodSeconds (620) must be at least config.executor.shutdownTimeout (600s) + 80s", "set it to 680 or more"}},
		{"grace period with the default shutdownTimeout", minimal, "terminationGracePeriodSeconds: 120",
			[]string{"must be at least config.executor.shutdownTimeout (60s)"}},
		{"a ${VAR} shutdownTimeout and no grace period", minimal, "config: {executor: {shutdownTimeout: '${SHUTDOWN:-60s}'}}",
			[]string{"cannot derive terminationGracePeriodSeconds"}},
		{"no actions", nil, "{existingSecret: s, env: {PORT_ORG_ID: o}}", []string{"config.actions is empty"}},
		{"no org", minimal, "env: {PORT_ORG_ID: ''}", []string{"env.PORT_ORG_ID is empty"}},
		{"KEDA and HPA", minimal, "autoscaling: {keda: {enabled: true, prometheus: {serverAddress: 'http://p:9090'}}, hpa: {enabled: true}}", []string{"choose one"}},
		{"KEDA without Prometheus", minimal, "autoscaling: {keda: {enabled: true}}", []string{"autoscaling.keda.prometheus.serverAddress is required"}},
		{"KEDA at zero on the Prometheus trigger", minimal, "autoscaling: {keda: {enabled: true, minReplicas: 0, prometheus: {serverAddress: 'http://p:9090'}}}",
			[]string{"autoscaling.keda.minReplicas is 0 with only the Prometheus trigger", "nothing would scale the Deployment back up", "autoscaling.keda.kafka"}},
		{"KEDA auth modes without a Secret", minimal, "autoscaling: {keda: {enabled: true, prometheus: {serverAddress: 'http://p:9090', authModes: bearer}}}",
			[]string{"authModes needs authSecretName"}},
		{"KEDA Kafka scaler without brokers", minimal, "autoscaling: {keda: {enabled: true, kafka: {enabled: true}}}",
			[]string{"autoscaling.keda.kafka.bootstrapServers is required"}},
		{"KEDA Kafka scaler on a group Helm cannot expand", minimal,
			"{autoscaling: {keda: {enabled: true, kafka: {enabled: true, bootstrapServers: 'b:9096'}}}, config: {kafka: {group: '${GROUP}'}}}",
			[]string{"set autoscaling.keda.kafka.topic and consumerGroup"}},
		{"KEDA bad auth mode", minimal, "autoscaling: {keda: {prometheus: {authModes: oauth}}}", []string{"authModes"}},
		{"two custom CAs", minimal, "customCA: {secretName: a, configMapName: b}", []string{"customCA.secretName and customCA.configMapName are both set"}},
		{"unknown alert", minimal, "prometheusRule: {rules: {PortRunnerSlow: {enabled: true}}}", []string{"PortRunnerSlow"}},
		{"bad alert for", minimal, "prometheusRule: {rules: {PortRunnerDown: {for: soon}}}", []string{"for"}},
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
	// Scaling to zero is fine with the Kafka scaler, which sees the backlog with no agent up.
	if _, err := render(t, values(t, minimal, "autoscaling: {keda: {enabled: true, minReplicas: 0, kafka: {enabled: true, bootstrapServers: 'b:9096'}}}")); err != nil {
		t.Errorf("KEDA at zero with the Kafka scaler: %v", err)
	}
	// A ${VAR} shutdownTimeout is the agent's to expand: not checked here, given a grace.
	if _, err := render(t, values(t, minimal, "{terminationGracePeriodSeconds: 300, config: {executor: {shutdownTimeout: '${SHUTDOWN:-60s}'}}}")); err != nil {
		t.Errorf("a ${VAR} shutdownTimeout: %v", err)
	}
	// A shutdownTimeout that is no duration fails, whatever the grace.
	if _, err := render(t, values(t, minimal, "{terminationGracePeriodSeconds: 700, config: {executor: {shutdownTimeout: 1h1m-1h}}}")); err == nil {
		t.Errorf("a malformed duration rendered")
	}
	// Longer grace, longer shutdownTimeout: fine.
	if _, err := render(t, values(t, minimal, "{terminationGracePeriodSeconds: 701, config: {executor: {shutdownTimeout: 5m30s}}}")); err != nil {
		t.Errorf("grace 701s with shutdownTimeout 5m30s: %v", err)
	}
	// Derived: an hour-long drain gets an hour and 80s, so Kubernetes never cuts it short.
	r, err := render(t, values(t, minimal, "config: {executor: {shutdownTimeout: 1h}}"))
	if err != nil {
		t.Fatal(err)
	}
	if g := of[appsv1.Deployment](t, r).Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != 3680 {
		t.Errorf("derived terminationGracePeriodSeconds = %v, want 3680", g)
	}
}
