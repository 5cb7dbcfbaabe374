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
	buf := make([]byte, copyBufSize)
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
		n, err := pr.Read(buf)
		if n > 0 && !broken {
			write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// drain waits for copyOutput to finish once the command is gone. Output
// already in the pipe is still delivered. Processes that left the group may
// hold the write end (without the shim, which kills them); give them
// drainTimeout, then close our end so Run always returns (they get
// EPIPE/SIGPIPE).
func drain(pr *os.File, copied <-chan struct{}) {
	dt := time.NewTimer(drainTimeout)
	defer dt.Stop()
	select {
	case <-copied:
	case <-dt.C:
		pr.Close()
		<-copied
	}
}
