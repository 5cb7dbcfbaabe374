package executor

import (
	"bytes"
	"os"
	"testing"
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
