package consumer

import (
	"fmt"
	"net/url"
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
	// order is runs in the order they were added (about their messages' order): the commit
	// writes the newest that fit, and the oldest go first when there are too many.
	order []historyEntry
	// cover: every run handled here whose message is from cover on is in runs (older ones
	// were let go to stay small). known is false where nothing was said (an older agent's
	// metadata): then nothing is covered.
	cover int64
	known bool
	ver   uint64      // bumped on every change
	enc   *historyEnc // the last encoding (meta_fit.go), shared by the copies of h
	// forgot is ver after the last run forgetBefore let go: an encoding of a version from
	// it on lacks only the runs added since.
	forgot uint64
}

// historyEnc is a history as the commit metadata wrote it last: each commit carries it, and
// it changes at most once a run.
type historyEnc struct {
	ver    uint64
	budget int
	cover  int64
	runs   []byte
	n      int // the runs written
}

// historyEntry is one run of history.order; upTo is the latest message time of it and of
// every run added before it, so the cover of what is left out of a commit is at hand.
type historyEntry struct {
	id       string
	at, upTo int64
}

// maxHistoryRuns bounds a partition's history in memory (about 100 bytes a run): more runs
// within security.maxMessageAge than that (a backlog's burst: Port's API budget allows far
// fewer in steady state) cost a Port lookup each for the oldest of them.
const maxHistoryRuns = 4096

// maxRunIDLen bounds one id read from metadata: the decoder's own limit (runmsg.MaxIDLen).
const maxRunIDLen = 128

func newHistory() history { return history{runs: map[string]int64{}, enc: &historyEnc{}} }

// covers says whether a run whose message is from at would be in the history if it had
// been handled here.
func (h history) covers(at time.Time) bool { return h.known && at.Unix() >= h.cover }

// add records a handled run, letting the oldest go beyond maxHistoryRuns (the cover moves).
func (h *history) add(id string, at time.Time) { h.addUnix(id, at.Unix()) }

func (h *history) addUnix(id string, ts int64) {
	if _, ok := h.runs[id]; ok {
		return
	}
	h.runs[id] = ts
	h.ver++
	upTo := ts
	if n := len(h.order); n > 0 {
		upTo = max(upTo, h.order[n-1].upTo)
	}
	h.order = append(h.order, historyEntry{id: id, at: ts, upTo: upTo})
	for len(h.order) > maxHistoryRuns {
		oldest := h.order[0]
		h.order = h.order[1:]
		delete(h.runs, oldest.id)
		h.cover = max(h.cover, oldest.at+1)
	}
}

// forgetBefore drops runs whose message is older than t: such messages are looked up in
// Port anyway (security.maxMessageAge), so they need no history.
func (h *history) forgetBefore(t time.Time) {
	cut := t.Unix()
	kept := h.order[:0]
	upTo := int64(0)
	for _, e := range h.order {
		if e.at < cut {
			delete(h.runs, e.id)
			h.ver++
			h.forgot = h.ver
			continue
		}
		upTo = max(upTo, e.at)
		e.upTo = upTo
		kept = append(kept, e)
	}
	clear(h.order[len(kept):])
	h.order = kept
}

// newest calls f with the history's runs, the last added first, until f returns false; f
// gets the cover that holds if it and the runs after it are left out.
func (h history) newest(f func(id string, at, coverWithout int64) bool) {
	for i := len(h.order) - 1; i >= 0; i-- {
		if !f(h.order[i].id, h.order[i].at, max(h.cover, h.order[i].upTo+1)) {
			return
		}
	}
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
		entries := strings.Split(val, ",")
		if len(h.runs)+len(entries) > maxHistoryRuns {
			return fmt.Errorf("more than %d runs", maxHistoryRuns)
		}
		// Written newest first: added oldest first, in the order they were handled.
		for i := len(entries) - 1; i >= 0; i-- {
			id, ts, ok := strings.Cut(entries[i], ".")
			t, err := strconv.ParseInt(ts, 36, 64)
			if !ok || err != nil || t < 0 || !validRunID(id) {
				return fmt.Errorf("bad run %q", entries[i])
			}
			h.addUnix(id, t)
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

// appendHolders writes the holders of leases as "h=": bound (seconds, base 36), ':', member
// id (escaped), '/' between holders.
func appendHolders(b []byte, hs []Lease) []byte {
	for i, h := range hs {
		if i > 0 {
			b = append(b, '/')
		}
		b = strconv.AppendInt(b, int64(h.Bound/time.Second), 36)
		b = appendEscapedMember(append(b, ':'), h.Holder)
	}
	return b
}

// appendEscapedMember %-escapes every byte of a member id but [A-Za-z0-9._~-], so it holds
// no separator of the metadata.
func appendEscapedMember(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-' {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return b
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
