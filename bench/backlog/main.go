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
//	go run ./bench/backlog -messages 100000 -max-concurrent 8
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/port-runner/port-runner/emulator"
	"github.com/port-runner/port-runner/runmsg"
)

const (
	orgID        = "org_bench"
	clientID     = "bench-client"
	clientSecret = "bench-client-secret"
	action       = "create_microservice"
)

// template is a Port run message shaped like the seed's create_microservice vector
// (/work/shared/vectors/create_microservice.signed.json) without its headers; RUN_ID and
// NAME are replaced per message and the result is signed with runmsg.Sign.
const template = `{"action":"create_microservice","resourceType":"run","status":"TRIGGERED","trigger":{"by":{"orgId":"org_bench","userId":"auth0|638879fa62c686d381b36ecb","user":{"email":"test@test.com","firstName":"test","lastName":"test","id":"auth0|638879fa62c686d381b36ecb"}},"origin":"UI","at":"2022-12-07T12:53:52.916Z"},"context":{"entity":null,"blueprint":"microservice","runId":"RUN_ID"},"payload":{"entity":null,"action":{"id":"action_ed2B0O9CbEYkuqvN","identifier":"create_microservice","title":"Create Microservice","userInputs":{"properties":{"name":{"title":"Service name","type":"string"},"region":{"title":"Cloud Region","type":"string"}}},"invocationMethod":{"url":"https://getport.io","agent":false,"type":"WEBHOOK"},"trigger":"CREATE","description":"Create new microservice","blueprint":"microservice","createdAt":"2022-12-07T09:48:28.659Z","createdBy":"auth0|638879fa62c686d381b36ecb","updatedAt":"2022-12-07T09:48:28.659Z","updatedBy":"auth0|638879fa62c686d381b36ecb"},"properties":{"name":"NAME","region":"eu-west-1"}}}`

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
	flag.DurationVar(&o.headRun, "head-run", 0, "if > 0, the first message is a run of action long_run (command: sleep for this long) that the whole backlog waits behind; use with -partitions 1 and -stop-after messages-1")
	flag.IntVar(&o.pad, "pad", 0, "bytes of padding added to each message (a \"padding\" input), e.g. 3000 for ~4 KiB messages")
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

// tracker counts runs the emulator has terminated, from its per-request log hook.
type tracker struct {
	emu        *emulator.Emulator
	mu         sync.Mutex
	done       map[string]bool
	terminated atomic.Int64
}

