package duckdb_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/metric/duckdb"
	"github.com/liftlab/lift/metric/metrictest"
	"github.com/liftlab/lift/store"
)

// BenchmarkStatsTSV evaluates metrictest.GeneratedMetrics (the seven-metric
// plan of metric/clickhouse's BenchmarkStats) with the DuckDB engine over the
// rows in LIFT_BENCH_TSV's exposures.tsv and events.tsv, as that benchmark
// writes them with LIFT_BENCH_KEEP. bench/engine-before.sh runs it in turn
// with the same plan on the revision before the engine, on the same rows.
func BenchmarkStatsTSV(b *testing.B) {
	dir := os.Getenv("LIFT_BENCH_TSV")
	if dir == "" {
		b.Skip("LIFT_BENCH_TSV names no folder of rows (see bench/engine-before.sh)")
	}
	ctx := context.Background()
	db, err := store.Open(ctx, b.TempDir()+"/lift.duckdb", store.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`INSERT INTO exposures (experiment, unit, variant, ts, in_holdout) SELECT column0, column1, column2, make_timestamp(column3), column4 <> 0
			FROM read_csv('` + dir + `/exposures.tsv', delim = '\t', header = false, columns = {'column0': 'VARCHAR', 'column1': 'VARCHAR', 'column2': 'VARCHAR', 'column3': 'BIGINT', 'column4': 'INTEGER'})`,
		`INSERT INTO events (event_id, unit, type, ts, value) SELECT column0, column1, column2, make_timestamp(column3), column4
			FROM read_csv('` + dir + `/events.tsv', delim = '\t', header = false, columns = {'column0': 'VARCHAR', 'column1': 'VARCHAR', 'column2': 'VARCHAR', 'column3': 'BIGINT', 'column4': 'DOUBLE'})`,
	} {
		if _, err := db.SQL().ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	names, defs := metrictest.GeneratedMetrics()
	p, err := metric.Compile(metric.ExperimentPopulation(&experiment.Experiment{Key: "gen",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}), names, defs)
	if err != nil {
		b.Fatal(err)
	}
	e := duckdb.New(db.SQL())
	var total time.Duration
	for b.Loop() {
		t := time.Now()
		st, err := e.Stats(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(t)
		b.Logf("units %v", st.Units)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "engine_s/op")
}
