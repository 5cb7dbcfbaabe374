//go:build linux

package portproxy

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/port-runner/port-runner/internal/shim"
)

// processBinding is supported: /proc tells which process holds a loopback socket.
const processBinding = true

// peerInTree reports whether the client end of the loopback TCP connection from peer to
// local is held by root or one of its descendants. It works without privileges for
// processes of the agent's own uid (the only ones its commands run as):
//
//  1. /proc/net/tcp{,6} maps the connection's 4-tuple to the client socket's inode;
//  2. /proc/*/stat gives every process's parent, hence root's descendants;
//  3. the descendants' /proc/<pid>/fd links name the sockets they hold ("socket:[inode]").
//
// Only the descendants' fds are read, never those of other processes.
func peerInTree(local, peer netip.AddrPort, root int) (bool, error) {
	inode, err := socketInode(peer, local)
	if err != nil {
		return false, err
	}
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	for _, pid := range descendants(root) {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue // gone meanwhile, or not ours to read
		}
		for _, e := range ents {
			if link, err := os.Readlink(dir + e.Name()); err == nil && link == want {
				return true, nil
			}
		}
	}
	return false, nil
}

// socketInode finds the socket whose local end is from and remote end is to, in
// /proc/net/tcp and then tcp6 (where a dual-stack socket lists IPv4 peers as ::ffff:a.b.c.d).
func socketInode(from, to netip.AddrPort) (uint64, error) {
	from, to = unmap(from), unmap(to)
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		inode, found, err := findSocket(file, from, to)
		if err != nil || found {
			return inode, err
		}
	}
	return 0, fmt.Errorf("peer lookup: no socket %s -> %s", from, to)
}

func findSocket(file string, from, to netip.AddrPort) (uint64, bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false, fmt.Errorf("peer lookup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		l, ok1 := parseProcAddr(fields[1])
		r, ok2 := parseProcAddr(fields[2])
		if ok1 && ok2 && l == from && r == to {
			inode, err := strconv.ParseUint(fields[9], 10, 64)
			return inode, err == nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("peer lookup: %s: %w", file, err)
	}
	return 0, false, nil
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

// parseProcAddr reads "0100007F:1F90": the address as the kernel's 32-bit words printed in
// host byte order, then the port in hex.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(raw); i += 4 { // each word back to memory (network) order
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}

// descendants lists root and every process below it, from each process's parent in
// /proc/<pid>/stat (world-readable, so even a non-dumpable shim's parent link is seen).
func descendants(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid := shim.ParentOf(pid); ppid >= 0 {
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
