package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// platforms are the targets a release builds.
var platforms = []struct{ os, arch string }{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}

// built is the tree scripts/release built in (scripts/test: `scripts/release --rehearse DIR`,
// a copy of the repository released from its tag): its dist/ and bin/release/, and the version.
func built(t *testing.T) (root, version string) {
	t.Helper()
	root = os.Getenv("PORT_RUNNER_RELEASE_DIR")
	if root == "" {
		t.Skip("PORT_RUNNER_RELEASE_DIR unset: scripts/test sets it after scripts/release --rehearse")
	}
	var meta struct{ Version string }
	readJSON(t, filepath.Join(root, "dist", "metadata.json"), &meta)
	if meta.Version == "" {
		t.Fatal("dist/metadata.json has no version")
	}
	return root, meta.Version
}

// git runs git in the released tree.
func git(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// Every platform's archive holds the agent (and on Linux its exec shim), static and for that
// platform, with the license (Apache-2.0), README and changelog, and has its SBOM; checksums.txt covers every
// file of the release, the chart included, with the right sums.
func TestArchivesSBOMsChecksums(t *testing.T) {
	root, version := built(t)
	dist := filepath.Join(root, "dist")
	sums := checksums(t, filepath.Join(dist, "checksums.txt"))
	want := []string{"port-runner-" + version + ".tgz"}
	for _, p := range platforms {
		name := fmt.Sprintf("port-runner_%s_%s_%s.tar.gz", version, p.os, p.arch)
		files := untar(t, filepath.Join(dist, name))
		bins := []string{"port-runner"}
		if p.os == "linux" {
			bins = append(bins, "port-runner-shim")
		}
		wantFiles := append([]string{"LICENSE", "README.md", "CHANGELOG.md"}, bins...)
		if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, slices.Sorted(slices.Values(wantFiles))) {
			t.Errorf("%s holds %v, want %v", name, got, wantFiles)
		}
		for _, bin := range bins {
			if err := checkBinary(files[bin], p.os, p.arch); err != nil {
				t.Errorf("%s: %s: %v", name, bin, err)
			}
		}
		// README "Releases": the archives carry the Go shim (the image, what deploy/Dockerfile builds).
		if shim, ok := files["port-runner-shim"]; ok {
			if path := goMainPath(shim); path != "github.com/port-runner/port-runner/cmd/port-runner-shim" {
				t.Errorf("%s: port-runner-shim is not the Go shim (Go main package %q): update README \"Releases\" and this check", name, path)
			}
		}
		if lic := string(files["LICENSE"]); !strings.Contains(lic, "Apache License") || !strings.Contains(lic, "Version 2.0, January 2004") {
			t.Errorf("%s: LICENSE is not the Apache License 2.0", name)
		}
		var sbom struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name string `json:"name"`
			} `json:"packages"`
		}
		readJSON(t, filepath.Join(dist, name+".sbom.json"), &sbom)
		if !strings.HasPrefix(sbom.SPDXVersion, "SPDX-") || !slices.ContainsFunc(sbom.Packages, func(p struct {
			Name string `json:"name"`
		}) bool {
			return p.Name == "github.com/twmb/franz-go"
		}) {
			t.Errorf("%s.sbom.json: spdxVersion %q, %d packages, franz-go not among them", name, sbom.SPDXVersion, len(sbom.Packages))
		}
		want = append(want, name, name+".sbom.json")
	}
	for _, f := range want {
		path := filepath.Join(dist, f)
		if f == want[0] {
			path = filepath.Join(root, "bin", "release", f)
		}
		if got := sha256File(t, path); sums[f] != got {
			t.Errorf("checksums.txt: %s is %q, the file's sha256 is %s", f, sums[f], got)
		}
	}
	if len(sums) != len(want) {
		t.Errorf("checksums.txt lists %d files, want %d: %v", len(sums), len(want), slices.Sorted(maps.Keys(sums)))
	}
}

