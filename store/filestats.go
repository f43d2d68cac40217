package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// openFile checks that path exists and opens an in-memory DuckDB connection
// that reads it through reader (read_csv or read_parquet of the file); done
// closes the connection and its database.
func openFile(ctx context.Context, op, path string) (conn *sql.Conn, reader string, done func(), err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, "", nil, experiment.E(op, experiment.Invalid, experiment.Field("data"), err)
	}
	if reader, err = fileReader(path, false); err != nil {
		return nil, "", nil, experiment.E(op, err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, "", nil, experiment.E(op, experiment.Internal, err)
	}
	if conn, err = db.Conn(ctx); err != nil {
		db.Close()
		return nil, "", nil, experiment.E(op, experiment.Internal, err)
	}
	return conn, reader, func() { conn.Close(); db.Close() }, nil
}

// FileStatsQuery names a file with one row per unit and the columns that
// ReadFileStats sums per variant. Column names match case-insensitively.
type FileStatsQuery struct {
	Path        string // a .csv/.tsv (optionally .gz) or .parquet file
	Variant     string // the column holding each unit's variant name
	Metric      string // the metric y
	Covariate   string // optional: the CUPED covariate x
	Denominator string // optional: the denominator d of a ratio metric
}

// ArmSums are one variant's sufficient statistics: sums of values shifted by
// the medians of the file's first 1,000 rows (c_y, c_x, c_d), so that they keep their precision
// whatever the offset of the data (the caller analyzes them as analysis.Arm). When those rows do not
// represent an arm (a file sorted by arm, arms far apart) and its sums lose
// digits, the file is summed again around each arm's own means.
type ArmSums struct {
	Name                  string
	N                     int64
	Shift                 float64 // c_y
	Sum, SumSquares       float64 // Σ(y−c_y), Σ(y−c_y)²
	CovariateShift        float64 // c_x
	CovariateSum          float64 // Σ(x−c_x)
	CovariateSumSquares   float64 // Σ(x−c_x)²
	CrossSum              float64 // Σ(x−c_x)(y−c_y)
	DenominatorShift      float64 // c_d
	DenominatorSum        float64 // Σ(d−c_d)
	DenominatorSumSquares float64 // Σ(d−c_d)²
	MetricDenominatorSum  float64 // Σ(y−c_y)(d−c_d)
}

// FileStats are the per-variant sums of a file, ordered by variant name.
type FileStats struct {
	Arms []ArmSums
	Rows int64
	// MetricBinary and CovariateBinary report whether every value is 0 or 1.
	MetricBinary, CovariateBinary bool
}

