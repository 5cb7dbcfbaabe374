package executor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Most commands print little or nothing: a run's copy buffer starts small and grows to
// copyBufSize only once a read fills it, so a quiet run does not allocate 32 KiB.
func TestCopyBufferGrowsOnlyWhenFilled(t *testing.T) {
	var b copyBuffer
	if got := len(b.next()); got != copyBufStart {
		t.Fatalf("first buffer %d bytes, want %d", got, copyBufStart)
	}
	b.filled(copyBufStart - 1)
	if got := len(b.next()); got != copyBufStart {
		t.Fatalf("after a partial read: %d bytes, want %d", got, copyBufStart)
	}
	b.filled(copyBufStart)
	if got := len(b.next()); got != copyBufSize {
		t.Fatalf("after a full read: %d bytes, want %d", got, copyBufSize)
	}
}

// Output larger than the first buffer still arrives whole and in order.
func TestCopyOutputPassesEverything(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef\n"), 10_000) // 170 KB: several full reads
	go func() {
		pw.Write(want)
		pw.Close()
	}()
	var got bytes.Buffer
	done := make(chan struct{})
	copyOutput(&got, pr, done)
	<-done
	pr.Close()
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("copied %d bytes, want %d, in order", got.Len(), len(want))
	}
}

func BenchmarkCopyQuietOutput(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		pr, pw, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		pw.Close()
		done := make(chan struct{})
		copyOutput(&bytes.Buffer{}, pr, done)
		pr.Close()
	}
}

// TestCommandsStdio: a command reads end of input at once from /dev/null (never the
// agent's stdin) and writes to a blocking stdout, as programs expect, with or without the
// shim; the run's file is the run's alone.
func TestCommandsStdio(t *testing.T) {
	const script = `cat; echo "stdin: $(readlink /proc/self/fd/0)"; grep '^flags' /proc/self/fdinfo/1; stat -c 'run file: %a' "$PORT_RUN_FILE"`
	check := func(t *testing.T, prefix []string) {
		res, out := run(t, context.Background(), Spec{Argv: []string{"sh", "-c", script}, Shim: prefix, RunFile: []byte("{}"), Timeout: time.Minute})
		if !res.Success || !strings.Contains(out, "stdin: /dev/null\n") || !strings.Contains(out, "run file: 600\n") {
			t.Fatalf("%+v %q", res, out)
		}
		var flags int
		_, after, _ := strings.Cut(out, "flags:")
		if _, err := fmt.Sscanf(after, "\t%o", &flags); err != nil || flags&syscall.O_NONBLOCK != 0 {
			t.Errorf("stdout's flags %o (%v): want it blocking", flags, err)
		}
	}
	t.Run("no shim", func(t *testing.T) { check(t, nil) })
	eachShim(t, check)
}
