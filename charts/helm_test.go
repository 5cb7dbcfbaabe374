// Package charts_test checks the deployment files no compiler sees, with the tools that
// read them in production: the Helm chart (charts/port-runner) rendered by the Helm SDK's
// install action in client-only dry-run mode (what `helm template` runs: schema, engine,
// Sprig, required/fail) and linted, every manifest decoded strictly into its k8s.io/api (or
// Prometheus Operator, KEDA) Go type; docker-compose.yaml loaded by compose-go; the
// Dockerfile parsed by BuildKit's parser. The agent configs they carry go through the
// agent's own config.Parse and Validate. This is a module of its own so the agent's module
// carries none of these dependencies.
package charts_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "port-runner"
	repoRoot  = ".."
	namespace = "runners"
	release   = "port-runner"
)

// newObject is the Go type each kind the chart renders decodes into.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, true
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, true
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, true
	case "monitoring.coreos.com/v1/PodMonitor":
		return &monitoringv1.PodMonitor{}, true
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &monitoringv1.PrometheusRule{}, true
	case "keda.sh/v1alpha1/ScaledObject":
		return &kedav1alpha1.ScaledObject{}, true
	case "keda.sh/v1alpha1/TriggerAuthentication":
		return &kedav1alpha1.TriggerAuthentication{}, true
	}
	return nil, false
}

// rendered is one `helm template` of the chart: its objects, decoded, by "Kind/name".
type rendered struct {
	objects map[string]any
	notes   string
}

// of returns the one object of type T (fails the test unless exactly one is rendered).
func of[T any](t *testing.T, r rendered) *T {
	t.Helper()
	var found []*T
	for _, o := range r.objects {
		if v, ok := o.(*T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of type %T rendered, want 1 (have %s)", len(found), new(T), r.kinds())
	}
	return found[0]
}

// named returns the object of type T called name.
func named[T any](t *testing.T, r rendered, kind, name string) *T {
	t.Helper()
	v, ok := r.objects[kind+"/"+name].(*T)
	if !ok {
		t.Fatalf("no %s/%s rendered (have %s)", kind, name, r.kinds())
	}
	return v
}

func (r rendered) has(kind string) bool {
	for k := range r.objects {
		if strings.HasPrefix(k, kind+"/") {
			return true
		}
	}
	return false
}

func (r rendered) kinds() string {
	var ks []string
	for k := range r.objects {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// values reads values files (relative to charts/) and --set style YAML overrides, merged in
// order as helm merges -f files: later maps deep-merge over earlier ones.
func values(t *testing.T, files []string, overrides ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	var docs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	for _, o := range overrides {
		docs = append(docs, []byte(o))
	}
	for _, d := range docs {
		v, err := chartutil.ReadValues(d)
		if err != nil {
			t.Fatalf("values: %v\n%s", err, d)
		}
		out = chartutil.MergeTables(v, out)
	}
	return out
}

// render runs `helm template` (the SDK's client-only dry-run install) with vals.
func render(t *testing.T, vals map[string]any) (rendered, error) {
	t.Helper()
	manifest, notes, err := template(t, chartDir, release, namespace, vals)
	if err != nil {
		return rendered{}, err
	}
	if os.Getenv("CHART_TEST_DUMP") != "" {
		t.Logf("%s", manifest)
	}
	r := rendered{objects: map[string]any{}, notes: notes}
	for src, doc := range releaseutil.SplitManifests(manifest) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%s: not YAML: %v\n%s", src, err, doc)
		}
		obj, ok := newObject(tm.APIVersion, tm.Kind)
		if !ok {
			t.Fatalf("%s: %s %s: a kind this test does not know; add its Go type to newObject", src, tm.APIVersion, tm.Kind)
		}
		// Strict: an unknown or duplicated field (a typo, a wrong indent) fails here, as the
		// API server's strict field validation would refuse it.
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: does not decode strictly into %T: %v\n%s", src, obj, err, doc)
		}
		meta := objectMeta(t, obj)
		if meta.Namespace != namespace {
			t.Errorf("%s %s: namespace %q, want the release's", tm.Kind, meta.Name, meta.Namespace)
		}
		key := tm.Kind + "/" + meta.Name
		if _, dup := r.objects[key]; dup {
			t.Fatalf("two objects %s", key)
		}
		r.objects[key] = obj
	}
	return r, nil
}

// template is `helm template --namespace ns name dir` with vals: the manifests and the notes.
func template(t *testing.T, dir, name, ns string, vals map[string]any) (manifest, notes string, err error) {
	t.Helper()
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatalf("load chart %s: %v", dir, err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
	inst.ReleaseName, inst.Namespace = name, ns
	rel, err := inst.Run(ch, vals)
	if err != nil {
		return "", "", err
	}
	return rel.Manifest, rel.Info.Notes, nil
}

func objectMeta(t *testing.T, obj any) metav1.ObjectMeta {
	t.Helper()
	m, ok := obj.(interface{ GetObjectMeta() metav1.Object })
	if !ok {
		t.Fatalf("%T has no ObjectMeta", obj)
	}
	o := m.GetObjectMeta()
	return metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), Labels: o.GetLabels(), Annotations: o.GetAnnotations()}
}

// mustRender renders and fails the test on a render error.
func mustRender(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	r, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// lint runs `helm lint` with vals and returns its messages of warning severity or worse.
func lint(t *testing.T, vals map[string]any) []string {
	t.Helper()
	res := action.NewLint().Run([]string{chartDir}, vals)
	var out []string
	for _, m := range res.Messages {
		if m.Severity >= 2 { // support.WarningSev
			out = append(out, m.Error())
		}
	}
	for _, e := range res.Errors {
		out = append(out, e.Error())
	}
	return out
}

func dumpYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(bytes.TrimSpace(b))
}

// fromRepo is a path under the repository root.
func fromRepo(parts ...string) string { return filepath.Join(append([]string{repoRoot}, parts...)...) }

// TestMain quiets the standard logger, where helm lint writes a line per required/fail it
// passes over in lint mode.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}