// ReadFileStats computes per-variant sums of a CSV or Parquet file with one
// DuckDB GROUP BY query on its own in-memory connection, after reading the
// first 1,000 rows for the shifts (their medians). Bad input gives an Invalid error naming the column
// (a missing column, lists the ones present) and, for a value that is empty,
// not a number or not finite, the data row (1-based, header excluded) and the
// value; finite values whose squares overflow float64 are named too.
func ReadFileStats(ctx context.Context, q FileStatsQuery) (*FileStats, error) {
	const op = "store.ReadFileStats"
	if q.Variant == "" || q.Metric == "" {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("a variant and a metric column are required"))
	}
	conn, reader, done, err := openFile(ctx, op, q.Path)
	if err != nil {
		return nil, err
	}
	defer done()

	// The happy path is one GROUP BY query. Only when it fails are the columns
	// listed and the file re-read as text to say what is wrong and where.
	cols := map[string]string{"variant": q.Variant, "metric": q.Metric, "covariate": q.Covariate, "denominator": q.Denominator}
	// overflow names the role of the first column whose sums are not finite
	// although every value is (their squares overflow float64).
	var overflow string
	diagnose := func(err error) error {
		if ctx.Err() != nil {
			return experiment.E(op, ctx.Err())
		}
		present, derr := fsColumns(ctx, conn, reader)
		if derr != nil {
			return experiment.E(op, experiment.Invalid, experiment.Field("data"), fmt.Errorf("reading %s: %w", filepath.Base(q.Path), derr))
		}
		for _, role := range []string{"variant", "metric", "covariate", "denominator"} {
			name := cols[role]
			if name == "" {
				continue
			}
			found := false
			for _, c := range present {
				if strings.EqualFold(c, name) {
					cols[role], found = c, true
					break
				}
			}
			if !found {
				return experiment.E(op, experiment.Invalid, experiment.Field(role),
					experiment.Errorf("%s has no column %q (its columns are %s)", filepath.Base(q.Path), name, strings.Join(present, ", ")))
			}
		}
		if bad := firstBadValue(ctx, conn, q.Path, cols); bad != nil {
			return experiment.E(op, bad)
		}
		if err == nil && overflow != "" {
			c := cols[overflow]
			var big float64
			_ = conn.QueryRowContext(ctx, `SELECT max(abs(CAST(`+fsIdent(c)+` AS DOUBLE))) FROM `+reader).Scan(&big)
			return experiment.E(op, experiment.Invalid, experiment.Field(c),
				experiment.Errorf("%s: column %q has finite values, but their squares overflow float64 (largest |value| %g): rescale the column (divide it by a power of ten)", filepath.Base(q.Path), c, big))
		}
		if err == nil {
			err = errors.New("sums are not finite")
		}
		return experiment.E(op, experiment.Invalid, experiment.Field("data"), fmt.Errorf("reading %s: %w", filepath.Base(q.Path), err))
	}

	inner := []string{`CAST(` + fsIdent(cols["variant"]) + ` AS VARCHAR) AS lift_v`, `CAST(` + fsIdent(cols["metric"]) + ` AS DOUBLE) AS lift_y`}
	roles := []string{"metric"}
	if c := cols["covariate"]; c != "" {
		inner = append(inner, `CAST(`+fsIdent(c)+` AS DOUBLE) AS lift_x`)
		roles = append(roles, "covariate")
	}
	if c := cols["denominator"]; c != "" {
		inner = append(inner, `CAST(`+fsIdent(c)+` AS DOUBLE) AS lift_d`)
		roles = append(roles, "denominator")
	}
	from := `(SELECT ` + strings.Join(inner, ", ") + ` FROM ` + reader + `)`
	// The shifts: the median of each column over the file's first
	// shiftSampleRows rows (DuckDB keeps the file's order), a cheap read that
	// stops there. A median, not the first row: one row far from the rest (a
	// 0 before values near 1e12) would otherwise be the shift and the sums of
	// squares would lose the variance. Missing or bad values are left out of
	// the median; none at all leaves 0, and the sums' query below says what is
	// wrong.
	pilot := map[string]float64{"metric": 0, "covariate": 0, "denominator": 0}
	{
		p := make([]sql.NullFloat64, len(roles))
		dst := make([]any, len(roles))
		for i := range p {
			dst[i] = &p[i]
		}
		if err := conn.QueryRowContext(ctx, `SELECT `+fsShiftCols(roles)+` FROM (SELECT * FROM `+from+` LIMIT `+strconv.Itoa(shiftSampleRows)+`)`).Scan(dst...); err == nil {
			for i, r := range roles {
				if v := p[i].Float64; p[i].Valid && !math.IsNaN(v) && !math.IsInf(v, 0) {
					pilot[r] = v
				}
			}
		} else if ctx.Err() != nil {
			return nil, experiment.E(op, ctx.Err())
		}
	}
	lit := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	sel := fsSumsSelect(cols, `(lift_y - `+lit(pilot["metric"])+`)`, `(lift_x - `+lit(pilot["covariate"])+`)`, `(lift_d - `+lit(pilot["denominator"])+`)`)
	query := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + from + ` GROUP BY 1 ORDER BY 1`

	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return nil, diagnose(err)
	}
	defer rows.Close()
	fs := &FileStats{MetricBinary: true, CovariateBinary: cols["covariate"] != ""}
	var needScan bool
	for rows.Next() {
		var name sql.NullString
		var a ArmSums
		var nY, nonBinY int64
		dst := []any{&name, &a.N, &nY, &a.Sum, &a.SumSquares, &nonBinY}
		var nX, nonBinX, nD int64
		if cols["covariate"] != "" {
			dst = append(dst, &nX, &a.CovariateSum, &a.CovariateSumSquares, &a.CrossSum, &nonBinX)
		}
		if cols["denominator"] != "" {
			dst = append(dst, &nD, &a.DenominatorSum, &a.DenominatorSumSquares, &a.MetricDenominatorSum)
		}
		// Sums of empty groups are NULL; scan through NullFloat64 where needed.
		if err := scanSums(rows, dst); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		if !name.Valid || nY != a.N || (cols["covariate"] != "" && nX != a.N) || (cols["denominator"] != "" && nD != a.N) {
			needScan = true
		}
		for _, c := range []struct {
			role string
			sums []float64
		}{
			{"metric", []float64{a.Sum, a.SumSquares}},
			{"covariate", []float64{a.CovariateSum, a.CovariateSumSquares, a.CrossSum}},
			{"denominator", []float64{a.DenominatorSum, a.DenominatorSumSquares, a.MetricDenominatorSum}},
		} {
			if !finiteAll(c.sums...) {
				needScan = true
				if overflow == "" {
					overflow = c.role
				}
			}
		}
		a.Name = name.String
		a.Shift, a.CovariateShift, a.DenominatorShift = pilot["metric"], pilot["covariate"], pilot["denominator"]
		fs.MetricBinary = fs.MetricBinary && nonBinY == 0
		fs.CovariateBinary = fs.CovariateBinary && nonBinX == 0
		fs.Rows += a.N
		fs.Arms = append(fs.Arms, a)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, diagnose(err)
	}
	rows.Close()
	if needScan {
		return nil, diagnose(nil)
	}
	if fs.Rows == 0 {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Field("data"), experiment.Errorf("%s has no rows", filepath.Base(q.Path)))
	}
	if farFromShift(fs.Arms) {
		if err := resumAroundMeans(ctx, conn, from, cols, fs.Arms); err != nil {
			return nil, diagnose(err)
		}
	}
	return fs, nil
}

