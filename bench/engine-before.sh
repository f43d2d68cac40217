#!/usr/bin/env bash
# Times the seven-metric plan of metric/clickhouse's BenchmarkStats with the
# DuckDB engine (metric/duckdb's BenchmarkStatsTSV) and with an earlier
# revision's DuckDB SQL (store.MetricStats, before the metric engine), in turn,
# RUNS pairs, on the very rows that benchmark generated:
#   LIFT_BENCH_KEEP=DIR go test ./metric/clickhouse/ -run '^$' -bench 'Stats/duckdb' -benchtime 1x -timeout 30m
#   bench/engine-before.sh DIR [RUNS] [REV]   (RUNS 5; REV: the last revision before the engine)
set -euo pipefail
dir=$(cd "$1" && pwd)
runs=${2:-5}
rev=${3:-237b6c8^}
cd "$(dirname "$0")/.."
wt=$(mktemp -d)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$wt" "$rev"
cat > "$wt/store/zz_before_bench_test.go" <<'GO'
package store_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

func BenchmarkBefore(b *testing.B) {
	ctx := context.Background()
	dir := os.Getenv("LIFT_BENCH_TSV")
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
	// metrictest.GeneratedMetrics, as metric/clickhouse's BenchmarkStats evaluates them.
	ms := []*experiment.Metric{
		{Name: "revenue", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Cap: &experiment.Cap{Value: 60}, Covariate: &experiment.Covariate{Days: 14}},
		{Name: "orders", EventType: "purchase", Aggregation: experiment.Count},
		{Name: "converted", EventType: "purchase", Aggregation: experiment.Binary, Window: &experiment.Window{StartDays: 0.5, EndDays: 3}, Covariate: &experiment.Covariate{Days: 7}},
		{Name: "aov", EventType: "purchase", Aggregation: experiment.Mean, Cap: &experiment.Cap{Percentile: 0.9}, Covariate: &experiment.Covariate{Days: 10}},
		{Name: "visits", EventType: "visit", Aggregation: experiment.Count, Cap: &experiment.Cap{Percentile: 0.95}},
		{Name: "rpv", Aggregation: experiment.Ratio, Numerator: "revenue", Denominator: "visits", Covariate: &experiment.Covariate{Days: 7}},
		{Name: "rpv_week", Aggregation: experiment.Ratio, Numerator: "orders", Denominator: "visits", Window: &experiment.Window{StartDays: 1, EndDays: 8}},
	}
	var names []string
	for _, m := range ms {
		if _, err := db.CreateMetric(ctx, "bench", m); err != nil {
			b.Fatal(err)
		}
		names = append(names, m.Name)
	}
	pop := store.ExperimentPopulation(&experiment.Experiment{Key: "gen",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}})
	var total time.Duration
	for b.Loop() {
		t := time.Now()
		st, err := db.MetricStats(ctx, pop, names)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(t)
		b.Logf("units %v", st.Units)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "before_s/op")
}
GO
(cd "$wt" && go test -c -o "$wt/before.test" ./store/)
go test -c -o "$wt/engine.test" ./metric/duckdb/
printf '%-4s %10s %10s %7s\n' run before_s engine_s ratio
for i in $(seq "$runs"); do
	bt=$(LIFT_BENCH_TSV="$dir" "$wt/before.test" -test.run '^$' -test.bench Before -test.benchtime 2x | awk '/before_s\/op/ { print $(NF-1) }')
	et=$(LIFT_BENCH_TSV="$dir" "$wt/engine.test" -test.run '^$' -test.bench StatsTSV -test.benchtime 2x | awk '/engine_s\/op/ { print $(NF-1) }')
	printf '%-4s %10s %10s %7s\n' "$i" "$bt" "$et" "$(echo "scale=3; $et / $bt" | bc)"
done
