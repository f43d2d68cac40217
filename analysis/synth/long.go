package synth

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// RowError is a problem with row Row of a long-format panel (FromLong): the
// caller names the row its own way (a file's line, a JSON path).
type RowError struct {
	Row int
	Msg string
}

func (e *RowError) Error() string { return fmt.Sprintf("row %d: %s", e.Row, e.Msg) }

// numericPeriods reports whether every period label is a number, and the
// numbers.
func numericPeriods(periods []string) ([]float64, bool) {
	v := make([]float64, len(periods))
	for i, s := range periods {
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, false
		}
		v[i] = x
	}
	return v, true
}

// FromLong builds the balanced wide panel of Run from long-format rows (row i:
// unit[i], period[i], y[i]), the pipeline shared by "lift geo" and POST
// /v1/analyses/geo. Units are sorted by name; periods are ordered as numbers
// when every label is one, else as text (ISO dates sort in time order). A
// missing or non-finite outcome, a repeated (unit, period) or a missing one
// is an error (a *RowError for the first two).
func FromLong(unit, period []string, y []float64) (Panel, error) {
	if len(period) != len(unit) || len(y) != len(unit) {
		panic(fmt.Sprintf("synth: FromLong: lengths %d, %d, %d", len(unit), len(period), len(y)))
	}
	var p Panel
	uIdx, tIdx := map[string]int{}, map[string]int{}
	for i := range unit {
		if _, ok := uIdx[unit[i]]; !ok {
			uIdx[unit[i]] = 0
			p.Units = append(p.Units, unit[i])
		}
		if _, ok := tIdx[period[i]]; !ok {
			tIdx[period[i]] = 0
			p.Periods = append(p.Periods, period[i])
		}
	}
	slices.Sort(p.Units)
	if v, ok := numericPeriods(p.Periods); ok {
		idx := make([]int, len(v))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case v[a] < v[b]:
				return -1
			case v[a] > v[b]:
				return 1
			}
			return 0
		})
		sorted := make([]string, len(idx))
		for i, j := range idx {
			sorted[i] = p.Periods[j]
		}
		p.Periods = sorted
	} else {
		slices.Sort(p.Periods)
	}
	for i, u := range p.Units {
		uIdx[u] = i
	}
	for i, t := range p.Periods {
		tIdx[t] = i
	}
	p.Y = make([][]float64, len(p.Units))
	filled := make([][]bool, len(p.Units))
	for u := range p.Y {
		p.Y[u] = make([]float64, len(p.Periods))
		filled[u] = make([]bool, len(p.Periods))
	}
	for i := range y {
		u, t := uIdx[unit[i]], tIdx[period[i]]
		if math.IsNaN(y[i]) || math.IsInf(y[i], 0) {
			return p, &RowError{i, "missing or non-finite outcome (the panel must be complete)"}
		}
		if filled[u][t] {
			return p, &RowError{i, fmt.Sprintf("unit %q has a second row for period %q", unit[i], period[i])}
		}
		p.Y[u][t], filled[u][t] = y[i], true
	}
	for u := range filled {
		for t, ok := range filled[u] {
			if !ok {
				return p, fmt.Errorf("unit %q has no row for period %q: the panel must be balanced", p.Units[u], p.Periods[t])
			}
		}
	}
	return p, nil
}

// StartIndex returns the index of the first period at or after start,
// compared as numbers when start and every period are numbers, else as
// text; an error when that leaves no pre-period or no post-period.
func StartIndex(periods []string, start string) (int, error) {
	start = strings.TrimSpace(start)
	sv, err := strconv.ParseFloat(start, 64)
	vals, numeric := numericPeriods(periods)
	numeric = numeric && err == nil
	for i, s := range periods {
		if (numeric && vals[i] >= sv) || (!numeric && s >= start) {
			if i == 0 {
				return 0, fmt.Errorf("%w: %q is at or before the first period %q: no pre-period", ErrInsufficient, start, periods[0])
			}
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is after the last period %q: no post-period", ErrInsufficient, start, periods[len(periods)-1])
}

// UnitIndexes returns the indexes of names in p.Units, without repeats; the
// error names the index (into names) of the first unknown one.
func UnitIndexes(p Panel, names []string) ([]int, int, error) {
	var out []int
	for i, n := range names {
		n = strings.TrimSpace(n)
		j := slices.Index(p.Units, n)
		if j < 0 {
			return nil, i, fmt.Errorf("%q is not a unit of the panel", n)
		}
		if !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	return out, 0, nil
}