// fsSumsSelect is the sums query's select list over the shifted columns y, x
// and d (SQL expressions); ReadFileStats scans it in this order.
func fsSumsSelect(cols map[string]string, y, x, d string) []string {
	sel := []string{`lift_v`, `count(*)`, `count(lift_y)`, `sum(` + y + `)`, `sum(` + y + `*` + y + `)`, `count(*) FILTER (WHERE lift_y <> 0 AND lift_y <> 1)`}
	if cols["covariate"] != "" {
		sel = append(sel, `count(lift_x)`, `sum(`+x+`)`, `sum(`+x+`*`+x+`)`, `sum(`+x+`*`+y+`)`, `count(*) FILTER (WHERE lift_x <> 0 AND lift_x <> 1)`)
	}
	if cols["denominator"] != "" {
		sel = append(sel, `count(lift_d)`, `sum(`+d+`)`, `sum(`+d+`*`+d+`)`, `sum(`+y+`*`+d+`)`)
	}
	return sel
}

// farLoss is the share of a sum of squares Σ(y−c)² above which its centred
// part Σ(y−ȳ)² = Σ(y−c)² − (Σ(y−c))²/n has lost too many digits to
// cancellation: below 1e-6 of it, fewer than ten of the sixteen digits remain.
const farLoss = 1e-6

// farFromShift reports whether some arm's sums lost digits to cancellation
// because the file-wide shift is far from that arm's mean: the arms lie far
// apart and the shifts' sample (the first rows) held only some of them.
func farFromShift(arms []ArmSums) bool {
	for _, a := range arms {
		n := float64(a.N)
		for _, v := range [][2]float64{{a.Sum, a.SumSquares}, {a.CovariateSum, a.CovariateSumSquares}, {a.DenominatorSum, a.DenominatorSumSquares}} {
			if v[1] > 0 && v[1]-v[0]*v[0]/n < farLoss*v[1] && v[0]*v[0]/n > farLoss*v[1] {
				return true
			}
		}
	}
	return false
}

