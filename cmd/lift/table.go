package main

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// table is a small comma-separated file read into memory by column: the
// reader behind "lift did" and "lift uplift". The first row is the header;
// every later row must have as many fields. Line numbers in errors are the
// file's (the header is line 1).
type table struct {
	name   string     // file name, for errors
	header []string   // column names
	cols   [][]string // cols[j][i] is column j of data row i
}

// missing reports whether a field is a missing value: empty, NA, NaN or "."
// (case-insensitive).
func missing(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "na", "nan", ".":
		return true
	}
	return false
}

// readTableFile opens and reads path with readTable.
func readTableFile(ctx context.Context, op, path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("--data"), err)
	}
	defer f.Close()
	return readTable(ctx, op, path, f)
}

// readTable reads a CSV with a header row from r; name labels errors.
func readTable(ctx context.Context, op, name string, r io.Reader) (*table, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err == io.EOF {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("--data"), experiment.Errorf("%s is empty: want a header row", name))
	}
	if err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("--data"), experiment.Errorf("%s: %w", name, err))
	}
	t := &table{name: name}
	seen := map[string]int{}
	for j, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if h == "" {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("--data"), experiment.Errorf("%s line 1: column %d has an empty name", name, j+1))
		}
		if k, dup := seen[h]; dup {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("--data"), experiment.Errorf("%s line 1: columns %d and %d are both named %q", name, k+1, j+1, h))
		}
		seen[h] = j
		t.header = append(t.header, h)
	}
	t.cols = make([][]string, len(head))
	for row := 0; ; row++ {
		if row%8192 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, experiment.E(op, experiment.Invalid, experiment.Field("--data"), experiment.Errorf("%s line %d: %v", name, pe.Line, pe.Err))
			}
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("--data"), experiment.Errorf("%s: %w", name, err))
		}
		for j, v := range rec {
			t.cols[j] = append(t.cols[j], strings.Clone(v))
		}
	}
	return t, nil
}

// rows returns the number of data rows.
func (t *table) rows() int {
	if len(t.cols) == 0 {
		return 0
	}
	return len(t.cols[0])
}

// line returns the file line of data row i.
func (t *table) line(i int) int { return i + 2 }

func (t *table) column(op, flag, col string) ([]string, error) {
	for j, h := range t.header {
		if h == col {
			return t.cols[j], nil
		}
	}
	return nil, experiment.E(op, experiment.Invalid, experiment.Field(flag),
		experiment.Errorf("%s has no column %q (columns: %s)", t.name, col, strings.Join(t.header, ", ")))
}

// strings returns column col; flag names the flag that chose it, for errors.
func (t *table) strings(op, flag, col string) ([]string, error) {
	return t.column(op, flag, col)
}

// floats returns column col as numbers; missing values (see missing) are NaN.
func (t *table) floats(op, flag, col string) ([]float64, error) {
	c, err := t.column(op, flag, col)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(c))
	for i, s := range c {
		if missing(s) {
			out[i] = math.NaN()
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(v, 0) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(flag),
				experiment.Errorf("%s line %d, column %q: %q is not a finite number", t.name, t.line(i), col, s))
		}
		out[i] = v
	}
	return out, nil
}

// bools returns column col as 0/1 flags: 1, 0, true, false, yes, no, t, f
// (case-insensitive) and numbers equal to 0 or 1. Missing values are errors.
func (t *table) bools(op, flag, col string) ([]bool, error) {
	c, err := t.column(op, flag, col)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(c))
	for i, s := range c {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "1", "true", "t", "yes", "y", "1.0":
			out[i] = true
		case "0", "false", "f", "no", "n", "0.0":
		default:
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(flag),
				experiment.Errorf("%s line %d, column %q: %q is not 0/1 or true/false", t.name, t.line(i), col, s))
		}
	}
	return out, nil
}

// codes returns column col as dense integer codes, equal values sharing a
// code. Missing values are errors.
func (t *table) codes(op, flag, col string) ([]int, error) {
	c, err := t.column(op, flag, col)
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	out := make([]int, len(c))
	for i, s := range c {
		if missing(s) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(flag),
				experiment.Errorf("%s line %d, column %q: missing value", t.name, t.line(i), col))
		}
		k, ok := m[s]
		if !ok {
			k = len(m)
			m[s] = k
		}
		out[i] = k
	}
	return out, nil
}

// ordinals returns column col as ordered integers: the values themselves
// when every one is an integer, else the rank of each value among the sorted
// distinct strings (so ISO dates such as 2024-03-01 keep their order).
func (t *table) ordinals(op, flag, col string) ([]int, error) {
	c, err := t.column(op, flag, col)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(c))
	numeric := true
	for i, s := range c {
		if missing(s) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(flag),
				experiment.Errorf("%s line %d, column %q: missing value", t.name, t.line(i), col))
		}
		if numeric {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || v != math.Trunc(v) || math.Abs(v) > 1<<52 {
				numeric = false
				continue
			}
			out[i] = int(v)
		}
	}
	if numeric {
		return out, nil
	}
	distinct := map[string]int{}
	for _, s := range c {
		distinct[s] = 0
	}
	keys := make([]string, 0, len(distinct))
	for s := range distinct {
		keys = append(keys, s)
	}
	slices.Sort(keys)
	for r, s := range keys {
		distinct[s] = r
	}
	for i, s := range c {
		out[i] = distinct[s]
	}
	return out, nil
}
