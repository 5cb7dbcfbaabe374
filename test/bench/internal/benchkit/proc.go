//go:build linux

package benchkit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReadMem returns a process's VmRSS and VmHWM (peak) in KiB.
func ReadMem(pid int) (rss, hwm int64, err error) {
	if err := readKiB(pid, "status", map[string]*int64{"VmRSS": &rss, "VmHWM": &hwm}); err != nil {
		return 0, 0, err
	}
	if rss == 0 && hwm == 0 {
		return 0, 0, errors.New("no VmRSS (zombie?)")
	}
	return rss, hwm, nil
}

// RSSParts is what a process's VmRSS is made of, in KiB: its anonymous memory (heap,
// stacks), its file-backed pages (its binary among them), and how much of those the kernel
// maps in 2 MiB pages (a freshly written binary's page cache may be in such large folios:
// a whole 2 MiB then counts, touched or not).
type RSSParts struct{ Anon, File, FilePMD int64 }

// ReadRSSParts reads RSSParts from /proc/PID/status and /proc/PID/smaps_rollup.
func ReadRSSParts(pid int) (RSSParts, error) {
	var p RSSParts
	if err := readKiB(pid, "status", map[string]*int64{"RssAnon": &p.Anon, "RssFile": &p.File}); err != nil {
		return p, err
	}
	return p, readKiB(pid, "smaps_rollup", map[string]*int64{"FilePmdMapped": &p.FilePMD})
}

// readKiB sets each of keys found in /proc/PID/file ("Key:   123 kB" lines) to its number.
func readKiB(pid int, file string, keys map[string]*int64) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if dst, ok := keys[k]; ok {
			if f := strings.Fields(v); len(f) > 0 {
				*dst, _ = strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return nil
}

// ReadCPU returns a process's own and its waited-for children's CPU time, from
// /proc/PID/stat (utime+stime, cutime+cstime; USER_HZ ticks of 10 ms).
func ReadCPU(pid int) (own, children time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, 0, errors.New("short /proc stat")
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	v := func(j int) time.Duration { x, _ := strconv.ParseInt(f[j], 10, 64); return time.Duration(x) * tick }
	return v(11) + v(12), v(13) + v(14), nil
}

// Sampler records a process's VmRSS every interval until Stop, and keeps the largest.
type Sampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	max  int64
	n    int
}

// SampleRSS starts sampling pid.
func SampleRSS(pid int, every time.Duration) *Sampler {
	s := &Sampler{stop: make(chan struct{})}
	s.take(pid)
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.take(pid)
			}
		}
	})
	return s
}

func (s *Sampler) take(pid int) {
	rss, _, err := ReadMem(pid)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.max = max(s.max, rss)
	s.n++
	s.mu.Unlock()
}

// Stop ends sampling and returns the largest VmRSS seen (KiB) and the number of samples.
func (s *Sampler) Stop() (maxKiB int64, samples int) {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max, s.n
}

// MiB formats KiB as MiB.
func MiB(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
