package charts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The chart renders as a dependency of an umbrella chart: Helm always hands a subchart the
// parent's `global` values, which the schema must accept.
func TestRendersAsSubchart(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Chart.yaml"), `apiVersion: v2
name: platform
version: 1.0.0
dependencies:
  - name: port-runner
    version: ">=0.0.0-0"
`)
	copyDir(t, chartDir, filepath.Join(dir, "charts", "port-runner"))
	sub := values(t, minimal)
	vals := map[string]any{"global": map[string]any{"imageRegistry": "registry.example", "storageClass": "fast"}, "port-runner": sub}
	manifest, _, err := template(t, dir, "platform", namespace, vals)
	if err != nil {
		t.Fatalf("helm template of an umbrella chart with port-runner as a dependency: %v", err)
	}
	var dep *appsv1.Deployment
	for _, doc := range releaseutil.SplitManifests(manifest) {
		if strings.Contains(doc, "\nkind: Deployment\n") {
			dep = &appsv1.Deployment{}
			if err := yaml.UnmarshalStrict([]byte(doc), dep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if dep == nil || dep.Name != "platform-port-runner" {
		t.Fatalf("no Deployment platform-port-runner in the umbrella's manifests:\n%s", manifest)
	}
}

// What an operator needs beside the agent: memory for the run directories, named in
// RUNTIME_DIRECTORY, apart from /dev/shm (the commands' shared memory, which a sandboxed
// command may use only where no run directory is), a custom CA by value, a settable rollout
// strategy, the pod's name for /status.
func TestPodOperations(t *testing.T) {
	dep := of[appsv1.Deployment](t, mustRender(t, values(t, minimal)))
	spec, c := dep.Spec.Template.Spec, agent(t, dep)
	memory := func(size string) func(corev1.Volume) bool {
		return func(v corev1.Volume) bool {
			return v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory && v.EmptyDir.SizeLimit.String() == size
		}
	}
	if !hasVolume(spec, "runs", memory("128Mi")) || mountPath(c, "runs") != "/run/port-runner" {
		t.Errorf("no memory emptyDir of runsSizeLimit at /run/port-runner: %s", dumpYAML(spec.Volumes))
	}
	if !hasVolume(spec, "shm", memory("64Mi")) || mountPath(c, "shm") != "/dev/shm" {
		t.Errorf("no memory emptyDir of shmSizeLimit at /dev/shm: %s", dumpYAML(spec.Volumes))
	}
	runtimeDir := ""
	for _, e := range c.Env {
		if e.Name == "RUNTIME_DIRECTORY" {
			runtimeDir = e.Value
		}
	}
	if runtimeDir != mountPath(c, "runs") || strings.HasPrefix(runtimeDir, "/dev/shm") {
		t.Errorf("RUNTIME_DIRECTORY %q, want the runs volume's mount, out of /dev/shm", runtimeDir)
	}
	if s := dep.Spec.Strategy; s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
		s.RollingUpdate.MaxSurge.IntValue() != 1 || s.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("default strategy = %s, want a surge before any replica leaves", dumpYAML(s))
	}
	podName := false
	for _, e := range c.Env {
		podName = podName || (e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name")
	}
	if !podName {
		t.Errorf("no POD_NAME from the downward API (/status names the replica by it): %s", dumpYAML(c.Env))
	}

	dep = of[appsv1.Deployment](t, mustRender(t, values(t, minimal, "{shmSizeLimit: 1Gi, runsSizeLimit: 2Gi, strategy: {type: Recreate}}")))
	if !hasVolume(dep.Spec.Template.Spec, "shm", memory("1Gi")) || !hasVolume(dep.Spec.Template.Spec, "runs", memory("2Gi")) {
		t.Errorf("shmSizeLimit or runsSizeLimit not applied: %s", dumpYAML(dep.Spec.Template.Spec.Volumes))
	}
	if s := dep.Spec.Strategy; s.Type != appsv1.RecreateDeploymentStrategyType || s.RollingUpdate != nil {
		t.Errorf("strategy Recreate = %s (a Recreate strategy may carry no rollingUpdate)", dumpYAML(s))
	}
}

func TestCustomCA(t *testing.T) {
	for _, tc := range []struct{ set, volume string }{
		{"customCA: {secretName: corp-ca}", "secret"},
		{"customCA: {configMapName: corp-ca, key: bundle.pem}", "configMap"},
	} {
		r := mustRender(t, values(t, minimal, tc.set))
		dep := of[appsv1.Deployment](t, r)
		key := "ca.crt"
		if tc.volume == "configMap" {
			key = "bundle.pem"
		}
		if !hasVolume(dep.Spec.Template.Spec, "custom-ca", func(v corev1.Volume) bool {
			if tc.volume == "secret" {
				return v.Secret != nil && v.Secret.SecretName == "corp-ca" && v.Secret.Items[0].Key == key
			}
			return v.ConfigMap != nil && v.ConfigMap.Name == "corp-ca" && v.ConfigMap.Items[0].Key == key
		}) {
			t.Errorf("%s: no custom-ca volume: %s", tc.set, dumpYAML(dep.Spec.Template.Spec.Volumes))
		}
		// renderedConfig checks the file is on one of the container's mounts.
		if cfg, _ := renderedConfig(t, r); cfg.Port.CAFile != "/etc/port-runner-ca/"+key {
			t.Errorf("%s: port.caFile = %q", tc.set, cfg.Port.CAFile)
		}
	}
	r := mustRender(t, values(t, minimal, "{customCA: {secretName: corp-ca}, config: {port: {caFile: /etc/port-runner-ca/other.pem}}}"))
	if cfg, _ := renderedConfig(t, r); cfg.Port.CAFile != "/etc/port-runner-ca/other.pem" {
		t.Errorf("an explicit config.port.caFile was replaced: %q", cfg.Port.CAFile)
	}
}

// What rolls the pods: the config, the chart's Secret, and existingSecretChecksum for a
// Secret the chart does not manage.
func TestWhatRollsPods(t *testing.T) {
	checksum := func(override string) string {
		return of[appsv1.Deployment](t, mustRender(t, values(t, minimal, override))).Spec.Template.Annotations["checksum/secret"]
	}
	if got := checksum(""); got != "" {
		t.Errorf("checksum/secret %q with existingSecret and no existingSecretChecksum", got)
	}
	a, b := checksum("existingSecretChecksum: rv-1"), checksum("existingSecretChecksum: rv-2")
	if a == "" || a == b {
		t.Errorf("existingSecretChecksum does not change the pod template: %q, %q", a, b)
	}
	own := `{existingSecret: "", secretEnv: {PORT_CLIENT_ID: id, PORT_CLIENT_SECRET: %s}}`
	if checksum(strings.Replace(own, "%s", "one", 1)) == checksum(strings.Replace(own, "%s", "two", 1)) {
		t.Error("a change of secretEnv does not roll the pods")
	}
}

// The notes reach one replica's /status through its pod: a Service answers from any.
func TestNotesReachOnePod(t *testing.T) {
	notes := mustRender(t, values(t, minimal)).notes
	if !strings.Contains(notes, "port-forward \"$POD\" 9464") || !strings.Contains(notes, "-o name | head -n 1") ||
		strings.Contains(notes, "port-forward svc/") || !strings.Contains(notes, "/status") {
		t.Errorf("NOTES.txt does not forward to one pod's /status:\n%s", notes)
	}
}

func mountPath(c corev1.Container, volume string) string {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	return ""
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the chart's files (what `helm dependency build` would unpack).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		writeFile(t, filepath.Join(to, rel), string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
