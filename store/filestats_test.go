package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/marcboeker/go-duckdb/v2"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

func writeText(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// unitsCSV has small integers, so DuckDB's sums are exact.
const unitsCSV = `Unit,Variant,Revenue,Pre,Sessions,Converted
1,b,3,1,2,1
2,a,1,2,1,0
3,a,4,0,3,1
4,b,0,5,1,0
5,a,2,2,2,1
`

func TestReadFileStatsCSV(t *testing.T) {
	path := writeText(t, t.TempDir(), "units.csv", unitsCSV)
	// Column names match case-insensitively.
	fs, err := store.ReadFileStats(context.Background(), store.FileStatsQuery{Path: path, Variant: "variant", Metric: "revenue", Covariate: "pre", Denominator: "sessions"})
	if err != nil {
		t.Fatal(err)
	}
	// Hand sums: a = rows 2, 3, 5 (y 1, 4, 2; x 2, 0, 2; d 1, 3, 2);
	// b = rows 1, 4 (y 3, 0; x 1, 5; d 2, 1).
	want := []store.ArmSums{
		{Name: "a", N: 3, Sum: 7, SumSquares: 21, CovariateSum: 4, CovariateSumSquares: 8, CrossSum: 6, DenominatorSum: 6, DenominatorSumSquares: 14, MetricDenominatorSum: 17},
		{Name: "b", N: 2, Sum: 3, SumSquares: 9, CovariateSum: 6, CovariateSumSquares: 26, CrossSum: 3, DenominatorSum: 3, DenominatorSumSquares: 5, MetricDenominatorSum: 6},
	}
	// The sums are shifted by the medians of the first rows (all five here):
	// y {3, 1, 4, 0, 2} → 2, x {1, 2, 0, 5, 2} → 2, d {2, 1, 3, 1, 2} → 2.
	for i, a := range fs.Arms {
		if a.Shift != 2 || a.CovariateShift != 2 || a.DenominatorShift != 2 {
			t.Errorf("arm %s shifts %g, %g, %g, want the medians 2, 2, 2", a.Name, a.Shift, a.CovariateShift, a.DenominatorShift)
		}
		fs.Arms[i] = rawFileSums(a)
	}
	if len(fs.Arms) != 2 || fs.Arms[0] != want[0] || fs.Arms[1] != want[1] {
		t.Errorf("arms = %+v\nwant %+v", fs.Arms, want)
	}
	if fs.Rows != 5 || fs.MetricBinary || fs.CovariateBinary {
		t.Errorf("rows %d binary %v/%v, want 5 false/false", fs.Rows, fs.MetricBinary, fs.CovariateBinary)
	}
	fs, err = store.ReadFileStats(context.Background(), store.FileStatsQuery{Path: path, Variant: "Variant", Metric: "Converted"})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := rawFileSums(fs.Arms[0]), rawFileSums(fs.Arms[1]); !fs.MetricBinary || a.Sum != 2 || b.Sum != 1 {
		t.Errorf("binary metric: %+v", fs)
	}
}

// rawFileSums turns shifted sums back into raw ones (Σuv = Σu'v' + c_vΣu' +
// c_uΣv' + n·c_u·c_v), shifts 0.
func rawFileSums(a store.ArmSums) store.ArmSums {
	n := float64(a.N)
	two := func(cu, su, cv, sv, suv float64) float64 { return suv + cv*su + cu*sv + n*cu*cv }
	cy, cx, cd := a.Shift, a.CovariateShift, a.DenominatorShift
	return store.ArmSums{Name: a.Name, N: a.N,
		Sum: a.Sum + n*cy, SumSquares: two(cy, a.Sum, cy, a.Sum, a.SumSquares),
		CovariateSum: a.CovariateSum + n*cx, CovariateSumSquares: two(cx, a.CovariateSum, cx, a.CovariateSum, a.CovariateSumSquares),
		CrossSum:       two(cx, a.CovariateSum, cy, a.Sum, a.CrossSum),
		DenominatorSum: a.DenominatorSum + n*cd, DenominatorSumSquares: two(cd, a.DenominatorSum, cd, a.DenominatorSum, a.DenominatorSumSquares),
		MetricDenominatorSum: two(cy, a.Sum, cd, a.DenominatorSum, a.MetricDenominatorSum),
	}
}

// Item 1 of issue 14 through "lift analyze"'s reader: a CSV whose metric sits at
// 1e9 gives exact Welch, CUPED and ratio results. The rows are
// analysis.TestLargeOffset's (control i < 400, treatment i < 500) and so are the
// expected values (exact moments by fractions.Fraction and scipy 1.10's t; the
// snippet is there).
func TestReadFileStatsLargeOffset(t *testing.T) {
	var b strings.Builder
	b.WriteString("variant,y,x,d\n")
	for arm, n := range map[string]int{"control": 400, "treatment": 500} {
		for i := range n {
			x := 1e9 + float64((i*53)%97)/4
			y := 1e9 + float64((i*37)%101)/8 + float64((i*53)%97)/8
			if arm == "treatment" {
				y += 0.75
			}
			fmt.Fprintf(&b, "%s,%.3f,%.2f,%d\n", arm, y, x, 1+(i*13)%7)
		}
	}
	dir := t.TempDir()
	path := writeText(t, dir, "offset.csv", b.String())
	// The same rows after a first row of another arm far from them: the shifts
	// must not come from that one row (with a shift of 0, the sums of squares
	// at 1e9 lose every digit of the variance). The control and treatment rows
	// are unchanged, so scipy's numbers below hold for both files.
	far := writeText(t, dir, "far-first-row.csv", "variant,y,x,d\nfirst,0,0,1\n"+strings.TrimPrefix(b.String(), "variant,y,x,d\n"))
	cases := []struct {
		name string
		q    store.FileStatsQuery
		in   analysis.Input
		want [5]float64 // estimate, ci_low, ci_high, se, p
	}{
		{"welch", store.FileStatsQuery{Metric: "y"}, analysis.Input{},
			[5]float64{0.7615625, 0.07844446854759946, 1.4446805314524007, 0.34804313491789635, 0.028930079089069447}},
		{"cuped", store.FileStatsQuery{Metric: "y", Covariate: "x"}, analysis.Input{Covariate: "x"},
			[5]float64{0.7604452153351946, 0.28007034200987146, 1.2408200886605179, 0.24474666042904658, 0.0019519627601325942}},
		{"ratio", store.FileStatsQuery{Metric: "y", Denominator: "d"}, analysis.Input{Type: analysis.Ratio},
			[5]float64{-719380.6256299665, -17248671.031599633, 15809909.7803397, 8421504.151477406, 0.9319460458624168}},
	}
	for _, file := range []string{path, far} {
		for _, c := range cases {
			c.q.Path, c.q.Variant = file, "variant"
			c.name = filepath.Base(file) + " " + c.name
			fs, err := store.ReadFileStats(context.Background(), c.q)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range fs.Arms {
				if a.Name != "first" {
					c.in.Arms = append(c.in.Arms, armOf(a))
				}
			}
			res, err := analysis.Analyze(c.in)
			if err != nil {
				t.Fatal(err)
			}
			g := res.Comparisons[0].Absolute
			for i, got := range []float64{g.Estimate, g.CILow, g.CIHigh, g.SE, g.PValue} {
				if math.Abs(got-c.want[i]) > 1e-9*c.want[3] {
					t.Errorf("%s: [estimate, ci_low, ci_high, se, p][%d] = %.12g, want %.12g (flags %v)", c.name, i, got, c.want[i], res.Comparisons[0].Flags)
				}
			}
		}
	}
}

func TestReadFileStatsParquet(t *testing.T) {
	dir := t.TempDir()
	csv := writeText(t, dir, "units.csv", unitsCSV)
	pq := filepath.Join(dir, "units.parquet")
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT * FROM read_csv('%s')) TO '%s' (FORMAT parquet)`, csv, pq)); err != nil {
		t.Fatal(err)
	}
	q := store.FileStatsQuery{Variant: "variant", Metric: "revenue", Covariate: "pre"}
	q.Path = csv
	fromCSV, err := store.ReadFileStats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	q.Path = pq
	fromPQ, err := store.ReadFileStats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fromCSV.Arms {
		if fromCSV.Arms[i] != fromPQ.Arms[i] {
			t.Errorf("parquet arm %+v != csv arm %+v", fromPQ.Arms[i], fromCSV.Arms[i])
		}
	}
	// A text column in Parquet is reported with its row.
	bad := filepath.Join(dir, "bad.parquet")
	if _, err := db.Exec(fmt.Sprintf(`COPY (SELECT * FROM (VALUES ('a', '1'), ('b', '2'), ('a', 'n/a')) t(variant, y)) TO '%s' (FORMAT parquet)`, bad)); err != nil {
		t.Fatal(err)
	}
	_, err = store.ReadFileStats(context.Background(), store.FileStatsQuery{Path: bad, Variant: "variant", Metric: "y"})
	if err == nil || !strings.Contains(err.Error(), "row 3") || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("err = %v, want the column y and row 3", err)
	}
}

func TestReadFileStatsErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, content string
		q                   store.FileStatsQuery
		want                []string
	}{
		{"missing column", "a.csv", unitsCSV, store.FileStatsQuery{Variant: "variant", Metric: "profit"}, []string{`"profit"`, "Unit, Variant, Revenue"}},
		{"missing covariate", "a.csv", unitsCSV, store.FileStatsQuery{Variant: "variant", Metric: "revenue", Covariate: "before"}, []string{`"before"`}},
		{"not a number", "b.csv", "v,y\na,1\nb,2\na,three\n", store.FileStatsQuery{Variant: "v", Metric: "y"}, []string{`"y"`, "row 3", "three", "not a number"}},
		{"not finite", "c.csv", "v,y\na,1\nb,inf\na,3\n", store.FileStatsQuery{Variant: "v", Metric: "y"}, []string{`"y"`, "row 2", "not finite"}},
		{"empty metric", "d.csv", "v,y\na,1\nb,\na,3\n", store.FileStatsQuery{Variant: "v", Metric: "y"}, []string{`"y"`, "row 2", "empty"}},
		{"empty variant", "e.csv", "v,y\na,1\n,2\na,3\n", store.FileStatsQuery{Variant: "v", Metric: "y"}, []string{`"v"`, "row 2", "empty"}},
		{"bad covariate late", "f.csv", "v,y,x\na,1,1\nb,2,2\na,3,3\nb,4,x4\n", store.FileStatsQuery{Variant: "v", Metric: "y", Covariate: "x"}, []string{`"x"`, "row 4", "x4"}},
		{"no rows", "g.csv", "v,y\n", store.FileStatsQuery{Variant: "v", Metric: "y"}, []string{"no rows"}},
		// Item 7 of issue 14: finite values whose squares overflow are not "empty or non-finite".
		{"squares overflow", "h.csv", "v,y\na,1e200\nb,-2e200\na,3e200\nb,1e200\n", store.FileStatsQuery{Variant: "v", Metric: "y"}, []string{`"y"`, "finite values", "squares overflow", "3e+200", "rescale the column"}},
		{"covariate squares overflow", "i.csv", "v,y,x\na,1,1e200\nb,2,-2e200\na,3,3e200\nb,4,1\n", store.FileStatsQuery{Variant: "v", Metric: "y", Covariate: "x"}, []string{`"x"`, "squares overflow"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.q.Path = writeText(t, dir, c.file, c.content)
			_, err := store.ReadFileStats(context.Background(), c.q)
			if err == nil {
				t.Fatal("no error")
			}
			if k := experiment.KindOf(err); k != experiment.Invalid && k != experiment.InsufficientData {
				t.Errorf("kind %v", k)
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

// benchCSV returns the file named by LIFT_BENCH_CSV, or writes a seeded
// 1,000,000-row file (variant, metric y, covariate x) to a temporary folder.
func benchCSV(b *testing.B) string {
	if p := os.Getenv("LIFT_BENCH_CSV"); p != "" {
		return p
	}
	path := filepath.Join(b.TempDir(), "units.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(1, 2))
	fmt.Fprintln(w, "unit,variant,y,x")
	for i := range 1_000_000 {
		x := 10 + 3*r.NormFloat64()
		fmt.Fprintf(w, "%d,%s,%.4f,%.4f\n", i, [2]string{"control", "treatment"}[r.IntN(2)], 0.8*x+2*r.NormFloat64(), x)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return path
}

// BenchmarkFileStats compares DuckDB alone running the GROUP BY sums a CUPED
// analysis needs with ReadFileStats (the same sums plus its checks). Set
// LIFT_BENCH_CSV to a file with columns variant, y, x (see bench/analyze.sh).
func BenchmarkFileStats(b *testing.B) {
	path := benchCSV(b)
	b.Run("duckdb_groupby", func(b *testing.B) {
		for b.Loop() {
			db, err := sql.Open("duckdb", "")
			if err != nil {
				b.Fatal(err)
			}
			rows, err := db.Query(`SELECT variant, count(*), sum(y), sum(y*y), sum(x), sum(x*x), sum(x*y) FROM read_csv('` + path + `') GROUP BY variant`)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			rows.Close()
			db.Close()
		}
	})
	b.Run("read_file_stats", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.ReadFileStats(context.Background(), store.FileStatsQuery{Path: path, Variant: "variant", Metric: "y", Covariate: "x"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestReadFileStatsArmsFarApart: a file sorted by arm whose arms lie 1e9
// apart. The first 1,000 rows (the shifts' sample) are all control, so the
// treatment's sums around the control's median would lose every digit of its
// variance; its sums are taken again around its own mean. Control
// y_i = ((37i) mod 101)/8, treatment y_i = 1e9 + ((53i) mod 97)/8, i < 1,000.
// scipy 1.10:
//
//	c = np.array([((i*37)%101)/8 for i in range(1000)])
//	t = np.array([1e9+((i*53)%97)/8 for i in range(1000)])
//	t.mean()-c.mean()                                     # 999999999.734625
//	np.sqrt(t.var(ddof=1)/1000+c.var(ddof=1)/1000)       # 0.15996825275273766
func TestReadFileStatsArmsFarApart(t *testing.T) {
	var b strings.Builder
	b.WriteString("variant,y\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "control,%g\n", float64((i*37)%101)/8)
	}
	for i := range 1000 {
		fmt.Fprintf(&b, "treatment,%.3f\n", 1e9+float64((i*53)%97)/8)
	}
	path := writeText(t, t.TempDir(), "sorted.csv", b.String())
	fs, err := store.ReadFileStats(context.Background(), store.FileStatsQuery{Path: path, Variant: "variant", Metric: "y"})
	if err != nil {
		t.Fatal(err)
	}
	var in analysis.Input
	for _, a := range fs.Arms {
		in.Arms = append(in.Arms, armOf(a))
	}
	res, err := analysis.Analyze(in)
	if err != nil {
		t.Fatal(err)
	}
	g := res.Comparisons[0].Absolute
	if math.Abs(g.Estimate-999999999.734625) > 2.5e-7 { // two ulps of 1e9
		t.Errorf("estimate %.12g, want 999999999.734625", g.Estimate)
	}
	if math.Abs(g.SE-0.15996825275273766) > 1e-9*0.15996825275273766 {
		t.Errorf("se %.15g, want 0.15996825275273766", g.SE)
	}
}

// armOf is the analysis.Arm of a file's sums (as lift analyze builds it).
func armOf(a store.ArmSums) analysis.Arm {
	return analysis.Arm{
		Name: a.Name, N: a.N,
		Shift: a.Shift, Sum: a.Sum, SumSquares: a.SumSquares,
		CovariateShift: a.CovariateShift, CovariateSum: a.CovariateSum, CovariateSumSquares: a.CovariateSumSquares, CrossSum: a.CrossSum,
		DenominatorShift: a.DenominatorShift, DenominatorSum: a.DenominatorSum, DenominatorSumSquares: a.DenominatorSumSquares, MetricDenominatorSum: a.MetricDenominatorSum,
	}
}
