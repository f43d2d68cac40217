package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/liftlab/lift/experiment"
)

// CSVToParquet converts a CSV document with a header row (such as a report's
// results table) to Parquet with DuckDB, column types inferred from the values.
func (db *DB) CSVToParquet(ctx context.Context, csv []byte) ([]byte, error) {
	const op = "store.CSVToParquet"
	dir, err := os.MkdirTemp("", "lift-parquet-")
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.parquet")
	if err := os.WriteFile(in, csv, 0o600); err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	q := fmt.Sprintf(`COPY (SELECT * FROM read_csv(%s, header = true, auto_detect = true)) TO %s (FORMAT parquet)`, sqlString(in), sqlString(out))
	if _, err := db.db.ExecContext(ctx, q); err != nil {
		return nil, experiment.E(op, experiment.Internal, fmt.Errorf("converting to Parquet: %w", err))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	return b, nil
}