// resumAroundMeans sums the file again with each arm's own shifts, its means
// from the first pass (c + Σ(y−c)/n, exact to the last digits of the mean), so
// that every arm's sums keep their precision.
func resumAroundMeans(ctx context.Context, conn *sql.Conn, from string, cols map[string]string, arms []ArmSums) error {
	shift := func(col string, of func(a ArmSums) float64) string {
		var b strings.Builder
		b.WriteString(`(` + col + ` - CASE lift_v`)
		for _, a := range arms {
			b.WriteString(` WHEN '` + strings.ReplaceAll(a.Name, "'", "''") + `' THEN ` + strconv.FormatFloat(of(a), 'g', -1, 64))
		}
		b.WriteString(` END)`)
		return b.String()
	}
	for i := range arms {
		a, n := &arms[i], float64(arms[i].N)
		a.Shift += a.Sum / n
		a.CovariateShift += a.CovariateSum / n
		a.DenominatorShift += a.DenominatorSum / n
	}
	sel := fsSumsSelect(cols,
		shift("lift_y", func(a ArmSums) float64 { return a.Shift }),
		shift("lift_x", func(a ArmSums) float64 { return a.CovariateShift }),
		shift("lift_d", func(a ArmSums) float64 { return a.DenominatorShift }))
	rows, err := conn.QueryContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+from+` GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for i := 0; rows.Next(); i++ {
		if i >= len(arms) {
			return errors.New("the file changed while it was read")
		}
		a := &arms[i]
		var name sql.NullString
		var n, nY, nonBinY, nX, nonBinX, nD int64
		dst := []any{&name, &n, &nY, &a.Sum, &a.SumSquares, &nonBinY}
		if cols["covariate"] != "" {
			dst = append(dst, &nX, &a.CovariateSum, &a.CovariateSumSquares, &a.CrossSum, &nonBinX)
		}
		if cols["denominator"] != "" {
			dst = append(dst, &nD, &a.DenominatorSum, &a.DenominatorSumSquares, &a.MetricDenominatorSum)
		}
		if err := scanSums(rows, dst); err != nil {
			return err
		}
		if name.String != a.Name || n != a.N {
			return errors.New("the file changed while it was read")
		}
	}
	return rows.Err()
}

// fsShiftCols selects the inner query's columns of the roles, in order.
// shiftSampleRows is how many of a file's first rows the shifts are the
// median of.
const shiftSampleRows = 1000

// fsShiftCols selects the median of each role's finite values.
func fsShiftCols(roles []string) string {
	col := map[string]string{"metric": "lift_y", "covariate": "lift_x", "denominator": "lift_d"}
	out := make([]string, len(roles))
	for i, r := range roles {
		c := col[r]
		out[i] = `median(CASE WHEN isfinite(` + c + `) THEN ` + c + ` END)`
	}
	return strings.Join(out, ", ")
}

func scanSums(rows *sql.Rows, dst []any) error {
	tmp := make([]any, len(dst))
	floats := map[int]*sql.NullFloat64{}
	for i, d := range dst {
		if _, ok := d.(*float64); ok {
			f := &sql.NullFloat64{}
			floats[i] = f
			tmp[i] = f
		} else {
			tmp[i] = d
		}
	}
	if err := rows.Scan(tmp...); err != nil {
		return err
	}
	for i, f := range floats {
		*dst[i].(*float64) = f.Float64
	}
	return nil
}

func finiteAll(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// firstBadValue re-reads the file as text and returns an Invalid error naming
// the first empty, non-numeric or non-finite value of a used column, or nil.
func firstBadValue(ctx context.Context, conn *sql.Conn, path string, cols map[string]string) error {
	reader, err := fileReader(path, true)
	if err != nil {
		return nil
	}
	for _, role := range []string{"variant", "metric", "covariate", "denominator"} {
		c := cols[role]
		if c == "" {
			continue
		}
		v := `CAST(` + fsIdent(c) + ` AS VARCHAR)`
		cond := `v IS NULL OR trim(v) = ''`
		if role != "variant" {
			cond += ` OR TRY_CAST(trim(v) AS DOUBLE) IS NULL OR isinf(TRY_CAST(trim(v) AS DOUBLE)) OR isnan(TRY_CAST(trim(v) AS DOUBLE))`
		}
		var row int64
		var val sql.NullString
		var number bool
		err := conn.QueryRowContext(ctx, `SELECT row, v, TRY_CAST(trim(v) AS DOUBLE) IS NOT NULL FROM (SELECT row_number() OVER () AS row, `+v+` AS v FROM `+reader+`) WHERE `+cond+` ORDER BY row LIMIT 1`).Scan(&row, &val, &number)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil
		}
		what := fmt.Sprintf("is not a number: %q", val.String)
		if number {
			what = fmt.Sprintf("is not finite: %q", val.String)
		}
		if !val.Valid || strings.TrimSpace(val.String) == "" {
			what = "is empty"
		}
		return experiment.E(experiment.Invalid, experiment.Field(c),
			experiment.Errorf("%s: column %q at row %d %s", filepath.Base(path), c, row, what))
	}
	return nil
}

func isCSV(path string) bool {
	p := strings.ToLower(strings.TrimSuffix(strings.ToLower(path), ".gz"))
	return strings.HasSuffix(p, ".csv") || strings.HasSuffix(p, ".tsv") || strings.HasSuffix(p, ".txt")
}

// fileReader returns the DuckDB table function reading path; text reads every
// column as VARCHAR (CSV) or casts nothing (Parquet keeps its types).
func fileReader(path string, text bool) (string, error) {
	switch {
	case isCSV(path):
		if text {
			return `read_csv(` + fsLiteral(path) + `, header = true, all_varchar = true)`, nil
		}
		return `read_csv(` + fsLiteral(path) + `, header = true)`, nil
	case strings.HasSuffix(strings.ToLower(path), ".parquet") || strings.HasSuffix(strings.ToLower(path), ".pq"):
		return `read_parquet(` + fsLiteral(path) + `)`, nil
	}
	return "", experiment.E(experiment.Invalid, experiment.Field("data"),
		experiment.Errorf("%s: unknown file type (want .csv, .tsv, .csv.gz or .parquet)", filepath.Base(path)))
}

// fsColumns lists the columns a reader finds, in file order.
func fsColumns(ctx context.Context, conn *sql.Conn, reader string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT column_name FROM (DESCRIBE SELECT * FROM `+reader+`)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

func fsLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func fsIdent(s string) string   { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
