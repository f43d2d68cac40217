package duckdb_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/metric/duckdb"
	"github.com/liftlab/lift/metric/metrictest"
	"github.com/liftlab/lift/store"
)

// open returns a fresh store in a temp file holding d, written straight into
// its exposures and events tables (the dataset's rows need no registry).
func open(t *testing.T, d metric.Dataset) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := load(ctx, db.SQL(), d); err != nil {
		t.Fatal(err)
	}
	return db
}

func load(ctx context.Context, db *sql.DB, d metric.Dataset) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const batch = 500
	for i := 0; i < len(d.Exposures); i += batch {
		xs := d.Exposures[i:min(i+batch, len(d.Exposures))]
		var args []any
		for _, x := range xs {
			var variant, version any
			if x.Variant != "" {
				variant = x.Variant
			}
			if x.HoldoutVersion != 0 {
				version = x.HoldoutVersion
			}
			args = append(args, x.Experiment, x.Unit, variant, x.TS, x.InHoldout, version)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO exposures (experiment, unit, variant, ts, in_holdout, holdout_version) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", len(xs)), ", "), args...); err != nil {
			return err
		}
	}
	for i := 0; i < len(d.Events); i += batch {
		es := d.Events[i:min(i+batch, len(d.Events))]
		var args []any
		for _, e := range es {
			args = append(args, e.EventID, e.Unit, e.Type, e.TS, e.Value)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (event_id, unit, type, ts, value) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", len(es)), ", "), args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func TestConformance(t *testing.T) {
	metrictest.Run(t, func(t *testing.T, d metric.Dataset) metric.Engine { return duckdb.New(open(t, d).SQL()) })
}

func TestSeriesConformance(t *testing.T) {
	metrictest.RunSeries(t, func(t *testing.T, d metric.Dataset) metric.SeriesEngine { return duckdb.New(open(t, d).SQL()) })
}