func (t *tracker) logf(_ string, args ...any) {
	if len(args) != 3 {
		return
	}
	method, _ := args[0].(string)
	path, _ := args[1].(string)
	status, _ := args[2].(int)
	if status != http.StatusOK || (method != http.MethodPost && method != http.MethodPatch) {
		return
	}
	rest, ok := strings.CutPrefix(path, "/v1/actions/runs/")
	if !ok {
		return
	}
	id, _, _ := strings.Cut(rest, "/")
	r, ok := t.emu.Run(id)
	if !ok || r.Status == "IN_PROGRESS" {
		return
	}
	t.mu.Lock()
	first := !t.done[id]
	t.done[id] = true
	t.mu.Unlock()
	if first {
		t.terminated.Add(1)
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
		bin = filepath.Join(dir, "port-runner")
		if err := buildAgent(ctx, bin); err != nil {
			return err
		}
	}

	// Kafka.
	topic := orgID + ".runs"
	var brokers []string
	kafkaDesc := "kfake (in-process, 1 broker)"
	if o.brokers != "" {
		brokers = strings.Split(o.brokers, ",")
		topic = fmt.Sprintf("%s.runs.bench-%d", orgID, time.Now().UnixNano())
		if err := createTopic(ctx, brokers, topic, o.partitions); err != nil {
			return err
		}
		kafkaDesc = "external " + o.brokers
	} else {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.partitions), topic))
		if err != nil {
			return fmt.Errorf("kfake: %w", err)
		}
		defer cluster.Close()
		brokers = cluster.ListenAddrs()
	}
	group := fmt.Sprintf("%s.bench-%d", orgID, time.Now().UnixNano())

	// Port emulator, with every run registered so each closing request is accepted.
	tr := &tracker{done: map[string]bool{}}
	emu := emulator.New(emulator.Options{
		ClientID: clientID, ClientSecret: clientSecret, OrgID: orgID, Topic: topic,
		Logf: tr.logf,
	})
	tr.emu = emu
	emuCtx, stopEmu := context.WithCancel(context.WithoutCancel(ctx))
	baseURL, waitEmu, err := emu.Start(emuCtx, "127.0.0.1:0")
	if err != nil {
		stopEmu()
		return fmt.Errorf("emulator: %w", err)
	}
	defer func() { stopEmu(); _ = waitEmu() }()

	// The backlog.
	t0 := time.Now()
	codec, err := codecFor(o.compression)
	if err != nil {
		return err
	}
	bytesProduced, err := produce(ctx, brokers, topic, o, codec, emu)
	if err != nil {
		return err
	}
	fmt.Printf("backlog: produced %d messages (%.0f B avg, %s batches) to %s (%d partitions) on %s in %s\n",
		o.messages, float64(bytesProduced)/float64(o.messages), o.compression, topic, o.partitions, kafkaDesc, time.Since(t0).Round(time.Millisecond))

	// The agent, alone in its process.
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := writeConfig(cfgPath, o, baseURL, brokers, topic, group); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT_RUNNER_LOG_LEVEL=info", "PORT_RUNNER_LOG_FORMAT=json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	metricsAddr := make(chan string, 1)
	var warnLines, errorLines atomic.Int64
	var logDone sync.WaitGroup
	logDone.Go(func() { scanLog(stderr, logFile, metricsAddr, &warnLines, &errorLines) })
	go func() {
		logDone.Wait()
		waitErr = cmd.Wait()
		close(exited)
	}()
	killed := false
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	fmt.Printf("backlog: agent pid %d, maxConcurrent %d, command %q, config %s\n", pid, o.maxConcurrent, o.command, cfgPath)

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
		addr       string
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
		case <-exited:
			outcome = "agent exited early"
			break loop
		case a := <-metricsAddr:
			addr = a
		case <-tick.C:
		}
		rss, _, err := readMem(pid)
		if err != nil {
			continue // exiting; the exited case reports it
		}
		n := tr.terminated.Load()
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
				m.heapInuse, m.goroutines = scrape(addr)
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
	terminated := tr.terminated.Load()

	// Peak and CPU before the agent goes away.
	_, hwm, _ := readMem(pid)
	finalRSS, _, _ := readMem(pid)
	heapEnd, gorEnd := -1.0, -1.0
	if addr != "" {
		heapEnd, gorEnd = scrape(addr)
	}
	cpu, childCPU := readCPU(pid)

	switch outcome {
	case "done":
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(90 * time.Second):
			killed = true
			_ = cmd.Process.Kill()
			<-exited
		}
	case "agent exited early":
	default:
		killed = true
		_ = cmd.Process.Kill()
		<-exited
	}
	stopped := time.Since(start)

	// What Port saw.
	var ended, doubled, rejected, notEnded int
	for _, r := range emu.Runs() {
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

	// Report.
	fmt.Println()
	fmt.Printf("backlog: %s: %d messages in the topic (%s), maxConcurrent %d, %d partitions, %s, %d CPUs\n",
		outcome, o.messages, o.compression, o.maxConcurrent, o.partitions, kafkaDesc, runtime.NumCPU())
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
	fmt.Printf("  agent CPU:        %.1fs own + %.1fs children (commands)\n", cpu, childCPU)
	fmt.Printf("  peak RSS (VmHWM): %s   max sampled VmRSS %s over %d samples every %s; first sample %s\n",
		mib(hwm), mib(maxSampled), samples, o.sample, mib(firstRSS))
	fmt.Printf("  %-5s %9s %10s %10s %12s %11s\n", "prog", "at", "terminated", "VmRSS", "heap_inuse", "goroutines")
	for _, m := range marks {
		fmt.Printf("  %3d%%  %9s %10d %10s %12s %11s\n", m.pct, m.at.Round(100*time.Millisecond), m.terminated, mib(m.rssKiB), bytesMiB(m.heapInuse), num(m.goroutines))
	}
	fmt.Printf("  end   %9s %10d %10s %12s %11s\n", elapsed.Round(100*time.Millisecond), terminated, mib(finalRSS), bytesMiB(heapEnd), num(gorEnd))
	fmt.Printf("  emulator:         %d runs ended, %d still IN_PROGRESS, %d terminated twice, %d rejected terminations\n", ended, notEnded, doubled, rejected)
	fmt.Printf("  agent:            exit %s after %s (SIGTERM drain %s), %d warn / %d error log lines\n",
		exitText(waitErr, killed), stopped.Round(time.Millisecond), (stopped - elapsed).Round(time.Millisecond), warnLines.Load(), errorLines.Load())
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
	} else if waitErr != nil {
		problems = append(problems, fmt.Sprintf("agent exited with %v", waitErr))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func buildAgent(ctx context.Context, out string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" {
		return errors.New("run inside the port-runner module")
	}
	b := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/port-runner")
	b.Dir = root
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	t := time.Now()
	if err := b.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/port-runner: %w", err)
	}
	fmt.Printf("backlog: built the agent in %s\n", time.Since(t).Round(time.Millisecond))
	return nil
}

func createTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// produce writes n signed run messages and registers each run in the emulator.
func produce(ctx context.Context, brokers []string, topic string, o options, codec kgo.CompressionCodec, emu *emulator.Emulator) (int64, error) {
	n := o.messages
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(codec))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		firstErr error
		total    int64
	)
	ts := time.Now().Unix()
	for i := range n {
		id := fmt.Sprintf("r_bench%012d", i)
		body := strings.Replace(template, "RUN_ID", id, 1)
		body = strings.Replace(body, "NAME", fmt.Sprintf("service-%d", i), 1)
		if o.pad > 0 {
			body = strings.Replace(body, `"region":"eu-west-1"`, `"region":"eu-west-1","padding":"`+strings.Repeat("x", o.pad)+`"`, 1)
		}
		act := action
		if i == 0 && o.headRun > 0 {
			act = "long_run"
			body = strings.Replace(body, `{"action":"create_microservice"`, `{"action":"long_run"`, 1)
		}
		msg, err := runmsg.Sign(clientSecret, ts, []byte(body))
		if err != nil {
			return 0, err
		}
		total += int64(len(msg))
		emu.RegisterRun(id, act)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(id), Value: msg}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return 0, fmt.Errorf("produce: %w", firstErr)
	}
	return total, nil
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

func writeConfig(path string, o options, baseURL string, brokers []string, topic, group string) error {
	fields := strings.Fields(o.command)
	if len(fields) == 0 {
		return errors.New("-command is empty")
	}
	bin, err := exec.LookPath(fields[0])
	if err != nil {
		return fmt.Errorf("-command: %w", err)
	}
	argv, _ := json.Marshal(append([]string{bin}, fields[1:]...))
	bs, _ := json.Marshal(brokers)
	cfg := fmt.Sprintf(`port:
  baseURL: %s
  clientID: %s
  clientSecret: %s
  orgID: %s
  requestsPerSecond: %g
kafka:
  brokers: %s
  topic: %s
  group: %s
  startOffset: earliest
executor:
  maxConcurrent: %d
  shutdownTimeout: 10s
metrics:
  addr: 127.0.0.1:0
actions:
  %s:
    command: %s
    timeout: 1m
`, baseURL, clientID, clientSecret, orgID, o.rps, bs, topic, group, o.maxConcurrent, action, argv)
	if o.headRun > 0 {
		sleep, err := exec.LookPath("sleep")
		if err != nil {
			return err
		}
		cfg += fmt.Sprintf("  long_run:\n    command: [%q, \"%d\"]\n    timeout: %s\n", sleep, int(o.headRun.Seconds()), o.headRun+time.Minute)
	}
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// scanLog copies the agent's stderr to the log file, finds the bound metrics address and
// counts warnings and errors.
func scanLog(r io.Reader, w io.Writer, addr chan<- string, warns, errs *atomic.Int64) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	found := false
	for sc.Scan() {
		line := sc.Bytes()
		bw.Write(line)
		bw.WriteByte('\n')
		switch {
		case bytes.Contains(line, []byte(`"level":"warn"`)):
			warns.Add(1)
		case bytes.Contains(line, []byte(`"level":"error"`)), bytes.Contains(line, []byte(`"level":"fatal"`)):
			errs.Add(1)
		}
		if !found && bytes.Contains(line, []byte(`"serving metrics"`)) {
			var l struct {
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &l) == nil && l.Addr != "" {
				found = true
				addr <- l.Addr
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// readMem returns VmRSS and VmHWM in KiB.
func readMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			rss, _ = strconv.ParseInt(f[0], 10, 64)
		case "VmHWM":
			hwm, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	if rss == 0 && hwm == 0 {
		return 0, 0, errors.New("no VmRSS (zombie?)")
	}
	return rss, hwm, nil
}

// readCPU returns the process's own and its waited-for children's CPU seconds.
func readCPU(pid int) (own, children float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1, -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1, -1
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return -1, -1
	}
	tick := 100.0 // USER_HZ on Linux
	v := func(j int) float64 { x, _ := strconv.ParseFloat(f[j], 64); return x / tick }
	return v(11) + v(12), v(13) + v(14) // utime stime cutime cstime
}

// scrape reads the agent's heap in use and goroutines from its /metrics.
func scrape(addr string) (heapInuse, goroutines float64) {
	heapInuse, goroutines = -1, -1
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			heapInuse = x
		case "go_goroutines":
			goroutines = x
		}
	}
	return
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

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
