// Package process holds the tests of port-runner as shipped: ./cmd/port-runner built once
// (harness.Binary, its exec shim beside it as the image ships it: the C one where this
// machine compiles it), run as processes, against the broker fixture and Port's emulator.
// Linux only, as the shipped agent's guarantees are: elsewhere the package has no tests.
//
// TestCommandFindsNoCredential and TestStolenTokenRefusedThroughTheShim prove README
// "Isolation" and "Runs and each other": the built agent, under an unprivileged uid when the
// tests run as root, keeps its credentials and each run's token from every other command.
//
// The tests of runs outliving the group's changes (README "Delivery": leases, the fence, the
// drain, no flapping, messages written twice) run agents in one group, each execution of a
// command recorded from its start line to the death of its whole process tree (a lock every
// process of the tree holds, so a tree killed by SIGKILL is seen too), and the group as its
// coordinator describes it:
//
//   - TestReplicaJoinsWhileLongRunsRun: a third replica joins while 32s runs run on every
//     partition; none is cancelled, each is executed and closed once, new runs on every
//     partition close within 10s, and the commit passes the handed-over runs.
//   - TestDrainHandsOverAtOnce: SIGTERM to a replica with 32s runs and a 5m shutdownTimeout;
//     new runs on every partition close within 10s of being produced, the drained runs end
//     SUCCESS under their leases, and the replica exits 0.
//   - TestSecondSignalCancelsTheDrain: a second SIGTERM during a 5m drain cancels the
//     commands at once; their runs close as cancelled and the replica exits 0.
//   - TestFrozenMemberNeverDoublesARun (SIGSTOP) and TestCutOffMemberNeverDoublesARun (a
//     harness.KafkaProxy the test cuts): a member silent past the session timeout while its
//     runs go on, with onInterrupted rerun and fail; no two executions of a run overlap, Port
//     never has a termination before the last execution ended, one termination each.
//   - TestReplicaWithoutPortNeverTakesAPartition: a replica whose Port refuses connections
//     exits without ever being a member of the group; the other's runs go on.
//   - TestMessageWrittenTwiceRunsOnce: the same signed bytes produced again after a restart
//     and after a handover are skipped at no Port request.
//
// TestBombUnderTheChartsMemoryLimit, TestRunFilesOnlyRegularFiles and TestProxyNeverList are
// reproductions of red-team findings, hostile or broken input through the built agent (as
// uid 65534 when the tests run as root): a decompression bomb under the chart's 512 MiB
// memory limit (a cgroup v1 memory group the test makes under its own cgroup, as root; else
// the agent's peak RSS is measured), a command that leaves a named pipe or a link where its
// response file goes, a command that calls the Port API routes the proxy never forwards.
//
// The sandbox tests (sandbox_test.go, kit in sandbox_kit_test.go) prove README "Isolation"
// with the agent beside each shim (C and Go), as uid 65534: with the sandbox a command
// cannot signal the agent, its shim or another run, nor read another run's environ, run
// file or directory, the config or the credential file, and its kill -9 $PPID leaves the
// agent alive, under run and under try; under runAs the same, sandbox on and off; with the
// sandbox off a command that SIGKILLs its shim leaves nothing behind; a fork bomb and a
// memory hog fail their own run while a run beside them succeeds. Hostile commands run as
// uid 65534 or a runAs uid, never as root, and the fork bomb and the memory hog only within
// RLIMIT_NPROC of a uid of their own or a cgroup the test makes (and removes). What this
// kernel cannot enforce is skipped, check by check, and the test says so.
//
// TestChaos proves the delivery guarantees (README "Delivery") with real agent processes,
// not goroutines. It starts three agents (A, B, C) in one consumer group on a 6-partition
// topic, and produces N signed run messages whose command sleeps 0-500 ms and then appends
// its run id to a file. While the runs flow it SIGKILLs A (after about 25% of the runs
// ended in Port), SIGTERMs B (after about 50%; B must exit 0 within its shutdownTimeout
// plus a margin) and starts a fourth agent D. Once Port (the emulator, served from the test
// process) shows every run ended, C and D get SIGTERM. Then it checks that:
//
//   - every run has exactly one accepted termination in the emulator and no rejected one
//     (a second attempt to end an ended run);
//   - no run id appears twice in the file: with the default `onInterrupted: fail` a run
//     whose agent died is closed as FAILURE "interrupted: ...", never executed again; every
//     SUCCESS run is in the file;
//   - every run ended as SUCCESS, or as FAILURE labelled "interrupted: ..." or
//     "cancelled: ...";
//   - no command process is left running (children die with their agent);
//   - the group's committed offsets reach the end offset of every partition.
//
// The broker comes from harness.NewBroker: an in-process kfake cluster by default, the
// broker named by KAFKA_BROKERS when set (PLAINTEXT only: the tests skip under
// KAFKA_SECURITY=SASL_SSL, their agents get a config file and nothing else).
//
// N is CHAOS_RUNS (default 200, the short version CI runs). The full version:
//
//	CHAOS_RUNS=1000 go test -run Chaos -v ./test/process/
//
// On real Kafka:
//
//	kafka_env="$(scripts/kafka-local.sh start)"; eval "$kafka_env"
//	CHAOS_RUNS=1000 go test -run Chaos -v ./test/process/
//
// TestChaos is skipped with -short. On failure every agent's log tail is printed.
//
// The group's tests (groupFixture) and TestPollingReplicaKilled run in parallel with each
// other (t.Parallel): they mostly wait, for runs of 30-40s, session timeouts, drains and
// leases, each with a broker (or a topic and a group), an emulator and directories of its
// own, its agents and commands as the test's uid. The rest run one at a time before them: the
// isolation and hostile-input tests share uid 65534 (its processes, what /proc shows it,
// RLIMIT_NPROC), the bombs the machine's memory, TestChaos its CPU. go test runs
// GOMAXPROCS parallel tests at once unless -parallel says more: scripts/test gives
// -parallel 16, so all of them wait at once.
package process
