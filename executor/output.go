package executor

import (
	"io"
	"os"
	"time"
)

// copyOutput passes bytes through as they arrive; line splitting is the
// consumer's job. If out fails (or panics) the pipe is still drained, so the
// command is never blocked by a broken consumer.
func copyOutput(out io.Writer, pr *os.File, done chan<- struct{}) {
	defer close(done)
	var buf copyBuffer
	broken := false
	write := func(p []byte) {
		defer func() {
			if recover() != nil {
				broken = true
			}
		}()
		if _, err := out.Write(p); err != nil {
			broken = true
		}
	}
	for {
		p := buf.next()
		n, err := pr.Read(p)
		if n > 0 && !broken {
			write(p[:n])
		}
		buf.filled(n)
		if err != nil {
			return
		}
	}
}

// copyBufStart is a run's first read buffer: most commands print less, and a quiet run
// then costs no copyBufSize buffer.
const copyBufStart = 512

// copyBuffer is copyOutput's read buffer: copyBufStart bytes until a read fills it, then
// copyBufSize.
type copyBuffer struct{ b []byte }

func (c *copyBuffer) next() []byte {
	if c.b == nil {
		c.b = make([]byte, copyBufStart)
	}
	return c.b
}

// filled grows the buffer after a read of n bytes that filled it.
func (c *copyBuffer) filled(n int) {
	if n == len(c.b) && len(c.b) < copyBufSize {
		c.b = make([]byte, copyBufSize)
	}
}

// drain waits for copyOutput to finish once the command is gone. Output
// already in the pipe is still delivered. Processes that left the group may
// hold the write end (without the shim, which kills them); give them
// drainTimeout, then copyOutput's read fails and it ends, so Run always returns
// (and closes our end: they get EPIPE/SIGPIPE). The deadline is the pipe's own,
// set only when the copy is not over yet: no timer a run of its own.
func drain(pr *os.File, copied <-chan struct{}) {
	select {
	case <-copied:
		return
	default:
	}
	if pr.SetReadDeadline(time.Now().Add(drainTimeout)) == nil {
		<-copied
		return
	}
	dt := time.NewTimer(drainTimeout) // a pipe the runtime's poller does not serve
	defer dt.Stop()
	select {
	case <-copied:
	case <-dt.C:
		pr.Close()
		<-copied
	}
}