// The chart is packaged with the release's version as its version and appVersion (so its
// default image tag is the release's), and the notes are CHANGELOG.md's section.
func TestChartAndNotes(t *testing.T) {
	root, version := built(t)
	files := untar(t, filepath.Join(root, "bin", "release", "port-runner-"+version+".tgz"))
	var chart struct {
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(files["port-runner/Chart.yaml"], &chart); err != nil {
		t.Fatal(err)
	}
	if chart.Version != version || chart.AppVersion != version {
		t.Errorf("packaged chart: version %q appVersion %q, want %q", chart.Version, chart.AppVersion, version)
	}
	for _, f := range []string{"port-runner/values.schema.json", "port-runner/templates/deployment.yaml", "port-runner/files/alerts/port-runner.rules.yaml"} {
		if _, ok := files[f]; !ok {
			t.Errorf("packaged chart lacks %s", f)
		}
	}
	notes, err := os.ReadFile(filepath.Join(root, "bin", "release", "notes.md"))
	if err != nil {
		t.Fatal(err)
	}
	changelog, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := section(string(changelog), version)
	if want == "" || strings.TrimSpace(string(notes)) != want {
		t.Errorf("bin/release/notes.md is not CHANGELOG.md's section [%s] (%q):\n%s", version, want, notes)
	}
}

// section is the body of CHANGELOG.md's "## [version]" section, trimmed.
func section(changelog, version string) string {
	_, rest, ok := strings.Cut(changelog, "\n## ["+version+"]")
	if !ok {
		return ""
	}
	_, body, _ := strings.Cut(rest, "\n")
	body, _, _ = strings.Cut(body, "\n## ")
	return strings.TrimSpace(body)
}

// `port-runner version` from the built archive prints the tag it was built from and its commit.
func TestVersionFromTheArchive(t *testing.T) {
	root, version := built(t)
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skipf("no archive for %s", runtime.GOOS)
	}
	name := fmt.Sprintf("port-runner_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
	bin := filepath.Join(t.TempDir(), "port-runner")
	if err := os.WriteFile(bin, untar(t, filepath.Join(root, "dist", name))["port-runner"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", name, err, out)
	}
	tag := git(t, root, "describe", "--tags", "--exact-match")
	want := fmt.Sprintf("port-runner %s (commit %s, ", tag, git(t, root, "rev-parse", "HEAD"))
	if tag != "v"+version || !strings.HasPrefix(string(out), want) {
		t.Errorf("port-runner version from %s (built from tag %s) = %q, want it to start %q", name, tag, out, want)
	}
}

// checkBinary: an executable for goos/goarch; on Linux static (no interpreter, no
// dynamic section), so it runs on any base image.
func checkBinary(b []byte, goos, goarch string) error {
	r := strings.NewReader(string(b))
	switch goos {
	case "linux":
		f, err := elf.NewFile(r)
		if err != nil {
			return err
		}
		machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		if f.Machine != machine {
			return fmt.Errorf("ELF for %v, want %v", f.Machine, machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				return fmt.Errorf("dynamically linked (%v)", p.Type)
			}
		}
	case "darwin":
		f, err := macho.NewFile(r)
		if err != nil {
			return err
		}
		cpu := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Cpu != cpu {
			return fmt.Errorf("Mach-O for %v, want %v", f.Cpu, cpu)
		}
	}
	return nil
}

// goMainPath is the main package a Go binary was built from ("" for another binary).
func goMainPath(b []byte) string {
	info, err := buildinfo.Read(bytes.NewReader(b))
	if err != nil {
		return ""
	}
	return info.Path
}

func untar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("%s: %s: %v", path, h.Name, err)
			}
			out[h.Name] = b
		}
	}
}

// checksums reads a sha256sum file: file name -> hex sum.
func checksums(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("%s: malformed line %q", path, line)
		}
		out[name] = sum
	}
	return out
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
