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
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
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

type sample struct {
	at         time.Duration
	terminated int64
	rssKiB     int64
}

type milestone struct {
	pct        int
	at         time.Duration
	terminated int64
	rssKiB     int64
	heapInuse  float64 // go_memstats_heap_inuse_bytes, -1 if unknown
	goroutines float64
}

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
		if bin, err = harness.BuildAgent(ctx, dir); err != nil {
			return err
		}
		fmt.Printf("backlog: built the agent in %s\n", time.Since(t).Round(time.Millisecond))
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

	// The backlog.
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

	// The agent, alone in its process.
	fields := strings.Fields(o.command)
	if len(fields) == 0 {
		return errors.New("-command is empty")
	}
	start := time.Now()
	actions := map[string]benchkit.Action{action: {Command: fields, Timeout: time.Minute}}
	if o.headRun > 0 {
		actions["long_run"] = benchkit.Action{Command: []string{"sleep", strconv.Itoa(int(o.headRun.Seconds()))}, Timeout: o.headRun + time.Minute}
	}
	ag, err := benchkit.StartAgent(ctx, bin, dir, "agent", benchkit.Config{
		PortURL: port.URL, Brokers: kafka.Brokers, Topic: topic, Group: group,
		MaxConcurrent: o.maxConcurrent, RPS: o.rps,
		Actions: actions,
	})
	if err != nil {
		return err
	}
	defer ag.Kill()
	pid := ag.Pid
	fmt.Printf("backlog: agent pid %d, maxConcurrent %d, command %q, config %s\n", pid, o.maxConcurrent, o.command, ag.ConfigPath)

	var csvW *bufio.Writer
	if o.csv != "" {
		f, err := os.Create(o.csv)
		if err != nil {
			return err
		}
		defer f.Close()
		csvW = bufio.NewWriter(f)
		defer csvW.Flush()
		fmt.Fprintln(csvW, "seconds,terminated,rss_kib")
	}

	// Sample until the target is reached, the agent exits, or time runs out.
	var (
		maxSampled int64
		firstRSS   int64
		samples    int
		addr       = ag.MetricsAddr
		marks      []milestone
		nextMark   = 0
		pcts       = []int{10, 50, 90}
		lastPrint  = time.Now()
		outcome    string
	)
	deadline := time.NewTimer(o.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			outcome = "interrupted"
			break loop
		case <-deadline.C:
			outcome = "timeout"
			break loop
		case <-ag.Exited():
			outcome = "agent exited early"
			break loop
		case <-tick.C:
		}
		rss, _, err := benchkit.ReadMem(pid)
		if err != nil {
			continue // exiting; the exited case reports it
		}
		n := int64(port.EndedTotal())
		el := time.Since(start)
		samples++
		if firstRSS == 0 {
			firstRSS = rss
		}
		maxSampled = max(maxSampled, rss)
		if csvW != nil {
			fmt.Fprintf(csvW, "%.1f,%d,%d\n", el.Seconds(), n, rss)
		}
		for nextMark < len(pcts) && n*100 >= target*int64(pcts[nextMark]) {
			m := milestone{pct: pcts[nextMark], at: el, terminated: n, rssKiB: rss, heapInuse: -1, goroutines: -1}
			if addr != "" {
				m.heapInuse, m.goroutines = scrape(ctx, ag)
			}
			marks = append(marks, m)
			nextMark++
		}
		if time.Since(lastPrint) >= 10*time.Second {
			lastPrint = time.Now()
			fmt.Printf("  %6.1fs  terminated %7d / %d  RSS %s\n", el.Seconds(), n, target, mib(rss))
		}
		if n >= target {
			outcome = "done"
			break loop
		}
	}
	elapsed := time.Since(start)
	terminated := int64(port.EndedTotal())

	// Peak and CPU before the agent goes away.
	_, hwm, _ := benchkit.ReadMem(pid)
	finalRSS, _, _ := benchkit.ReadMem(pid)
	heapEnd, gorEnd := -1.0, -1.0
	if addr != "" {
		heapEnd, gorEnd = scrape(ctx, ag)
	}
	cpu, childCPU, _ := benchkit.ReadCPU(pid)

	killed := false
	var stopErr error
	switch outcome {
	case "done":
		stopErr = ag.Stop(90 * time.Second)
		killed = stopErr != nil && strings.Contains(stopErr.Error(), "did not exit")
	case "agent exited early":
		stopErr = ag.Stop(0)
	default:
		killed = true
		ag.Kill()
	}
	stopped := time.Since(start)

	// What Port saw.
	var ended, doubled, rejected, notEnded int
	for _, r := range port.Emu.Runs() {
		if r.Status == "IN_PROGRESS" {
			notEnded++
			continue
		}
		ended++
		if r.Terminations > 1 {
			doubled++
		}
		rejected += r.RejectedTerminations
	}
	warnLines, errorLines := ag.LogCounts()

	// Report.
	fmt.Println()
	fmt.Printf("backlog: %s: %d messages in the topic (%s), maxConcurrent %d, %d partitions, %s, %d CPUs\n",
		outcome, o.messages, o.compression, o.maxConcurrent, o.partitions, kafka.Desc, runtime.NumCPU())
	rate := float64(terminated) / elapsed.Seconds()
	steady := ""
	if len(marks) >= 3 {
		d := marks[2].at - marks[0].at
		if d > 0 {
			steady = fmt.Sprintf(", %.0f runs/s between 10%% and 90%%", float64(marks[2].terminated-marks[0].terminated)/d.Seconds())
		}
	}
	fmt.Printf("  runs terminated:  %d of target %d in %s (%.0f runs/s from agent start%s)\n",
		terminated, target, elapsed.Round(time.Millisecond), rate, steady)
	fmt.Printf("  agent CPU:        %.1fs own + %.1fs children (commands)\n", cpu.Seconds(), childCPU.Seconds())
	fmt.Printf("  peak RSS (VmHWM): %s   max sampled VmRSS %s over %d samples every %s; first sample %s\n",
		mib(hwm), mib(maxSampled), samples, o.sample, mib(firstRSS))
	fmt.Printf("  %-5s %9s %10s %10s %12s %11s\n", "prog", "at", "terminated", "VmRSS", "heap_inuse", "goroutines")
	for _, m := range marks {
		fmt.Printf("  %3d%%  %9s %10d %10s %12s %11s\n", m.pct, m.at.Round(100*time.Millisecond), m.terminated, mib(m.rssKiB), bytesMiB(m.heapInuse), num(m.goroutines))
	}
	fmt.Printf("  end   %9s %10d %10s %12s %11s\n", elapsed.Round(100*time.Millisecond), terminated, mib(finalRSS), bytesMiB(heapEnd), num(gorEnd))
	fmt.Printf("  emulator:         %d runs ended, %d still IN_PROGRESS, %d terminated twice, %d rejected terminations\n", ended, notEnded, doubled, rejected)
	fmt.Printf("  agent:            exit %s after %s (SIGTERM drain %s), %d warn / %d error log lines\n",
		exitText(stopErr, killed), stopped.Round(time.Millisecond), (stopped - elapsed).Round(time.Millisecond), warnLines, errorLines)
	fmt.Printf("\n| messages in topic | compression | runs processed | maxConcurrent | runs/s | RSS @10%% | RSS @50%% | RSS @90%% | peak RSS (VmHWM) |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %d | %d | %.0f | %s | %s | %s | %s |\n", o.messages, o.compression, terminated, o.maxConcurrent, rate,
		markRSS(marks, 0), markRSS(marks, 1), markRSS(marks, 2), mib(hwm))

	var problems []string
	if outcome != "done" {
		problems = append(problems, outcome)
	}
	if int64(ended) < target {
		problems = append(problems, fmt.Sprintf("runs lost: %d of %d terminated", ended, target))
	}
	if doubled > 0 || rejected > 0 {
		problems = append(problems, fmt.Sprintf("%d runs terminated twice, %d rejected terminations", doubled, rejected))
	}
	if killed {
		problems = append(problems, "agent had to be killed")
	} else if stopErr != nil {
		problems = append(problems, stopErr.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
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

// scrape reads the agent's heap in use and goroutines from its /metrics.
func scrape(ctx context.Context, ag *benchkit.Agent) (heapInuse, goroutines float64) {
	return ag.Metric(ctx, "go_memstats_heap_inuse_bytes"), ag.Metric(ctx, "go_goroutines")
}

func mib(kib int64) string { return benchkit.MiB(kib) }

func bytesMiB(b float64) string {
	if b < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

func num(x float64) string {
	if x < 0 {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

func markRSS(marks []milestone, i int) string {
	if i >= len(marks) {
		return "-"
	}
	return mib(marks[i].rssKiB)
}

func exitText(err error, killed bool) string {
	switch {
	case killed:
		return "SIGKILL (by the bench)"
	case err == nil:
		return "0"
	default:
		return err.Error()
	}
}
