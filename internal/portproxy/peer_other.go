//go:build !linux

package portproxy

import (
	"errors"
	"net/netip"
)

// processBinding is not supported here: without /proc the proxy cannot tell which process
// sent a request, so tokens are bound to their run only (see Options.BindToProcess).
const processBinding = false

func peerInTree(netip.AddrPort, netip.AddrPort, int) (bool, error) {
	return false, errors.ErrUnsupported
}
