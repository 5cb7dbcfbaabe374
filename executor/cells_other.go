//go:build unix && !linux

package executor

// cellIdentity: outside Linux, cells never serve again (no Landlock ruleset to keep).
type cellIdentity struct{}

func identify(string) (cellIdentity, error) { return cellIdentity{}, nil }

// clear says the cell cannot serve another run.
func (c *cell) clear([]string, int, int) bool { return false }
