//go:build linux

package portproxy

import (
	"net"
	"net/netip"
	"os"
	"testing"
)

// BenchmarkPeerLookup is the cost of one connection's check: /proc/net/tcp, every
// process's stat, the run's fds.
func BenchmarkPeerLookup(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	local := netip.MustParseAddrPort(ln.Addr().String())
	peer := netip.MustParseAddrPort(c.LocalAddr().String())
	for b.Loop() {
		ok, err := peerInTree(local, peer, os.Getpid())
		if err != nil || !ok {
			b.Fatalf("own connection: %v %v", ok, err)
		}
	}
}
