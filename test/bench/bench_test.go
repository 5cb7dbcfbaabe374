//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestTiny is what CI checks of the bench: it builds, runs every case at tiny sizes and
// fills every row of its table. The figures themselves are not asserted (a shared CI
// machine makes them noise), except one the agent guarantees on any machine: a quiet run
// costs exactly one Port request.
func TestTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent")
	}
	o, err := parseFlags([]string{"-tiny"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	tab, err := run(ctx, o, &out, &progress)
	if err != nil {
		t.Fatalf("bench -tiny: %v\n%s\n%s", err, progress.String(), out.String())
	}
	got := map[string]row{}
	for _, r := range tab.rows {
		got[r.num] = r
	}
	for _, num := range []string{"1a", "1b", "1c", "2a", "2b", "2c", "2d", "3a", "3b", "4", "5a", "5b", "5c", "5d", "6a", "6b", "7a", "7b", "7c", "7d", "7e", "7f"} {
		r, ok := got[num]
		if !ok || r.measured == "" || r.raw == "" {
			t.Errorf("row %s missing or empty: %+v", num, r)
		}
		if !strings.Contains(out.String(), "| "+num+" |") {
			t.Errorf("printed table lacks row %s", num)
		}
	}
	if r := got["2c"]; strings.HasPrefix(r.measured, "n/a") {
		t.Errorf("the exec shim could not be measured: %s", r.measured)
	}
	if r := got["3a"]; r.verdict != "ok" {
		t.Errorf("quiet runs: %s Port requests per run, want exactly 1.00", r.measured)
	}
	t.Log("\n" + out.String())
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-tiny", "-cases", "2,rss", "-dispatch-runs", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.cases["dispatch"] || !o.cases["rss"] || o.cases["throughput"] || o.cases["chatty"] {
		t.Errorf("-cases 2,rss selected %v", o.cases)
	}
	if o.dispatchRuns != 7 || o.throughputRuns != 100 || o.flush != 250*time.Millisecond {
		t.Errorf("-tiny with -dispatch-runs 7: dispatch %d, throughput %d, flush %s", o.dispatchRuns, o.throughputRuns, o.flush)
	}
	if o, _ := parseFlags(nil, io.Discard); len(o.cases) != 5 || o.throughputRuns != 2000 {
		t.Errorf("no flags: cases %v, throughput runs %d; want all cases at full size", o.cases, o.throughputRuns)
	}
	for _, bad := range [][]string{{"-cases", "8"}, {"-max-concurrent", "101"}, {"-thousand-runs", "1001"}, {"-sleep-runs", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}
