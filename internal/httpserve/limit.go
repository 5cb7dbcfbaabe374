package httpserve

import (
	"net"
	"sync"
	"syscall"
)

// Connections cost the process an open file and a goroutine with its buffers each, and
// whoever reaches the address (every command a run starts reaches loopback: README "Scripts
// calling Port") may open them faster than timeouts close them. Past the bound a server
// accepts no more until one of its connections ends: the rest wait in the kernel's backlog,
// where they cost the process nothing, so the agent's Kafka, Port and pipe work keeps the
// open files it needs.
const (
	maxConnsCeiling = 1024 // about 20 MiB of connections
	maxConnsFloor   = 64
)

// maxConns is a server's bound: an eighth of the process's open files, within the ceiling
// and the floor.
func maxConns() int {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return maxConnsFloor
	}
	return int(min(max(rl.Cur/8, maxConnsFloor), maxConnsCeiling))
}

// limitListener accepts a connection only while fewer than cap(slots) it accepted are open.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), closed: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed // Shutdown closed it while every slot was taken
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives its slot back when it is closed, however often that is.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
