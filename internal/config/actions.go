package config

import (
	"path/filepath"
	"sort"
	"strings"
)

// ActionNames returns the configured action identifiers, sorted.
func (c *Config) ActionNames() []string {
	names := make([]string, 0, len(c.Actions))
	for n := range c.Actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ResolveCommands makes relative command paths absolute against base (the agent's working
// directory), so a per-action workdir cannot change which program runs.
func (c *Config) ResolveCommands(base string) {
	for name, a := range c.Actions {
		if len(a.Command) > 0 && strings.Contains(a.Command[0], "/") && !filepath.IsAbs(a.Command[0]) {
			cmd := append([]string(nil), a.Command...)
			cmd[0] = filepath.Join(base, cmd[0])
			a.Command = cmd
			c.Actions[name] = a
		}
	}
}
