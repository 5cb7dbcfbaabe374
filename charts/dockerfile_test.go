package charts_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"golang.org/x/mod/modfile"
)

// dockerfile parses the Dockerfile with BuildKit's own parser into its stages, and the
// global ARGs before the first FROM.
func dockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	f, err := os.Open(fromRepo("deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: %s", w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// commands of type T in a stage.
func commands[T any](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func args(s instructions.Stage) map[string]string {
	out := map[string]string{}
	for _, a := range commands[*instructions.ArgCommand](s) {
		for _, kv := range a.Args {
			v := ""
			if kv.Value != nil {
				v = *kv.Value
			}
			out[kv.Key] = v
		}
	}
	return out
}

var pinned = regexp.MustCompile(`^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$`)

// The image builds anywhere: base images pinned by digest, the build stage cross-compiling
// on the builder's platform, a GOPROXY argument, VERSION/COMMIT into the binary and OCI
// labels; and its user, port, command and example path agree with the chart.
func TestDockerfile(t *testing.T) {
	stages := dockerfile(t)
	if len(stages) != 2 || stages[0].Name != "build" {
		t.Fatalf("stages %d (%s): want build and runtime", len(stages), stages[0].Name)
	}
	build, runtime := stages[0], stages[1]
	for _, s := range stages {
		if !pinned.MatchString(s.BaseName) {
			t.Errorf("FROM %s: not pinned by digest (want name:tag@sha256:...)", s.BaseName)
		}
	}
	if build.Platform != "$BUILDPLATFORM" {
		t.Errorf("build stage platform %q, want $BUILDPLATFORM (cross-compile, no emulation)", build.Platform)
	}
	// The Go image's version is at least what go.mod asks for.
	gomod, err := os.ReadFile(fromRepo("go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		t.Fatal(err)
	}
	tag := strings.TrimPrefix(strings.SplitN(build.BaseName, "@", 2)[0], "golang:")
	if !strings.HasPrefix(build.BaseName, "golang:") || compareVersions(tag, mf.Go.Version) < 0 {
		t.Errorf("build image %s older than go.mod's go %s", build.BaseName, mf.Go.Version)
	}

	a := args(build)
	for _, name := range []string{"GOPROXY", "TARGETOS", "TARGETARCH", "VERSION", "COMMIT"} {
		if _, ok := a[name]; !ok {
			t.Errorf("build stage has no ARG %s", name)
		}
	}
	goBuild := ""
	for _, r := range commands[*instructions.RunCommand](build) {
		if line := strings.Join(r.CmdLine, " "); strings.Contains(line, "go build") {
			goBuild = line
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "./cmd/port-runner"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("the go build RUN lacks %q: %s", want, goBuild)
		}
	}

	// The C exec shim: its compiler for the target (cross, no emulation), then the binary.
	var cshim []string
	for _, r := range commands[*instructions.RunCommand](build) {
		if line := strings.Join(r.CmdLine, " "); strings.Contains(line, "scripts/build-cshim") {
			cshim = append(cshim, line)
		}
	}
	if !slices.Equal(cshim, []string{"scripts/build-cshim --install ${TARGETARCH}", "scripts/build-cshim /port-runner-shim ${TARGETARCH}"}) {
		t.Errorf("the build stage's C shim steps: %q", cshim)
	}
	shimCopied := false
	for _, c := range commands[*instructions.CopyCommand](runtime) {
		shimCopied = shimCopied || (c.From == "build" && slices.Equal(c.SourcePaths, []string{"/port-runner-shim"}) && c.DestPath == "/usr/local/bin/port-runner-shim")
	}
	if !shimCopied {
		t.Error("the runtime stage does not COPY the C shim beside the agent (/usr/local/bin/port-runner-shim)")
	}

	labels := map[string]string{}
	for _, l := range commands[*instructions.LabelCommand](runtime) {
		for _, kv := range l.Labels {
			labels[kv.Key] = strings.Trim(kv.Value, `"`) // quotes stay until BuildKit expands the label
		}
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.version": "${VERSION}", "org.opencontainers.image.revision": "${COMMIT}",
		"org.opencontainers.image.source": "https://github.com/port-runner/port-runner", "org.opencontainers.image.title": "port-runner",
	} {
		if labels[k] != v {
			t.Errorf("LABEL %s = %q, want %q", k, labels[k], v)
		}
	}
	if ra := args(runtime); ra["VERSION"] == "" || ra["COMMIT"] == "" {
		t.Errorf("runtime stage ARGs %v: the labels need VERSION and COMMIT declared there", ra)
	}

	users := commands[*instructions.UserCommand](runtime)
	if len(users) != 1 || users[0].User != "10001:10001" {
		t.Errorf("USER %v, want 10001:10001", users)
	}
	psc := chartDefaults(t)["podSecurityContext"].(map[string]any)
	if fmt.Sprint(psc["runAsUser"]) != "10001" || psc["runAsNonRoot"] != true {
		t.Errorf("chart podSecurityContext %v does not match the image's USER 10001", psc)
	}
	if ex := commands[*instructions.ExposeCommand](runtime); len(ex) != 1 || !slices.Equal(ex[0].Ports, []string{"9464"}) {
		t.Errorf("EXPOSE %v, want 9464 (the chart's metrics port)", ex)
	}
	if wd := commands[*instructions.WorkdirCommand](runtime); len(wd) != 1 || wd[0].Path != "/app" {
		t.Errorf("WORKDIR %v, want /app", wd)
	}
	copied := false
	for _, c := range commands[*instructions.CopyCommand](runtime) {
		copied = copied || (c.From == "" && slices.Equal(c.SourcePaths, []string{"internal/examples/"}) && c.DestPath == imageAppDir+"examples/")
	}
	if !copied {
		t.Error("the runtime stage does not COPY internal/examples/ /app/examples/ (the chart's demo and compose run them)")
	}
	ep := commands[*instructions.EntrypointCommand](runtime)
	cmd := commands[*instructions.CmdCommand](runtime)
	if len(ep) != 1 || ep[0].PrependShell || !slices.Equal(ep[0].CmdLine, []string{"tini", "--", "port-runner"}) {
		t.Errorf("ENTRYPOINT %v, want exec form tini -- port-runner", ep)
	}
	if len(cmd) != 1 || !slices.Equal(cmd[0].CmdLine, []string{"run", "--config", "/etc/port-runner/config.yaml"}) {
		t.Errorf("CMD %v, want the chart's args", cmd)
	}
}

// The Dockerfile's -ldflags, with its VERSION and COMMIT build args filled in, really reach
// `port-runner version`: the flags are taken from the parsed RUN line and built here.
func TestDockerfileVersionReachesTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	var ldflags string
	for _, r := range commands[*instructions.RunCommand](dockerfile(t)[0]) {
		if m := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(strings.Join(r.CmdLine, " ")); m != nil {
			ldflags = m[1]
		}
	}
	if ldflags == "" {
		t.Fatal("no -ldflags in the Dockerfile's go build")
	}
	ldflags = strings.NewReplacer("${VERSION}", "v9.8.7-test", "${COMMIT}", "0123abcd").Replace(ldflags)
	bin := filepath.Join(t.TempDir(), "port-runner")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/port-runner")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "port-runner v9.8.7-test (commit 0123abcd,") {
		t.Errorf("port-runner version = %q, want the build args' version and commit", out)
	}
}

// compareVersions compares Go versions like 1.26.5 and 1.26.0 (or 1.26) numerically.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			fmt.Sscan(pa[i], &x)
		}
		if i < len(pb) {
			fmt.Sscan(pb[i], &y)
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
