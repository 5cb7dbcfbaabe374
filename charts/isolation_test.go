package charts_test

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// baselineCaps are the capabilities Pod Security's baseline level allows a container to add.
var baselineCaps = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
	"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// isolation.mode sandbox (default) keeps the pod within Pod Security's restricted level and
// runs commands in the agent's sandbox; runAs gives each run a uid of its own, with the
// agent as root holding only the capabilities that needs, within baseline.
func TestIsolationModes(t *testing.T) {
	r := mustRender(t, values(t, minimal))
	dep := of[appsv1.Deployment](t, r)
	c := agent(t, dep)
	psc, sc := dep.Spec.Template.Spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault" ||
		sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!slices.Equal(toStrings(sc.Capabilities.Drop), []string{"ALL"}) || len(sc.Capabilities.Add) > 0 || sc.RunAsUser != nil {
		t.Errorf("sandbox mode is not within Pod Security restricted: pod %+v, container %+v", psc, sc)
	}
	if cfg, _ := renderedConfig(t, r); cfg.Executor.RunAs != "" || cfg.Executor.Sandbox != "auto" {
		t.Errorf("sandbox mode's config: runAs %q, sandbox %q", cfg.Executor.RunAs, cfg.Executor.Sandbox)
	}

	r = mustRender(t, values(t, minimal, `{isolation: {mode: runAs, runAsUIDs: "40000-40999"}, credentialsAsFiles: true}`))
	dep = of[appsv1.Deployment](t, r)
	sc = agent(t, dep).SecurityContext
	add := toStrings(sc.Capabilities.Add)
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot || sc.Privileged != nil && *sc.Privileged ||
		!slices.Equal(add, []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}) ||
		!slices.Equal(toStrings(sc.Capabilities.Drop), []string{"ALL"}) || *sc.AllowPrivilegeEscalation {
		t.Errorf("runAs mode's container: %+v", sc)
	}
	for _, c := range add {
		if !slices.Contains(baselineCaps, c) {
			t.Errorf("runAs mode adds %s, outside Pod Security baseline", c)
		}
	}
	cfg, _ := renderedConfig(t, r)
	if cfg.Executor.RunAs != "40000-40999" {
		t.Errorf("runAs mode's config: executor.runAs %q", cfg.Executor.RunAs)
	}
	if !slices.Contains(cfg.Executor.Private, "/etc/port-runner-credentials") {
		t.Errorf("credentialsAsFiles: the mounted Secret is not private to the agent: executor.private %q", cfg.Executor.Private)
	}
}

func toStrings(caps []corev1.Capability) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = string(c)
	}
	return out
}
