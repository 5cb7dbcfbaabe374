// Package examples ships the example config and scripts inside the binary, so
// `port-runner demo` runs anywhere with nothing else installed.
package examples

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FS holds config.yaml and scripts/.
//
//go:embed config.yaml scripts
var FS embed.FS

// Extract writes the embedded examples under dir/examples, scripts executable, so the
// config's relative command paths resolve against dir (the demo and `port-runner try`).
func Extract(dir string) error {
	return fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, "examples", path)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := fs.ReadFile(FS, path)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(path, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(target, data, mode); err != nil {
			return fmt.Errorf("extract example %s: %w", path, err)
		}
		return nil
	})
}
