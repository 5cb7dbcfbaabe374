package harness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaProxy stands between a client and a Kafka cluster, so a test can cut that client off
// from the brokers (and only that client) and restore it. Each broker gets a loopback
// listener of the proxy, and the broker addresses in Metadata and FindCoordinator answers
// are rewritten to those listeners: a client given Brokers() as its seeds talks to the
// cluster only through the proxy. Cut holds every byte in both directions, as a network
// partition does (no reset: requests hang until the client's own timeouts give up), until
// Restore.
type KafkaProxy struct {
	t testing.TB

	mu         sync.Mutex
	byUpstream map[string]*proxyListener // a broker's address -> its listener
	seeds      []string
	gate       chan struct{} // closed while traffic flows; a fresh one while cut
	cut        bool
	closed     bool
	conns      map[net.Conn]struct{} // open client and broker connections, closed with the proxy
	wg         sync.WaitGroup
}

type proxyListener struct {
	ln       net.Listener
	upstream string
}

// NewKafkaProxy starts a proxy for the cluster whose seed brokers are given; it stops when
// the test ends.
func NewKafkaProxy(t testing.TB, brokers []string) *KafkaProxy {
	t.Helper()
	open := make(chan struct{})
	close(open)
	p := &KafkaProxy{t: t, byUpstream: map[string]*proxyListener{}, gate: open, conns: map[net.Conn]struct{}{}}
	for _, b := range brokers {
		addr, err := p.listenerFor(b)
		if err != nil {
			t.Fatalf("harness: kafka proxy for %s: %v", b, err)
		}
		p.seeds = append(p.seeds, addr)
	}
	t.Cleanup(p.close)
	return p
}

// Brokers are the proxy's addresses of the seed brokers: a client's kafka.brokers.
func (p *KafkaProxy) Brokers() []string { return p.seeds }

// Cut stops every byte between the clients and the brokers until Restore.
func (p *KafkaProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut {
		p.cut, p.gate = true, make(chan struct{})
	}
}

// Restore lets the traffic Cut held flow again.
func (p *KafkaProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		p.cut = false
		close(p.gate)
	}
}

