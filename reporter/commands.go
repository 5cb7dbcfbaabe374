package reporter

import (
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/portapi"
)

const (
	// maxValueBytes bounds a workflow command's value and the Outcome's label and summary.
	maxValueBytes = 4 << 10
	// maxLinks bounds the links a run can set, so the PATCH stays well under 1 MiB.
	maxLinks = 32
	// maxOutputs bounds the ::port-output:: keys of a run, so its closing request stays small.
	maxOutputs = 64
)

// commands is the workflow-command stage: ::port-...:: lines become a pending PATCH, the
// run's own label and its outputs, and ::add-mask:: values go to the masker. Values are
// masked and bounded as they arrive.
type commands struct {
	mask    *masker
	log     *runLogger
	patch   portapi.RunPatch
	patched bool     // patch holds something not yet sent
	links   []string // every ::port-link:: of the run: a PATCH replaces the whole list
	label   string   // the last ::port-status-label::
	outputs map[string]string
	// notice writes a line of the agent's own into the run's log (its logLine); maskBoundTold:
	// it said the ::add-mask:: bound was reached.
	notice        interface{ logLine(line string) }
	maskBoundTold bool
	// warned: the kinds of ignored command the agent's log was told of. Once per run and
	// kind: these lines stay out of the run's log and its byte budget, so a command could
	// print them as fast as the agent logs (its log's one lock, every goroutine's).
	warned map[string]bool
}

// warnIgnored logs, the first time in the run for its kind (msg), a command it ignores.
func (c *commands) warnIgnored(msg string, fields ...zap.Field) {
	if c.warned[msg] {
		return
	}
	if c.warned == nil {
		c.warned = map[string]bool{}
	}
	c.warned[msg] = true
	c.log.get().Warn(msg+" (later ones of the run are not logged)", fields...)
}

// apply takes line if it is a workflow command: handled says so (it stays out of the log),
// patched that the PATCH to send changed.
func (c *commands) apply(line string) (handled, patched bool) {
	if !strings.HasPrefix(line, "::") {
		return false, false
	}
	name, value, ok := strings.Cut(line[2:], "::")
	if !ok {
		return false, false
	}
	switch name {
	case "add-mask":
		if !c.mask.addFromCommand(value) && !c.maskBoundTold {
			c.maskBoundTold = true
			c.notice.logLine(fmt.Sprintf("port-runner: ::add-mask:: past %d values or %d bytes in this run: this value and later ones are NOT masked",
				maxCommandMasks, maxCommandMaskBytes))
		}
		return true, false
	case "port-status-label":
		v := c.mask.value(value)
		c.label = v
		c.patch.StatusLabel = &v
	case "port-link":
		v := c.mask.Replace(value)
		if v == "" || len(v) > maxValueBytes || len(c.links) >= maxLinks {
			c.warnIgnored("ignoring ::port-link::", zap.Int("bytes", len(v)), zap.Int("links", len(c.links)))
			return true, false
		}
		c.links = append(c.links, v)
		c.patch.Link = slices.Clone(c.links) // Port replaces the list: send all of them
	case "port-summary":
		v := c.mask.value(value)
		c.patch.Summary = &v
	case "port-external-run-id":
		v := c.mask.value(value)
		c.patch.ExternalRunID = &v
	case "port-output":
		c.output(value)
		return true, false // the closing request carries outputs; nothing to patch now
	default:
		return false, false
	}
	c.patched = true
	return true, true
}

// output takes one ::port-output::KEY=VALUE. A later value of a key wins.
func (c *commands) output(kv string) {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" || len(k) > 256 {
		c.warnIgnored("ignoring ::port-output:: without KEY=VALUE", zap.Int("bytes", len(kv)))
		return
	}
	if c.outputs == nil {
		c.outputs = map[string]string{}
	}
	k = c.mask.Replace(k)
	if _, seen := c.outputs[k]; !seen && len(c.outputs) >= maxOutputs {
		c.warnIgnored("ignoring ::port-output:: past the limit", zap.Int("outputs", maxOutputs))
		return
	}
	c.outputs[k] = c.mask.value(v)
}

// take gives the pending PATCH, if any, and forgets it.
func (c *commands) take() (portapi.RunPatch, bool) {
	if !c.patched {
		return portapi.RunPatch{}, false
	}
	p := c.patch
	c.patch, c.patched = portapi.RunPatch{}, false
	return p, true
}

// takeForClosing gives what of the pending PATCH must still go once the run ends: all but
// the label, which the closing request carries anyway.
func (c *commands) takeForClosing() (portapi.RunPatch, bool) {
	p, patched := c.take()
	p.StatusLabel = nil
	return p, patched && (p.Link != nil || p.Summary != nil || p.ExternalRunID != nil)
}
