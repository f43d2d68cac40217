package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// FileStatsQuery names a file with one row per unit and the columns that
// ReadFileStats sums per variant. Column names match case-insensitively.
type FileStatsQuery struct {
	Path        string // a .csv/.tsv (optionally .gz) or .parquet file
	Variant     string // the column holding each unit's variant name
	Metric      string // the metric y
	Covariate   string // optional: the CUPED covariate x
	Denominator string // optional: the denominator d of a ratio metric
}

// ArmSums are one variant's sufficient statistics.
type ArmSums struct {
	Name                  string
	N                     int64
	Sum, SumSquares       float64 // Σy, Σy²
	CovariateSum          float64 // Σx
	CovariateSumSquares   float64 // Σx²
	CrossSum              float64 // Σxy
	DenominatorSum        float64 // Σd
	DenominatorSumSquares float64 // Σd²
	MetricDenominatorSum  float64 // Σyd
}

// FileStats are the per-variant sums of a file, ordered by variant name.
type FileStats struct {
	Arms []ArmSums
	Rows int64
	// MetricBinary and CovariateBinary report whether every value is 0 or 1.
	MetricBinary, CovariateBinary bool
}

// ReadFileStats computes per-variant sums of a CSV or Parquet file with one
// DuckDB GROUP BY query on its own in-memory connection. Bad input gives an
// Invalid error naming the column (a missing column, lists the ones present)
// and, for a value that is empty, not a number or not finite, the data row
// (1-based, header excluded) and the value.
func ReadFileStats(ctx context.Context, q FileStatsQuery) (*FileStats, error) {
	const op = "store.ReadFileStats"
	if q.Variant == "" || q.Metric == "" {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("a variant and a metric column are required"))
	}
	if _, err := os.Stat(q.Path); err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("data"), err)
	}
	reader, err := fileReader(q.Path, false)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	defer conn.Close()

	// The happy path is one GROUP BY query. Only when it fails are the columns
	// listed and the file re-read as text to say what is wrong and where.
	cols := map[string]string{"variant": q.Variant, "metric": q.Metric, "covariate": q.Covariate, "denominator": q.Denominator}
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
		if err == nil {
			err = errors.New("empty or non-finite values")
		}
		return experiment.E(op, experiment.Invalid, experiment.Field("data"), fmt.Errorf("reading %s: %w", filepath.Base(q.Path), err))
	}

	inner := []string{`CAST(` + fsIdent(cols["variant"]) + ` AS VARCHAR) AS lift_v`, `CAST(` + fsIdent(cols["metric"]) + ` AS DOUBLE) AS lift_y`}
	sel := []string{`lift_v`, `count(*)`, `count(lift_y)`, `sum(lift_y)`, `sum(lift_y*lift_y)`, `count(*) FILTER (WHERE lift_y <> 0 AND lift_y <> 1)`}
	if c := cols["covariate"]; c != "" {
		inner = append(inner, `CAST(`+fsIdent(c)+` AS DOUBLE) AS lift_x`)
		sel = append(sel, `count(lift_x)`, `sum(lift_x)`, `sum(lift_x*lift_x)`, `sum(lift_x*lift_y)`, `count(*) FILTER (WHERE lift_x <> 0 AND lift_x <> 1)`)
	}
	if c := cols["denominator"]; c != "" {
		inner = append(inner, `CAST(`+fsIdent(c)+` AS DOUBLE) AS lift_d`)
		sel = append(sel, `count(lift_d)`, `sum(lift_d)`, `sum(lift_d*lift_d)`, `sum(lift_y*lift_d)`)
	}
	query := `SELECT ` + strings.Join(sel, ", ") + ` FROM (SELECT ` + strings.Join(inner, ", ") + ` FROM ` + reader + `) GROUP BY 1 ORDER BY 1`

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
		if !name.Valid || nY != a.N || (cols["covariate"] != "" && nX != a.N) || (cols["denominator"] != "" && nD != a.N) ||
			!finiteAll(a.Sum, a.SumSquares, a.CovariateSum, a.CovariateSumSquares, a.CrossSum, a.DenominatorSum, a.DenominatorSumSquares, a.MetricDenominatorSum) {
			needScan = true
		}
		a.Name = name.String
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
	return fs, nil
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
