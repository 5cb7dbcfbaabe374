//go:build linux

// Command backlog measures the agent's memory while it works through a Kafka backlog.
//
// It starts Kafka (in-process kfake, or an external broker with -brokers / KAFKA_BROKERS)
// and the Port API emulator in this process, produces -messages signed, real-shaped run
// messages (~1 KiB each) before the agent starts, registers every run in the emulator, then
// builds and starts the agent as a separate process (`port-runner run --config FILE`) with
// executor.maxConcurrent -max-concurrent and a trivial command. It samples the agent's
// VmRSS from /proc every -sample and reports peak RSS (VmHWM), RSS at 10/50/90 % progress and
// runs per second. It stops when every run (or -stop-after runs) is terminated in the
// emulator, or after -timeout, and exits non-zero if runs were lost, terminated twice, or the
// agent failed.
//
//	go run ./test/bench/backlog -messages 100000 -max-concurrent 8
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/test/bench/internal/benchkit"
	"github.com/port-runner/port-runner/test/harness"
)

const action = "create_microservice"

type options struct {
	messages      int
	maxConcurrent int
	partitions    int
	stopAfter     int
	timeout       time.Duration
	sample        time.Duration
	brokers       string
	agentBin      string
	command       string
	rps           float64
	keep          bool
	csv           string
	compression   string
	headRun       time.Duration
	pad           int
}

func main() {
	var o options
	flag.IntVar(&o.messages, "messages", 100000, "run messages in the backlog, produced before the agent starts")
	flag.IntVar(&o.maxConcurrent, "max-concurrent", 8, "the agent's executor.maxConcurrent")
	flag.IntVar(&o.partitions, "partitions", 3, "partitions of the runs topic")
	flag.IntVar(&o.stopAfter, "stop-after", 0, "stop once this many runs are terminated (0: all of -messages); the rest stays in the topic")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up (SIGKILL the agent, exit 1) after this long")
	flag.DurationVar(&o.sample, "sample", 100*time.Millisecond, "RSS sampling interval")
	flag.StringVar(&o.brokers, "brokers", os.Getenv("KAFKA_BROKERS"), "external Kafka brokers host:port[,...] (PLAINTEXT); empty: in-process kfake")
	flag.StringVar(&o.agentBin, "agent", "", "a prebuilt port-runner binary (default: go build ./cmd/port-runner into a temp dir)")
	flag.StringVar(&o.command, "command", "true", "the action's command (argv[0] looked up in PATH, rest split on spaces)")
	flag.Float64Var(&o.rps, "rps", 5000, "the agent's port.requestsPerSecond")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (config, agent log) even on success")
	flag.StringVar(&o.csv, "csv", "", "write every RSS sample (seconds,terminated,rss_kib) to this file")
	flag.StringVar(&o.compression, "compression", "snappy", "producer batch compression: snappy (franz-go's default), none, lz4, zstd, gzip")
	flag.DurationVar(&o.headRun, "head-run", 0, "if > 0, a run of action long_run (sleep this long) is produced first, and the backlog waits behind it; use with -partitions 1")
	flag.IntVar(&o.pad, "pad", 0, "bytes added to each message, e.g. 3000 for ~4 KiB messages")
	flag.Parse()
	if o.messages < 1 || o.maxConcurrent < 1 || o.partitions < 1 || o.stopAfter < 0 || o.stopAfter > o.messages {
		fmt.Fprintln(os.Stderr, "backlog: bad flags: need -messages >= 1, -max-concurrent >= 1, -partitions >= 1, 0 <= -stop-after <= -messages")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "backlog: FAIL:", err)
		os.Exit(1)
	}
}

