package clickhouse_test

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/chcluster"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/metric/clickhouse"
	"github.com/liftlab/lift/metric/duckdb"
	"github.com/liftlab/lift/metric/metrictest"
	"github.com/liftlab/lift/store"
)

// forwardFixture is a store holding metrictest.Generate's exposures to the
// two listed variants and every event, and an engine over the two shards,
// emptied.
func forwardFixture(t *testing.T) (*store.DB, *clickhouse.Engine, *metric.Plan) {
	t.Helper()
	ctx := context.Background()
	if err := sharded.Truncate(ctx); err != nil {
		t.Fatal(err)
	}
	opt := store.DefaultOptions()
	opt.MaxClockSkew = -1
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &experiment.Experiment{Key: "gen", Name: "gen", Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}
	if _, err := db.CreateExperiment(ctx, "t", e); err != nil {
		t.Fatal(err)
	}
	d := metrictest.Generate(5, 900)
	var xs []experiment.Exposure
	for _, x := range d.Exposures {
		if x.Variant == "control" || x.Variant == "treatment" {
			x.HoldoutVersion = 0
			xs = append(xs, x)
		}
	}
	// Several groups, so that the forwarder pages across them.
	for i := 0; i < len(xs); i += 250 {
		if err := db.LogExposures(ctx, xs[i:min(i+250, len(xs))]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(d.Events); i += 1000 {
		if _, _, err := db.IngestEvents(ctx, d.Events[i:min(i+1000, len(d.Events))]); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := clickhouse.Open(ctx, clickhouse.Options{Shards: sharded.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	names, defs := metrictest.GeneratedMetrics()
	p, err := metric.Compile(metric.ExperimentPopulation(e), names, defs)
	if err != nil {
		t.Fatal(err)
	}
	return db, eng, p
}

// rowCounts are the rows of exposures_local and events_local on each shard.
func rowCounts(t *testing.T) [2][2]int {
	t.Helper()
	var out [2][2]int
	for i, s := range sharded.Servers[:2] {
		for j, tbl := range []string{clickhouse.ExposuresLocal, clickhouse.EventsLocal} {
			v, err := sharded.Query(context.Background(), s, "SELECT count() FROM "+tbl)
			if err != nil {
				t.Fatal(err)
			}
			if out[i][j], err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// TestForwarder: the forwarder copies every committed exposure and event to
// the shard holding its unit, in pages; forwarding again after a lost cursor
// (a crash between the shards' inserts and the cursor's update) stores no
// row twice; and the ClickHouse engine then answers the DuckDB engine's
// statistics over the store, to 1e-9.
func TestForwarder(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	ctx := context.Background()
	db, eng, p := forwardFixture(t)
	f := clickhouse.NewForwarder(db, eng, clickhouse.ForwardOptions{Events: true, Batch: 97})
	nx, ne, err := f.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wantX, wantE int
	if err := db.SQL().QueryRowContext(ctx, `SELECT (SELECT count(*) FROM exposures), (SELECT count(*) FROM events)`).Scan(&wantX, &wantE); err != nil {
		t.Fatal(err)
	}
	if nx != wantX || ne != wantE {
		t.Fatalf("forwarded %d exposures and %d events, want %d and %d", nx, ne, wantX, wantE)
	}
	first := rowCounts(t)
	if first[0][0]+first[1][0] != wantX || first[0][1]+first[1][1] != wantE || first[0][0] == 0 || first[1][0] == 0 {
		t.Fatalf("rows per shard %v, want %d exposures and %d events over both", first, wantX, wantE)
	}
	for _, s := range []string{clickhouse.ExposuresCursor, clickhouse.EventsCursor} {
		if err := db.SetForwardCursor(ctx, s, 0); err != nil {
			t.Fatal(err)
		}
	}
	again := clickhouse.NewForwarder(db, eng, clickhouse.ForwardOptions{Events: true, Batch: 500})
	if _, _, err := again.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rowCounts(t); got != first {
		t.Fatalf("after forwarding again from a lost cursor: rows per shard %v, want %v", got, first)
	}
	want, err := duckdb.New(db.SQL()).Stats(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := eng.Stats(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	compareStats(t, got, want, 1e-9)
}

// compareStats checks every arm's unshifted sums of got against want.
func compareStats(t *testing.T, got, want *metric.Stats, tol float64) {
	t.Helper()
	for arm, n := range want.Units {
		if got.Units[arm] != n {
			t.Errorf("units[%s] = %d, want %d", arm, got.Units[arm], n)
		}
	}
	for name, arms := range want.Metrics {
		for i, w := range arms {
			g := got.Metrics[name][i]
			gs, ws := metrictest.Unshift(g), metrictest.Unshift(w)
			for k, wv := range ws {
				if math.Abs(gs[k]-wv) > tol*math.Max(1, math.Abs(wv)) {
					t.Errorf("%s %s %s = %.15g, want %.15g", name, w.Name, k, gs[k], wv)
				}
			}
		}
	}
}

// TestTeamEventsTable: the engine reads the team's own events table through a
// column mapping (other names, the value in cents, a Distributed table of
// their own), with the exposures forwarded from the store, and answers the
// DuckDB engine's statistics over the store, to 1e-9. An erasure then
// deletes the unit's forwarded exposures and leaves the team's table as it is,
// which its audit entry says.
func TestTeamEventsTable(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	ctx := context.Background()
	db, eng, p := forwardFixture(t)
	if _, _, err := clickhouse.NewForwarder(db, eng, clickhouse.ForwardOptions{Events: true}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the next tests scan every table of the shards
		for _, s := range sharded.Servers[:2] {
			for _, q := range []string{`DROP TABLE IF EXISTS shop_events`, `DROP TABLE IF EXISTS shop_events_local`} {
				if _, err := sharded.Query(ctx, s, q); err != nil {
					t.Error(err)
				}
			}
		}
	})
	for _, s := range sharded.Servers[:2] {
		for _, q := range []string{
			`DROP TABLE IF EXISTS shop_events`,
			`DROP TABLE IF EXISTS shop_events_local`,
			`CREATE TABLE shop_events_local (id String, user_id String, kind String, at_us Int64, amount_cents Int64) ENGINE = MergeTree ORDER BY (kind, user_id, at_us)`,
			`CREATE TABLE shop_events AS shop_events_local ENGINE = Distributed(` + chcluster.ClusterName + `, default, shop_events_local, cityHash64(user_id))`,
			`INSERT INTO shop_events_local SELECT event_id, unit, type, ts, toInt64(round(value * 100)) FROM events_local`,
			`TRUNCATE TABLE events_local`,
		} {
			if _, err := sharded.Query(ctx, s, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	team, err := clickhouse.Open(ctx, clickhouse.Options{Shards: sharded.Addrs(), Events: &clickhouse.EventsTable{
		Local: "shop_events_local", Distributed: "shop_events",
		Columns: map[string]string{"event_id": "id", "unit": "user_id", "type": "kind", "ts": "at_us", "value": "amount_cents / 100"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	want, err := duckdb.New(db.SQL()).Stats(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := team.Stats(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	compareStats(t, got, want, 1e-9)

	// Erasure: Lift deletes the unit's forwarded exposures and leaves the
	// team's table as it is, saying so in the audit entry.
	var victim string
	if err := db.SQL().QueryRowContext(ctx, `SELECT min(unit) FROM exposures WHERE unit IN (SELECT unit FROM events)`).Scan(&victim); err != nil {
		t.Fatal(err)
	}
	er, err := db.EraseUnit(ctx, "admin", victim)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := clickhouse.NewForwarder(db, team, clickhouse.ForwardOptions{}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var theirs, ours int
	for _, s := range sharded.Servers[:2] {
		for _, q := range []struct {
			sql string
			n   *int
		}{{"SELECT count() FROM shop_events_local WHERE user_id = '" + victim + "'", &theirs}, {"SELECT count() FROM exposures_local WHERE unit = '" + victim + "'", &ours}} {
			v, err := sharded.Query(ctx, s, q.sql)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := strconv.Atoi(strings.TrimSpace(v))
			*q.n += k
		}
	}
	if theirs == 0 || ours != 0 {
		t.Errorf("after the erasure: %d rows of the unit in the team's table (want them kept), %d exposures under its id (want 0)", theirs, ours)
	}
	audit, err := db.Audit(ctx, "unit", er.Pseudonym, 0)
	if err != nil || len(audit) == 0 || audit[0].Action != "unit.erase.clickhouse" ||
		!strings.Contains(string(audit[0].After), `"team_events":"not erased: shop_events_local is the team's table, which Lift only reads"`) {
		t.Errorf("audit %+v, %v; want the ClickHouse erasure naming the team's table as not erased", audit, err)
	}
	for _, bad := range []*clickhouse.EventsTable{
		{Local: "shop_events_local"},
		{Local: "shop_events_local", Distributed: "shop_events", Columns: map[string]string{"user": "user_id"}},
	} {
		if _, err := clickhouse.Open(ctx, clickhouse.Options{Shards: sharded.Addrs(), Events: bad}); experiment.KindOf(err) != experiment.Invalid {
			t.Errorf("events table %+v: %v, want Invalid", bad, err)
		}
	}
}

// TestForwarderServerDown: with its ClickHouse server gone, the store still
// commits exposures, a forward fails without moving the cursor, and the rows
// are forwarded by the first sync that reaches a server again.
func TestForwarderServerDown(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	if os.Getenv(chcluster.Env) != "" {
		t.Skip("stops its own server; " + chcluster.Env + " names running ones")
	}
	ctx := context.Background()
	c, err := chcluster.Start(ctx, t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", store.DefaultOptions())
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "x", Name: "x", Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	log := func(unit string) {
		t.Helper()
		if err := db.LogExposures(ctx, []experiment.Exposure{{Experiment: "x", Unit: unit, Variant: "control", TS: time.Now().Add(-time.Minute)}}); err != nil {
			t.Fatalf("exposure of %s: %v", unit, err)
		}
	}
	eng, err := clickhouse.Open(ctx, clickhouse.Options{Shards: c.Addrs()})
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	defer eng.Close()
	f := clickhouse.NewForwarder(db, eng, clickhouse.ForwardOptions{})
	log("a")
	if n, _, err := f.Sync(ctx); err != nil || n != 1 {
		t.Fatalf("first sync: %d, %v", n, err)
	}
	c.Stop()
	log("b")
	if _, _, err := f.Sync(ctx); err == nil {
		t.Fatal("a sync to a stopped server succeeded")
	}
	if cur, err := db.ForwardCursor(ctx, clickhouse.ExposuresCursor); err != nil || cur != 1 {
		t.Fatalf("cursor %d, %v after the failed sync; want 1", cur, err)
	}
	// A server again (a fresh one: the stopped one's data went with its folder).
	c2, err := chcluster.Start(ctx, t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	eng2, err := clickhouse.Open(ctx, clickhouse.Options{Shards: c2.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	if n, _, err := clickhouse.NewForwarder(db, eng2, clickhouse.ForwardOptions{}).Sync(ctx); err != nil || n != 1 {
		t.Fatalf("sync after the outage: %d rows, %v; want the 1 committed meanwhile", n, err)
	}
}
