//go:build unix

package executor

import (
	"fmt"
	"os"
)

// A cell is a run directory that outlives its run (ROOT/agent-XXXX/run-XXXX): reset and
// emptied when its run ends, it serves the next one, so that what is built for the
// directory rather than the run is kept: a sandboxed run's Landlock ruleset, whose rules
// hold the files they name, is built once per cell (and per what else its action allows)
// instead of once per run, a hundred landlock_add_rule calls or so each (BENCHMARKS.md "Run
// directories that serve again"). Only a sandboxed run under the shim gives its cell back,
// and only when its shim ended by itself (RunsDir.served): its processes are all gone, and
// it never had a right on the directory holding the cell, so the cell's path still names
// the cell. Any other run's directory is removed when it ends, as before cells.
type cell struct {
	dir string
	// id is what the directory was when its first ruleset was built, before any command
	// ran in it; clear checks it still is. Only a cell with a ruleset serves again.
	id cellIdentity
	// rulesets are the Landlock rulesets built for the cell, by rulesetKey. Only the run
	// holding the cell reads or adds to them.
	rulesets map[string]cellRuleset
	order    []string // rulesets' keys, oldest first
	served   bool     // RunsDir.served: its run may give it back
}

type cellRuleset struct {
	file  *os.File
	flags uint32
}

const (
	// maxIdleCells bounds the cells kept between runs; more are removed when their runs end
	// (after a burst of runs, say).
	maxIdleCells = 64
	// maxCellRulesets bounds the rulesets one cell keeps: one per set of actions that allow
	// the same paths; a cell that serves more actions builds the oldest one again.
	maxCellRulesets = 4
)

// ruleset is the cell's ruleset for key, built by build (which gets the cell's directory
// and returns a ruleset fd and its flags) the first time; the cell owns it.
func (c *cell) ruleset(key []byte, build func(cellDir string) (int, uint32, error)) (*os.File, uint32, error) {
	if r, ok := c.rulesets[string(key)]; ok { // no string made for the lookup
		return r.file, r.flags, nil
	}
	return c.newRuleset(string(key), build)
}

// newRuleset builds the cell's ruleset for key, which it has not (see ruleset).
func (c *cell) newRuleset(key string, build func(cellDir string) (int, uint32, error)) (*os.File, uint32, error) {
	if c.rulesets == nil {
		if err := c.identify(); err != nil {
			return nil, 0, err
		}
	}
	fd, flags, err := build(c.dir)
	if err != nil {
		return nil, 0, err
	}
	if c.rulesets == nil {
		c.rulesets = make(map[string]cellRuleset, 1)
	}
	if len(c.order) >= maxCellRulesets {
		oldest := c.order[0]
		c.order = c.order[1:]
		c.rulesets[oldest].file.Close()
		delete(c.rulesets, oldest)
	}
	r := cellRuleset{file: os.NewFile(uintptr(fd), "landlock-ruleset"), flags: flags}
	c.rulesets[key], c.order = r, append(c.order, key)
	return r.file, r.flags, nil
}

// identify records what the cell's directory is now (cell.id).
func (c *cell) identify() error {
	id, err := identify(c.dir)
	if err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	c.id = id
	return nil
}

// drop closes the cell's rulesets and removes its directory with what is in it (files:
// the caller's names inside it, see RemoveRunDir).
func (c *cell) drop(files []string) error {
	for _, r := range c.rulesets {
		r.file.Close()
	}
	c.rulesets, c.order = nil, nil
	return RemoveRunDir(c.dir, files...)
}