func (p *KafkaProxy) close() {
	p.mu.Lock()
	p.closed = true
	for _, l := range p.byUpstream {
		l.ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	if p.cut {
		p.cut = false
		close(p.gate)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// listenerFor returns the proxy's address for the broker at upstream, listening on a new
// loopback port the first time.
func (p *KafkaProxy) listenerFor(upstream string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.byUpstream[upstream]; ok {
		return l.ln.Addr().String(), nil
	}
	if p.closed {
		return "", errors.New("proxy closed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	l := &proxyListener{ln: ln, upstream: upstream}
	p.byUpstream[upstream] = l
	p.wg.Go(func() { p.accept(l) })
	return ln.Addr().String(), nil
}

func (p *KafkaProxy) accept(l *proxyListener) {
	for {
		c, err := l.ln.Accept()
		if err != nil || !p.track(c) {
			return
		}
		p.wg.Go(func() { p.serve(c, l.upstream) })
	}
}

// track notes an open connection, or closes it if the proxy is closed (false).
func (p *KafkaProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *KafkaProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

// passable waits until traffic may flow, or done closes; false if done closed first.
func (p *KafkaProxy) passable(done <-chan struct{}) bool {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	select {
	case <-gate:
		return true
	case <-done:
		return false
	}
}

// serve relays one client connection, frame by frame: requests as they are, responses with
// broker addresses rewritten.
func (p *KafkaProxy) serve(client net.Conn, upstream string) {
	done := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(done); client.Close() }) }
	defer stop()
	defer p.untrack(client)
	if !p.passable(done) { // a connection made while cut hangs, as a cut network's would
		return
	}
	broker, err := net.Dial("tcp", upstream)
	if err != nil || !p.track(broker) {
		return
	}
	defer p.untrack(broker)
	var inflight sync.Map // correlation id -> request key and version
	var relay sync.WaitGroup
	relay.Go(func() {
		defer stop()
		for {
			frame, err := readFrame(client)
			if err != nil || len(frame) < 8 {
				return
			}
			key, version := int16(binary.BigEndian.Uint16(frame[0:])), int16(binary.BigEndian.Uint16(frame[2:]))
			inflight.Store(binary.BigEndian.Uint32(frame[4:]), [2]int16{key, version})
			if !p.passable(done) || writeFrame(broker, frame) != nil {
				return
			}
		}
	})
	relay.Go(func() {
		defer stop()
		for {
			frame, err := readFrame(broker)
			if err != nil || len(frame) < 4 {
				return
			}
			if kv, ok := inflight.LoadAndDelete(binary.BigEndian.Uint32(frame)); ok {
				if frame, err = p.rewrite(frame, kv.([2]int16)); err != nil {
					p.t.Logf("harness: kafka proxy: %v", err)
					return
				}
			}
			if !p.passable(done) || writeFrame(client, frame) != nil {
				return
			}
		}
	})
	<-done
	broker.Close() // ends the relay reading from it
	relay.Wait()
}

// rewrite points the broker addresses of a Metadata or FindCoordinator answer at the proxy.
func (p *KafkaProxy) rewrite(frame []byte, kv [2]int16) ([]byte, error) {
	key, version := kv[0], kv[1]
	if key != kmsg.Metadata.Int16() && key != kmsg.FindCoordinator.Int16() {
		return frame, nil
	}
	resp := kmsg.ResponseForKey(key)
	resp.SetVersion(version)
	header := 4 // the correlation id; a flexible answer's header has tagged fields after it
	if resp.IsFlexible() {
		n, err := skipTags(frame[header:])
		if err != nil {
			return nil, fmt.Errorf("key %d v%d: header: %w", key, version, err)
		}
		header += n
	}
	if err := resp.ReadFrom(frame[header:]); err != nil {
		return nil, fmt.Errorf("key %d v%d: %w", key, version, err)
	}
	var err error
	point := func(host *string, port *int32) {
		if err != nil || *host == "" {
			return
		}
		var addr, h, ps string
		if addr, err = p.listenerFor(net.JoinHostPort(*host, strconv.Itoa(int(*port)))); err != nil {
			return
		}
		if h, ps, err = net.SplitHostPort(addr); err != nil {
			return
		}
		n, _ := strconv.Atoi(ps)
		*host, *port = h, int32(n)
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		for i := range r.Brokers {
			point(&r.Brokers[i].Host, &r.Brokers[i].Port)
		}
	case *kmsg.FindCoordinatorResponse:
		point(&r.Host, &r.Port)
		for i := range r.Coordinators {
			point(&r.Coordinators[i].Host, &r.Coordinators[i].Port)
		}
	}
	if err != nil {
		return nil, err
	}
	return resp.AppendTo(append([]byte(nil), frame[:header]...)), nil
}

// skipTags is the length of a tagged-field section (KIP-482) at the start of b.
func skipTags(b []byte) (int, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, errors.New("bad tag count")
	}
	off := n
	for range count {
		_, n := binary.Uvarint(b[off:])
		if n <= 0 {
			return 0, errors.New("bad tag")
		}
		off += n
		size, n := binary.Uvarint(b[off:])
		if n <= 0 || uint64(len(b)-off-n) < size {
			return 0, errors.New("bad tag size")
		}
		off += n + int(size)
	}
	return off, nil
}

// maxFrame bounds one frame the proxy reads (Kafka's own default socket.request.max.bytes).
const maxFrame = 100 << 20

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, n)
	_, err := io.ReadFull(r, frame)
	return frame, err
}

func writeFrame(w io.Writer, frame []byte) error {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(frame)), uint32(len(frame)))
	_, err := w.Write(append(b, frame...))
	return err
}
