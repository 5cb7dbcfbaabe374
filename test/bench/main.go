//go:build linux

// Command bench measures the agent's per-run figures against their goals (BENCHMARKS.md
// "Per-run figures") and prints them as one table, each figure beside its goal and the raw limit of this machine
// measured in the same run:
//
//  1. throughput of /bin/true runs at maxConcurrent 16, beside a Go loop spawning and waiting
//     /bin/true at the same concurrency, and their ratio;
//  2. dispatch latency (message produced -> the command's first instruction) on an idle agent;
//  3. Port requests per quiet run and per chatty run;
//  4. log latency (line printed -> stored at the emulator);
//  5. the agent's RSS idle, with 100 concurrent `sleep 5` runs, during a 200 MB output
//     flood, and behind a long run;
//  6. the agent's CPU per run, its own and its children's;
//  7. a thousand concurrent `sleep 30` runs in one replica: all closed, the agent's RSS, its
//     CPU while they sleep, its goroutines per run and its /status.
//
// Kafka is in-process kfake, or the PLAINTEXT brokers of -brokers / KAFKA_BROKERS; Port is
// the project's emulator over HTTP on 127.0.0.1; the agent is `go build ./cmd/port-runner`
// (with its exec shim beside it as the image ships it: the C one where this machine compiles
// it, else ./cmd/port-runner-shim) run as a separate process.
//
//	go run ./test/bench -all                      # every case, full sizes (a few minutes)
//	go run ./test/bench -tiny                     # every case in seconds (what CI runs)
//	go run ./test/bench -cases 1,2 -cpuprofile cpu.pprof
//	go run ./test/bench -cases 1 -trace t.trace    # the agent's runtime/trace: go tool trace -d=parsed t.trace
//	go run ./test/bench -cases thousand           # figure 7 alone (about a minute)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the bench's flags.
type options struct {
	cases      map[string]bool // throughput, dispatch, chatty, rss, thousand
	brokers    string
	partitions int
	maxConc    int
	flush      time.Duration

	throughputRuns int
	dispatchRuns   int
	dispatchWarm   int
	chattyRuns     int
	chattyLines    int
	chattyEvery    time.Duration
	idleFor        time.Duration
	sleepRuns      int
	sleepFor       time.Duration
	floodBytes     int64
	longTrues      int

	thousandRuns       int
	thousandSleep      time.Duration
	thousandPartitions int

	cpuprofile     string
	trace          string
	memprofile     string
	profileSeconds int
	caseTimeout    time.Duration
	keep           bool
	agentBin       string
}

// caseNames maps the figure numbers (the list above) and the case names to the cases that measure them.
var caseNames = map[string][]string{
	"1": {"throughput"}, "2": {"dispatch"}, "3": {"throughput", "chatty"}, "4": {"chatty"},
	"5": {"rss"}, "6": {"throughput"}, "7": {"thousand"},
	"throughput": {"throughput"}, "dispatch": {"dispatch"}, "chatty": {"chatty"}, "rss": {"rss"}, "thousand": {"thousand"},
}

func defaults() options {
	return options{
		partitions: 3, maxConc: 16, flush: time.Second,
		throughputRuns: 2000, dispatchRuns: 1000, dispatchWarm: 30, chattyRuns: 4, chattyLines: 100, chattyEvery: 25 * time.Millisecond,
		idleFor: 2 * time.Second, sleepRuns: 100, sleepFor: 5 * time.Second, floodBytes: 200e6, longTrues: 5000,
		thousandRuns: 1000, thousandSleep: 30 * time.Second, thousandPartitions: 40,
		profileSeconds: 10, caseTimeout: 5 * time.Minute,
	}
}

