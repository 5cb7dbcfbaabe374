package consumer

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// history is the run ids recently handled on a partition, with the time of their message,
// so that a message written twice (a producer's retry, a replay within the message age) is
// known for what it is by whoever owns the partition, after a restart or a handover, at no
// Port request (README "Delivery").
type history struct {
	runs map[string]int64 // run id -> its message's time, Unix seconds
	// cover: every run handled here whose message is from cover on is in runs (older ones
	// were let go to stay small). known is false where nothing was said (an older agent's
	// metadata): then nothing is covered.
	cover int64
	known bool
}

// maxHistoryRuns bounds a partition's history in memory; the commit carries as many of the
// newest as fit (meta_fit.go).
const maxHistoryRuns = 2048

// maxRunIDLen bounds one id read from metadata: the decoder's own limit (runmsg.MaxIDLen).
const maxRunIDLen = 128

func newHistory() history { return history{runs: map[string]int64{}} }

// covers says whether a run whose message is from at would be in the history if it had
// been handled here.
func (h history) covers(at time.Time) bool { return h.known && at.Unix() >= h.cover }

// add records a handled run, letting the oldest go beyond maxHistoryRuns (the cover moves).
func (h *history) add(id string, at time.Time) {
	if _, ok := h.runs[id]; ok {
		return
	}
	h.runs[id] = at.Unix()
	for len(h.runs) > maxHistoryRuns {
		oldest, t := "", int64(0)
		for id, ts := range h.runs {
			if oldest == "" || ts < t {
				oldest, t = id, ts
			}
		}
		delete(h.runs, oldest)
		h.cover = max(h.cover, t+1)
	}
}

// forgetBefore drops runs whose message is older than t: such messages are looked up in
// Port anyway (security.maxMessageAge), so they need no history.
func (h *history) forgetBefore(t time.Time) {
	for id, ts := range h.runs {
		if ts < t.Unix() {
			delete(h.runs, id)
		}
	}
}

// newestFirst is the history's runs, newest message first.
func (h history) newestFirst() []string {
	ids := make([]string, 0, len(h.runs))
	for id := range h.runs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if h.runs[ids[i]] != h.runs[ids[j]] {
			return h.runs[ids[i]] > h.runs[ids[j]]
		}
		return ids[i] < ids[j]
	})
	return ids
}

func (h *history) field(key, val string) error {
	switch key {
	case "c":
		c, err := strconv.ParseInt(val, 36, 64)
		if err != nil || c < 0 {
			return fmt.Errorf("bad cover %q", val)
		}
		h.cover, h.known = c, true
	case "r":
		for _, e := range strings.Split(val, ",") {
			id, ts, ok := strings.Cut(e, ".")
			t, err := strconv.ParseInt(ts, 36, 64)
			if !ok || err != nil || t < 0 || !validRunID(id) {
				return fmt.Errorf("bad run %q", e)
			}
			if len(h.runs) >= maxHistoryRuns {
				return fmt.Errorf("more than %d runs", maxHistoryRuns)
			}
			h.runs[id] = t
		}
	}
	return nil
}

// validRunID: what runmsg accepts as a run id, so ids pass through metadata unescaped.
func validRunID(id string) bool {
	if id == "" || len(id) > maxRunIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// formatHolders writes the holders of leases as "h=": bound (seconds, base 36), ':', member
// id (escaped), '/' between holders.
func formatHolders(hs []Lease) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = strconv.FormatInt(int64(h.Bound/time.Second), 36) + ":" + escapeMember(h.Holder)
	}
	return strings.Join(parts, "/")
}

// maxHolders: o= names a holder with one base-36 digit.
const maxHolders = 36

func parseHolders(val string) ([]Lease, error) {
	var out []Lease
	for _, e := range strings.Split(val, "/") {
		b, m, ok := strings.Cut(e, ":")
		secs, err := strconv.ParseInt(b, 36, 64)
		if !ok || err != nil || secs < 0 || secs > int64(365*24*time.Hour/time.Second) {
			return nil, fmt.Errorf("bad holder %q", e)
		}
		member, err := url.PathUnescape(m)
		if err != nil || member == "" {
			return nil, fmt.Errorf("bad holder %q", e)
		}
		if out = append(out, Lease{Holder: member, Bound: time.Duration(secs) * time.Second}); len(out) > maxHolders {
			return nil, fmt.Errorf("more than %d holders", maxHolders)
		}
	}
	return out, nil
}

// escapeMember %-escapes every byte of a member id but [A-Za-z0-9._~-], so it holds no
// separator of the metadata.
func escapeMember(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
