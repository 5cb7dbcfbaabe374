//go:build unix

package executor

import "os"

// A cell is a run directory that outlives its run (ROOT/agent-XXXX/run-N): emptied and
// reset when its run ends, it serves the next one, so that what is built for the directory
// rather than the run is kept: a sandboxed run's Landlock ruleset, whose rules hold the
// files they name, is built once per cell (and per what else its action allows) instead of
// once per run, a hundred landlock_add_rule calls or so each (BENCHMARKS.md "Where the
// goals stand"). The run has no right on the directory that holds its cell, so it can
// neither rename nor replace it. A cell serves again only after a run whose processes all
// ended with it, once cleared (clear); anything else takes the cell away.
type cell struct {
	dir  string
	made bool // its directory exists (NewRunDir makes it for the cell's first run)
	// rulesets are the Landlock rulesets built for the cell, by rulesetKey. Only the run
	// holding the cell reads or adds to them.
	rulesets map[string]cellRuleset
	order    []string // rulesets' keys, oldest first
	spoiled  bool     // RunsDir.spoil: never to serve another run
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
func (c *cell) ruleset(key string, build func(cellDir string) (int, uint32, error)) (*os.File, uint32, error) {
	if r, ok := c.rulesets[key]; ok {
		return r.file, r.flags, nil
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

// drop closes the cell's rulesets and removes its directory with whatever is in it.
func (c *cell) drop() error {
	for _, r := range c.rulesets {
		r.file.Close()
	}
	c.rulesets, c.order = nil, nil
	return os.RemoveAll(c.dir)
}
