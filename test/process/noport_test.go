//go:build linux

package process_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/port-runner/port-runner/internal/waitcond"
)

// A replica that cannot reach Port (a wrong URL, a NetworkPolicy: a CrashLoopBackOff of a
// rollout's new pods) never takes a partition: it exits before it joins the group, and the
// runs of the replica that works go on untouched.
func TestReplicaWithoutPortNeverTakesAPartition(t *testing.T) {
	const parts = 4
	f := newGroupFixture(t, parts)
	f.start("A", f.config("A", f.actions(20)+"executor: {maxConcurrent: 8}\n"))
	f.waitMembers(1, 60*time.Second)
	ids, _ := f.runsOnEveryPartition("noport", parts)
	f.ps.WaitFor("every run to start", 60*time.Second, func() bool { return f.record.started(ids) == len(ids) })

	// B's Port refuses every connection.
	refused := "http://" + refusingAddr(t)
	b := f.start("B", f.config("B", f.actions(20)+fmt.Sprintf("port: {baseURL: %q}\n", refused)))
	// Until B gives up (the agent's 30s start check), the group is A alone, with every
	// partition, at every look.
	waitcond.For(t, "B to give up", 90*time.Second, func() bool {
		if state, assigned := f.members(); state != "" && (state != "Stable" || len(assigned) != 1 || len(assigned[0]) != parts) {
			t.Fatalf("the group changed while B could not reach Port: %s, partitions %v", state, assigned)
		}
		return b.Exited()
	})
	if st, _ := b.State(); st.ExitCode() != 1 {
		t.Errorf("B: %s, want exit status 1", st)
	}
	if log := b.Log(); !strings.Contains(log, "port api") {
		t.Errorf("B's log does not say Port was the problem:\n%s", log)
	}
	for i, r := range f.env.WaitAllClosed(t, ids, 60*time.Second) {
		if r.Status != "SUCCESS" {
			t.Errorf("%s: %s %q, want SUCCESS", ids[i], r.Status, r.StatusLabel)
		}
	}
	f.closedEach(ids)
}

// refusingAddr is a loopback address whose port refuses every connection until the test
// ends: a socket bound to it that never listens, so that no listener of another test (they
// run in parallel) gets the port meanwhile, as one could once a closed listener freed it.
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("binding a loopback port: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("getsockname: %T, want an IPv4 address", sa)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port))
}