// tiny shrinks every size so that all cases run in seconds: it checks the bench, its figures
// are not the ones to quote.
func (o *options) tiny() {
	o.flush = 250 * time.Millisecond
	o.throughputRuns, o.dispatchRuns, o.dispatchWarm = 100, 20, 3
	o.chattyRuns, o.chattyLines, o.chattyEvery = 2, 10, 20*time.Millisecond
	o.idleFor, o.sleepRuns, o.sleepFor = 300*time.Millisecond, 20, 2*time.Second
	o.floodBytes, o.longTrues = 5e6, 50
	o.thousandRuns, o.thousandSleep, o.thousandPartitions = 60, 4*time.Second, 3
	o.profileSeconds = 1
	o.caseTimeout = time.Minute
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := defaults()
	// -tiny sets the defaults of the sizes, so sizes given explicitly still win.
	for _, a := range args {
		if strings.TrimLeft(a, "-") == "tiny" || strings.TrimLeft(a, "-") == "tiny=true" {
			o.tiny()
		}
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "run every case (the default when -cases is not given)")
	fs.Bool("tiny", false, "tiny sizes: every selected case in seconds (checks the bench; figures not to quote)")
	cases := fs.String("cases", "", "comma-separated cases: throughput, dispatch, chatty, rss, thousand, or the figure numbers 1-7")
	fs.StringVar(&o.brokers, "brokers", os.Getenv("KAFKA_BROKERS"), "external Kafka brokers host:port[,...] (PLAINTEXT); empty: in-process kfake")
	fs.IntVar(&o.partitions, "partitions", o.partitions, "partitions of each case's topic (the long-run case always uses 1)")
	fs.IntVar(&o.maxConc, "max-concurrent", o.maxConc, "executor.maxConcurrent of the throughput/dispatch/chatty agent and the Go spawn loop")
	fs.DurationVar(&o.flush, "flush", o.flush, "logs.flushInterval (default 1s; -tiny 250ms)")
	fs.IntVar(&o.throughputRuns, "throughput-runs", o.throughputRuns, "runs of /bin/true in the throughput case (and spawns in the Go loop)")
	fs.IntVar(&o.dispatchRuns, "dispatch-runs", o.dispatchRuns, "runs, one at a time, in the dispatch case")
	fs.IntVar(&o.dispatchWarm, "dispatch-warm", o.dispatchWarm, "runs, one at a time, before the dispatch case's and its raw limit's, not measured")
	fs.IntVar(&o.chattyRuns, "chatty-runs", o.chattyRuns, "chatty runs at once")
	fs.IntVar(&o.chattyLines, "chatty-lines", o.chattyLines, "lines each chatty run prints")
	fs.DurationVar(&o.chattyEvery, "chatty-every", o.chattyEvery, "time between a chatty run's lines")
	fs.IntVar(&o.sleepRuns, "sleep-runs", o.sleepRuns, "concurrent sleep runs in the RSS case (maxConcurrent is set to match, at most 100)")
	fs.DurationVar(&o.sleepFor, "sleep-for", o.sleepFor, "how long each of those runs sleeps")
	fs.Int64Var(&o.floodBytes, "flood-bytes", o.floodBytes, "bytes of output of the flood run")
	fs.IntVar(&o.longTrues, "long-trues", o.longTrues, "/bin/true runs behind the long run (same partition)")
	fs.IntVar(&o.thousandRuns, "thousand-runs", o.thousandRuns, "concurrent sleep runs of the thousand case (its maxConcurrent too; at most 1000)")
	fs.DurationVar(&o.thousandSleep, "thousand-sleep", o.thousandSleep, "how long each of those runs sleeps")
	fs.IntVar(&o.thousandPartitions, "thousand-partitions", o.thousandPartitions, "partitions of the thousand case's topic (one holds at most 100 unfinished runs)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "save a CPU profile of the agent during the throughput case to this file (metrics.pprof)")
	fs.StringVar(&o.trace, "trace", "", "save a runtime/trace of the agent during the throughput case (as long as -profile-seconds) to this file (metrics.pprof)")
	fs.StringVar(&o.memprofile, "memprofile", "", "save the agent's allocation profile (/debug/pprof/allocs) after the throughput case to this file")
	fs.IntVar(&o.profileSeconds, "profile-seconds", o.profileSeconds, "length of that profile; make the throughput case at least as long")
	fs.DurationVar(&o.caseTimeout, "case-timeout", o.caseTimeout, "give up on a case after this long")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, agent logs) even on success")
	fs.StringVar(&o.agentBin, "agent", "", "a prebuilt port-runner binary (default: go build ./cmd/port-runner; the shim is expected beside it)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.cases = map[string]bool{}
	if *cases == "" || *all {
		*cases = "throughput,dispatch,chatty,rss,thousand"
	}
	for c := range strings.SplitSeq(*cases, ",") {
		names, ok := caseNames[strings.TrimSpace(c)]
		if !ok {
			return o, fmt.Errorf("-cases: unknown case %q (want throughput, dispatch, chatty, rss, thousand or 1-7)", c)
		}
		for _, n := range names {
			o.cases[n] = true
		}
	}
	switch {
	case o.partitions < 1, o.maxConc < 1, o.maxConc > 100, o.throughputRuns < 1, o.dispatchRuns < 1, o.dispatchWarm < 0,
		o.chattyRuns < 1, o.chattyLines < 1, o.sleepRuns < 1, o.sleepRuns > 100, o.floodBytes < 1, o.longTrues < 1,
		o.profileSeconds < 1, o.flush <= 0, o.thousandRuns < 1, o.thousandRuns > 1000, o.thousandPartitions < 1, o.thousandSleep <= 0:
		return o, errors.New("bad sizes: counts must be at least 1, -max-concurrent and -sleep-runs at most 100, -thousand-runs at most 1000")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	_, err = run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAIL:", err)
		os.Exit(1)
	}
}
