package runmsg

import (
	"reflect"
	"strings"
	"sync"
)

// objectCache holds the decoded "action" objects of recent messages by their exact text:
// every run of one action carries the same definition of it (payload.action), whose maps and
// strings were a third of a run's decoding, and whose bytes the run file writes again. A
// message whose text there is, byte for byte, a cached object's gets that object's value,
// shared and read-only (as Run.Context is), and its run file its bytes; any other text is
// parsed, so two runs whose action objects differ in a byte never share them. Bounded:
// maxCachedObjects of at most maxCachedObjectBytes each. A full cache replaces only an entry
// no run used in its last idleLookups lookups: an organization rotating through more actions
// than it holds keeps the ones it has, and every other action costs one parse, as without the
// cache (replacing on every miss would parse each run's action twice and encode it).
type objectCache struct {
	mu      sync.Mutex
	entries []*cachedObject
	lookups uint64 // finds so far: the clock an entry's idleness is counted on
}

const (
	cachedKey            = "action"
	maxCachedObjects     = 64
	maxCachedObjectBytes = 8 << 10
	idleLookups          = 4 << 10
)

// cachedObject is one object read at depth from text.
type cachedObject struct {
	text  string // its own copy: the value's strings are slices of it, not of a message
	depth int    // parsing limits depend on it (maxDepth): a text is the same value at one depth
	value map[string]any
	// stringified: text is what JSON.stringify writes of value (jsonParser.stringified).
	stringified bool
	enc         []byte // value as $PORT_RUN_FILE writes it (encodingJSON)
	lastHit     uint64 // the lookup that last found it (or added it)
}

// find is the object whose text begins text, read at depth; nil when none. A JSON object's
// parse ends at its closing brace and never looks past it: the text that begins with a
// cached object's text reads as that object.
func (c *objectCache) find(text string, depth int) *cachedObject {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups++
	for _, e := range c.entries {
		if e.depth == depth && strings.HasPrefix(text, e.text) {
			e.lastHit = c.lookups
			return e
		}
	}
	return nil
}

// slot is where a new object goes: the next free index, or an idle entry's; -1: none (mu held).
func (c *objectCache) slot() int {
	if len(c.entries) < maxCachedObjects {
		return len(c.entries)
	}
	victim := -1
	for i, e := range c.entries {
		if c.lookups-e.lastHit >= idleLookups && (victim < 0 || e.lastHit < c.entries[victim].lastHit) {
			victim = i
		}
	}
	return victim
}

// add reads text, an object that was read at depth, into a cached object of its own; nil when
// it is too large to keep or the cache has no room for it.
func (c *objectCache) add(text string, depth int) *cachedObject {
	if len(text) > maxCachedObjectBytes {
		return nil
	}
	c.mu.Lock()
	room := c.slot() >= 0
	c.mu.Unlock()
	if !room {
		return nil
	}
	own := strings.Clone(text)
	p := jsonParser{raw: []byte(own), text: own, values: true, stringified: true, parseStacks: newParseStacks()}
	v, err := p.value(depth)
	m, ok := v.(map[string]any)
	if err != nil || !ok || p.i != len(own) {
		return nil // it was read as an object once: it cannot fail
	}
	enc, err := appendJSON(nil, m, encodingJSON, nil)
	if err != nil {
		return nil
	}
	e := &cachedObject{text: own, depth: depth, value: m, stringified: p.stringified, enc: enc}
	c.mu.Lock()
	defer c.mu.Unlock()
	e.lastHit = c.lookups
	switch i := c.slot(); {
	case i == len(c.entries):
		c.entries = append(c.entries, e)
	case i >= 0:
		c.entries[i] = e
	default:
		return e // another decode took the room meanwhile: this run still has its value
	}
	return e
}

// memberValue reads the value of an object's member named k, at depth: an object named
// cachedKey of a "payload" object (inPayload), the action's definition, from the parser's
// cache when it has one. An object of that name elsewhere (a user input, an entity's
// property) may be new in every run: cached, it would be parsed twice and evict the
// definitions.
func (p *jsonParser) memberValue(k string, depth int, inPayload bool) (any, error) {
	p.skipSpace()
	if p.i >= len(p.raw) || p.raw[p.i] != '{' || depth >= maxDepth {
		return p.value(depth)
	}
	if p.cache == nil || k != cachedKey || !inPayload {
		return p.object(depth, k == "payload")
	}
	if e := p.cache.find(p.text[p.i:], depth); e != nil {
		p.i += len(e.text)
		p.stringified = p.stringified && e.stringified
		p.cached = e
		return e.value, nil
	}
	start := p.i
	v, err := p.object(depth, false)
	if err != nil {
		return nil, err
	}
	if e := p.cache.add(p.text[start:p.i], depth); e != nil {
		p.cached = e
		return e.value, nil // the same value, shared from now on
	}
	return v, nil
}

// addWritten makes m an object whose bytes are enc.
func (s *sharedObjects) addWritten(m map[string]any, enc []byte) {
	if m == nil || s.n >= maxSharedObjects {
		return
	}
	span := s.find(m)
	if span == nil {
		span = &s.objs[s.n]
		s.n++
	}
	*span = objectSpan{m: reflect.ValueOf(m).UnsafePointer(), enc: enc}
}