// run measures one agent working through the backlog: set up, produce, start the agent,
// sample it until the target or the outcome, stop it, report.
func run(ctx context.Context, o options) (err error) {
	target := int64(o.messages)
	if o.stopAfter > 0 {
		target = int64(o.stopAfter)
	}
	dir, err := os.MkdirTemp("", "port-runner-bench-backlog-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil || o.keep {
			fmt.Fprintf(os.Stderr, "backlog: config and agent log kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()

	bin := o.agentBin
	if bin == "" {
		t := time.Now()
		var shim string
		if bin, shim, err = harness.BuildAgent(ctx, dir, ""); err != nil {
			return err
		}
		fmt.Printf("backlog: built the agent (the %s shim beside it) in %s\n", shim, time.Since(t).Round(time.Millisecond))
	}

	kafka, err := benchkit.StartKafka(o.brokers)
	if err != nil {
		return err
	}
	defer kafka.Close()
	topic, err := kafka.NewTopic(ctx, "backlog", o.partitions)
	if err != nil {
		return err
	}
	group := fmt.Sprintf("%s.bench-%d", benchkit.OrgID, time.Now().UnixNano())

	// Port emulator, with every run registered so each closing request is accepted.
	port, err := benchkit.StartPort(ctx)
	if err != nil {
		return err
	}
	defer port.Close()

	if err := produceBacklog(ctx, o, kafka, port, topic); err != nil {
		return err
	}

	// The agent, alone in its process.
	start := time.Now()
	ag, err := startAgent(ctx, o, bin, dir, benchkit.Config{
		PortURL: port.URL, Brokers: kafka.Brokers, Topic: topic, Group: group,
		MaxConcurrent: o.maxConcurrent, RPS: o.rps,
	})
	if err != nil {
		return err
	}
	defer ag.Kill()

	m, err := sampleAgent(ctx, o, ag, port, target, start)
	if err != nil {
		return err
	}
	m.stop(ctx, ag, start)
	warnLines, errorLines := ag.LogCounts()
	return report(o, kafka.Desc, port, m, target, warnLines, errorLines)
}

// produceBacklog produces the messages (after the head run, if any) before the agent starts.
func produceBacklog(ctx context.Context, o options, kafka *benchkit.Kafka, port *benchkit.Port, topic string) error {
	t0 := time.Now()
	codec, err := codecFor(o.compression)
	if err != nil {
		return err
	}
	prod, err := benchkit.NewProducer(kafka, port.Emu, kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(codec))
	if err != nil {
		return err
	}
	prod.Pad = o.pad
	if o.headRun > 0 {
		if err := prod.One(ctx, topic, "long_run", "r_benchhead"); err != nil {
			prod.Close()
			return err
		}
	}
	bytesProduced, err := prod.Many(ctx, topic, action, benchkit.IDs("bench", o.messages))
	prod.Close()
	if err != nil {
		return err
	}
	fmt.Printf("backlog: produced %d messages (%.0f B avg, %s batches) to %s (%d partitions) on %s in %s\n",
		o.messages, float64(bytesProduced)/float64(o.messages), o.compression, topic, o.partitions, kafka.Desc, time.Since(t0).Round(time.Millisecond))
	return nil
}

// startAgent starts the built agent with the bench's action (and the head run's).
func startAgent(ctx context.Context, o options, bin, dir string, cfg benchkit.Config) (*benchkit.Agent, error) {
	fields := strings.Fields(o.command)
	if len(fields) == 0 {
		return nil, errors.New("-command is empty")
	}
	cfg.Actions = map[string]benchkit.Action{action: {Command: fields, Timeout: time.Minute}}
	if o.headRun > 0 {
		cfg.Actions["long_run"] = benchkit.Action{Command: []string{"sleep", strconv.Itoa(int(o.headRun.Seconds()))}, Timeout: o.headRun + time.Minute}
	}
	ag, err := benchkit.StartAgent(ctx, bin, dir, "agent", cfg)
	if err != nil {
		return nil, err
	}
	fmt.Printf("backlog: agent pid %d, maxConcurrent %d, command %q, config %s\n", ag.Pid, o.maxConcurrent, o.command, ag.ConfigPath)
	return ag, nil
}

func codecFor(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("-compression %q: want none, snappy, lz4, zstd or gzip", name)
}
