package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// MaxFileRows is the most rows ReadFileRows reads into memory.
const MaxFileRows = 5_000_000

// FileRowsQuery names a file with one row per unit, its variant column and
// the numeric columns ReadFileRows returns. Column names match
// case-insensitively.
type FileRowsQuery struct {
	Path    string   // a .csv/.tsv (optionally .gz) or .parquet file
	Variant string   // the column holding each unit's variant name
	Columns []string // numeric columns
}

// FileRows are a file's rows in file order: Variant[i] and Values[j][i], the
// value of Columns[j] in row i.
type FileRows struct {
	Variant []string
	Values  [][]float64
}

// ReadFileRows reads the variant and numeric columns of a CSV or Parquet file
// into memory with DuckDB, for row-level estimators such as Lin's regression
// adjustment (everything else reads sums, ReadFileStats). Invalid, naming the
// column, for a missing column or an empty, non-numeric or non-finite value
// (with its 1-based data row); TooLarge above MaxFileRows rows.
func ReadFileRows(ctx context.Context, q FileRowsQuery) (*FileRows, error) {
	const op = "store.ReadFileRows"
	conn, reader, done, err := openFile(ctx, op, q.Path)
	if err != nil {
		return nil, err
	}
	defer done()
	present, err := fsColumns(ctx, conn, reader)
	if err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("data"), fmt.Errorf("reading %s: %w", filepath.Base(q.Path), err))
	}
	resolve := func(name string) (string, error) {
		for _, c := range present {
			if strings.EqualFold(c, name) {
				return c, nil
			}
		}
		return "", experiment.E(op, experiment.Invalid, experiment.Field(name),
			experiment.Errorf("%s has no column %q (its columns are %s)", filepath.Base(q.Path), name, strings.Join(present, ", ")))
	}
	v, err := resolve(q.Variant)
	if err != nil {
		return nil, err
	}
	sel := []string{`CAST(` + fsIdent(v) + ` AS VARCHAR)`}
	cols := map[string]string{"variant": v}
	for j, name := range q.Columns {
		c, err := resolve(name)
		if err != nil {
			return nil, err
		}
		sel = append(sel, `TRY_CAST(`+fsIdent(c)+` AS DOUBLE)`)
		cols[fmt.Sprintf("metric%d", j)] = c
	}
	var n int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM `+reader).Scan(&n); err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("data"), fmt.Errorf("reading %s: %w", filepath.Base(q.Path), err))
	}
	if n > MaxFileRows {
		return nil, experiment.E(op, experiment.TooLarge, experiment.Field("data"), experiment.Errorf("%s has %d rows; row-level estimators read at most %d", filepath.Base(q.Path), n, MaxFileRows))
	}
	rows, err := conn.QueryContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+reader)
	if err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("data"), fmt.Errorf("reading %s: %w", filepath.Base(q.Path), err))
	}
	defer rows.Close()
	out := &FileRows{Values: make([][]float64, len(q.Columns))}
	dst := make([]any, 1+len(q.Columns))
	var name sql.NullString
	vals := make([]sql.NullFloat64, len(q.Columns))
	dst[0] = &name
	for j := range vals {
		dst[1+j] = &vals[j]
	}
	bad := func(col string, row int) error {
		// Re-read as text to say what the value is.
		for j, c := range q.Columns {
			if c == col {
				if e := firstBadColumn(ctx, conn, q.Path, cols[fmt.Sprintf("metric%d", j)]); e != nil {
					return experiment.E(op, e)
				}
			}
		}
		return experiment.E(op, experiment.Invalid, experiment.Field(col), experiment.Errorf("%s: column %q at row %d is empty, not a number or not finite", filepath.Base(q.Path), col, row))
	}
	for i := 1; rows.Next(); i++ {
		if err := rows.Scan(dst...); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		if !name.Valid || strings.TrimSpace(name.String) == "" {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(q.Variant), experiment.Errorf("%s: column %q at row %d is empty", filepath.Base(q.Path), q.Variant, i))
		}
		out.Variant = append(out.Variant, name.String)
		for j, x := range vals {
			if !x.Valid || !finiteAll(x.Float64) {
				return nil, bad(q.Columns[j], i)
			}
			out.Values[j] = append(out.Values[j], x.Float64)
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() != nil {
			return nil, experiment.E(op, ctx.Err())
		}
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("data"), fmt.Errorf("reading %s: %w", filepath.Base(q.Path), err))
	}
	return out, nil
}

// firstBadColumn is firstBadValue for one numeric column.
func firstBadColumn(ctx context.Context, conn *sql.Conn, path, col string) error {
	return firstBadValue(ctx, conn, path, map[string]string{"metric": col})
}
