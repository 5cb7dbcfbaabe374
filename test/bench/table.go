//go:build linux

package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// row is one figure of the table.
type row struct {
	num      string // the figure's number (see package main's doc)
	name     string
	measured string
	goal     string
	raw      string // the machine's raw limit measured in the same run, or what bounds the figure
	verdict  string // "ok", "MISSED" or "" (no goal)
}

type table struct{ rows []row }

func (t *table) add(r row) { t.rows = append(t.rows, r) }

// check adds a row whose verdict is ok when met.
func (t *table) check(num, name, measured, goal, raw string, met bool) {
	v := "MISSED"
	if met {
		v = "ok"
	}
	t.add(row{num, name, measured, goal, raw, v})
}

// failed says which rows missed their goal.
func (t *table) missed() []string {
	var out []string
	for _, r := range t.rows {
		if r.verdict == "MISSED" {
			out = append(out, r.num+" "+r.name)
		}
	}
	return out
}

// print writes the table as Markdown, sorted by figure number (stable within one).
func (t *table) print(w io.Writer) {
	rows := slices.Clone(t.rows)
	slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a.num, b.num) })
	fmt.Fprintln(w, "| # | figure | measured | goal | raw limit (same run) | |")
	fmt.Fprintln(w, "|---|---|---:|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.num, r.name, r.measured, r.goal, r.raw, r.verdict)
	}
}

// percentile is the p-th percentile (0-100) of xs, by nearest rank; xs is sorted in place.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(float64(len(xs))*p/100+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
