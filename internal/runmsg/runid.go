// Which strings may be a Port run id. A run id becomes a path segment of
// Port's API (/v1/actions/runs/{id}/logs), so one that could mean another path ("..", "a/b",
// "%2F") must never get that far: the decoder refuses it and the API client checks again
// before it builds a URL.

package runmsg

import "fmt"

// MaxIDLen bounds an id; Port's are about 30 characters.
const MaxIDLen = 128

// CheckID is nil for a non-empty id of at most MaxIDLen characters from [A-Za-z0-9_-]; that set
// has no '.', so "." and ".." are out too. The error does not repeat the id: it is untrusted.
func CheckID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("run id is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("run id is %d bytes, over %d", len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("run id has a character outside [A-Za-z0-9_-] at byte %d", i)
		}
	}
	return nil
}
