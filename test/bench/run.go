//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/test/bench/internal/benchkit"
	"github.com/port-runner/port-runner/test/harness"
)

// bench is one run of the bench: what every case shares.
type bench struct {
	o      options
	out    io.Writer // progress lines
	dir    string
	agent  string // the agent binary
	stamp  string // the stamp command binary
	kafka  *benchkit.Kafka
	port   *benchkit.Port
	prod   *benchkit.Producer
	t      *table
	issues []string // what went wrong besides missed goals: lost runs, agent errors
}

// run measures the selected cases, prints the table to stdout and returns it. It fails on
// broken runs (lost, closed twice, agent errors), not on missed goals: those are the table's.
func run(ctx context.Context, o options, stdout, stderr io.Writer) (t *table, err error) {
	b := &bench{o: o, out: stderr, t: &table{}}
	if b.dir, err = os.MkdirTemp("", "port-runner-bench-*"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil || o.keep {
			fmt.Fprintf(stderr, "bench: configs and agent logs kept in %s\n", b.dir)
			return
		}
		os.RemoveAll(b.dir)
	}()
	started := time.Now()
	shim := ""
	b.agent = o.agentBin
	if b.agent == "" {
		if b.agent, shim, err = harness.BuildAgent(ctx, b.dir, ""); err != nil {
			return nil, err
		}
	} else if fileExists(filepath.Join(filepath.Dir(b.agent), "port-runner-shim")) {
		shim = "prebuilt"
	}
	b.stamp = filepath.Join(b.dir, "stamp")
	if err := harness.GoBuild(ctx, "./test/bench/internal/stamp", b.stamp); err != nil {
		return nil, err
	}
	b.logf("built the agent and the stamp command in %s", time.Since(started).Round(time.Millisecond))

	if b.kafka, err = benchkit.StartKafka(o.brokers); err != nil {
		return nil, err
	}
	defer b.kafka.Close()
	if b.port, err = benchkit.StartPort(ctx); err != nil {
		return nil, err
	}
	defer b.port.Close()
	// No linger: a produced run leaves at once, as Port's own producer sends it.
	if b.prod, err = benchkit.NewProducer(b.kafka, b.port.Emu, kgo.ProducerLinger(0)); err != nil {
		return nil, err
	}
	defer b.prod.Close()

	if o.cases["throughput"] || o.cases["dispatch"] || o.cases["chatty"] || o.cases["rss"] {
		if err := b.mainAgent(ctx); err != nil {
			return nil, err
		}
	}
	if o.cases["rss"] {
		for _, c := range []func(context.Context) error{b.caseSleeps, b.caseFlood, b.caseLong} {
			if err := c(ctx); err != nil {
				return nil, err
			}
		}
	}

	if o.cases["thousand"] {
		if err := b.caseThousand(ctx); err != nil {
			return nil, err
		}
	}

	shimDesc := "the agent's own binary as shim"
	if shim != "" {
		shimDesc = "the " + shim + " port-runner-shim beside the agent"
	}
	fmt.Fprintf(stdout, "port-runner bench: %s; %s; %d CPUs (%s); %s; %s; commit %s; %s in all\n\n",
		modeDesc(o), b.kafka.Desc, runtime.NumCPU(), kernel(), runtime.Version(), shimDesc, commit(ctx, harness.ModuleRoot()),
		time.Since(started).Round(time.Second))
	b.t.print(stdout)
	if m := b.t.missed(); len(m) > 0 {
		fmt.Fprintf(stdout, "\ngoals missed: %s\n", strings.Join(m, "; "))
	}
	if len(b.issues) > 0 {
		return b.t, errors.New(strings.Join(b.issues, "; "))
	}
	return b.t, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.out, "bench: "+format+"\n", args...)
}

// problem records something that makes the bench's figures untrustworthy.
func (b *bench) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.issues = append(b.issues, msg)
	b.logf("PROBLEM: %s", msg)
}

// startAgent starts an agent on a topic of its own and waits until it has joined its group.
func (b *bench) startAgent(ctx context.Context, name string, partitions int, cfg benchkit.Config) (*benchkit.Agent, string, error) {
	topic, err := b.kafka.NewTopic(ctx, name, partitions)
	if err != nil {
		return nil, "", err
	}
	cfg.PortURL, cfg.Brokers, cfg.Topic = b.port.URL, b.kafka.Brokers, topic
	cfg.Group = fmt.Sprintf("%s.bench-%s-%d", benchkit.OrgID, name, time.Now().UnixNano())
	ag, err := benchkit.StartAgent(ctx, b.agent, b.dir, name, cfg)
	if err != nil {
		return nil, "", err
	}
	if err := ag.Ready(ctx, time.Minute); err != nil {
		ag.Kill()
		return nil, "", err
	}
	return ag, topic, nil
}

// stopAgent stops an agent and records its runs' and its own problems.
func (b *bench) stopAgent(name string, ag *benchkit.Agent, ids []string) {
	if err := ag.Stop(30 * time.Second); err != nil {
		b.problem("%s: %v", name, err)
	}
	if _, errs := ag.LogCounts(); errs > 0 {
		b.problem("%s: %d error lines in the agent's log %s", name, errs, ag.LogPath)
	}
	for _, p := range b.port.Problems(ids) {
		b.problem("%s: %s", name, p)
	}
}

func (b *bench) caseCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.o.caseTimeout)
}

// produceAndWait produces runs of action and waits until Port has every one terminated.
func (b *bench) produceAndWait(ctx context.Context, topic, action string, ids []string) error {
	if _, err := b.prod.Many(ctx, topic, action, ids); err != nil {
		return err
	}
	return b.port.WaitEnded(ctx, ids)
}

func modeDesc(o options) string {
	var cs []string
	for _, c := range []string{"throughput", "dispatch", "chatty", "rss", "thousand"} {
		if o.cases[c] {
			cs = append(cs, c)
		}
	}
	return fmt.Sprintf("cases %s, flushInterval %s", strings.Join(cs, ","), o.flush)
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "linux"
	}
	return "linux " + strings.TrimSpace(string(b))
}

func commit(ctx context.Context, root string) string {
	c := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	c.Dir = root
	out, err := c.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// stampOf finds "stamp <unix ns>" in a run's stored log.
func stampOf(b *benchkit.Port, id string) (time.Time, bool) {
	r, ok := b.Emu.Run(id)
	if !ok {
		return time.Time{}, false
	}
	for _, e := range r.Logs {
		for line := range strings.SplitSeq(e.Message, "\n") {
			if v, ok := strings.CutPrefix(line, "stamp "); ok {
				ns, err := strconv.ParseInt(v, 10, 64)
				if err == nil {
					return time.Unix(0, ns), true
				}
			}
		}
	}
	return time.Time{}, false
}
