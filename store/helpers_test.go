package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

// openTest opens a fresh database file in a temporary folder and closes it at the end.
func openTest(t testing.TB, c *clock) (*DB, string) {
	t.Helper()
	path := t.TempDir() + "/lift.duckdb"
	opt := DefaultOptions()
	if c != nil {
		opt.Now = c.Now
		// Fixtures are stamped ahead of the fake clock; the bound on future
		// timestamps has its own tests (TestTimestampBounds).
		opt.MaxClockSkew = -1
	}
	db, err := Open(context.Background(), path, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func count(t testing.TB, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func abExperiment(key string) *experiment.Experiment {
	return &experiment.Experiment{
		Key:      key,
		Name:     "Checkout button",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}},
		Metrics:  []experiment.MetricRef{{Name: "revenue", Primary: true}},
	}
}

func asError(err error, target **experiment.Error) bool { return errors.As(err, target) }

// svc is the results service over db and its DuckDB engine.
func svc(db *DB) *results.Service { return results.New(db, db, db.Engine(), db.opt.Now) }
