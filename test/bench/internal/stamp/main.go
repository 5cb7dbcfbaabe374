// Command stamp is the bench's command under test. Its first instruction records the
// wall clock, so the bench can measure dispatch (message produced -> command running) and log
// latency (line printed -> stored in Port). It imports little, so its own start-up (the Go
// runtime's, well under a millisecond) is a small part of what it measures; the bench
// measures that start-up too, as part of the raw limit.
//
//	stamp                      one line "stamp <unix ns>"
//	stamp lines N MS           N lines "line <i> <unix ns>", MS milliseconds apart
//	stamp flood BYTES          BYTES of 100-byte text lines, as fast as the pipe takes them
package main

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	now := time.Now().UnixNano() // first: the moment the command runs
	args := os.Args[1:]
	if len(args) == 0 {
		write([]byte("stamp " + strconv.FormatInt(now, 10) + "\n"))
		return
	}
	switch {
	case args[0] == "lines" && len(args) == 3:
		n, err1 := strconv.Atoi(args[1])
		ms, err2 := strconv.Atoi(args[2])
		if err1 != nil || err2 != nil {
			usage()
		}
		for i := range n {
			if i > 0 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			write([]byte("line " + strconv.Itoa(i) + " " + strconv.FormatInt(time.Now().UnixNano(), 10) + "\n"))
		}
	case args[0] == "flood" && len(args) == 2:
		total, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			usage()
		}
		line := make([]byte, 100)
		for i := range line {
			line[i] = 'a' + byte(i%26)
		}
		line[99] = '\n'
		buf := make([]byte, 0, 64<<10)
		for len(buf)+len(line) <= cap(buf) {
			buf = append(buf, line...)
		}
		for total > 0 {
			chunk := buf
			if int64(len(chunk)) > total {
				chunk = chunk[:total]
			}
			write(chunk)
			total -= int64(len(chunk))
		}
	default:
		usage()
	}
}

func write(b []byte) {
	for len(b) > 0 {
		n, err := syscall.Write(1, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			os.Exit(3)
		}
		b = b[n:]
	}
}

func usage() {
	_, _ = syscall.Write(2, []byte("usage: stamp | stamp lines N MS | stamp flood BYTES\n"))
	os.Exit(2)
}
