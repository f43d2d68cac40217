package main

import (
	"context"
	"io"
	"math"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/chcluster"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/metric/clickhouse"
	"github.com/liftlab/lift/store"
)

// TestBanditClickHouseEqualsDuckDB computes a bandit's state with its rewards
// from the ClickHouse engine (two shards) and from DuckDB's: the demo's
// headline bandit (6 periods of 1,500 units) is run on DuckDB, its exposures
// and events are loaded into ClickHouse, and the reward sums per cohort and
// arm must be equal, and the effects, arm means and regret computed from them
// equal to 1e-12 (the same sums in a possibly different order).
func TestBanditClickHouseEqualsDuckDB(t *testing.T) {
	ctx := context.Background()
	c, skip, err := chcluster.FromEnv(ctx, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	if len(c.Servers) >= 2 && c.Servers[0].PID() != 0 {
		defer c.Stop()
	}
	if err := c.Truncate(ctx); err != nil {
		t.Fatal(err)
	}
	clock := &demoClock{} // the store's clock, as in the demo
	sopt := store.DefaultOptions()
	sopt.Now = clock.Now
	db, err := store.Open(ctx, "", sopt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Hour)
	clock.set(start.Add(-time.Hour))
	if _, err := db.CreateHoldout(ctx, "t", &experiment.Holdout{Name: "global", Fraction: 0.05}); err != nil {
		t.Fatal(err)
	}
	if _, err := demoBandit(ctx, io.Discard, db, banditDemo{Holdout: "global", Start: start, Seed: 3, Clock: clock}); err != nil {
		t.Fatal(err)
	}

	var d metric.Dataset
	rows, err := db.SQL().QueryContext(ctx, `SELECT experiment, unit, coalesce(variant, ''), ts, in_holdout, coalesce(holdout_version, 0) FROM exposures WHERE experiment = 'headline'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var x experiment.Exposure
		if err := rows.Scan(&x.Experiment, &x.Unit, &x.Variant, &x.TS, &x.InHoldout, &x.HoldoutVersion); err != nil {
			t.Fatal(err)
		}
		d.Exposures = append(d.Exposures, x)
	}
	rows.Close()
	if rows, err = db.SQL().QueryContext(ctx, `SELECT event_id, unit, type, ts, value FROM events`); err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v experiment.Event
		if err := rows.Scan(&v.EventID, &v.Unit, &v.Type, &v.TS, &v.Value); err != nil {
			t.Fatal(err)
		}
		d.Events = append(d.Events, v)
	}
	rows.Close()
	if len(d.Exposures) != 6*1500 || len(d.Events) == 0 {
		t.Fatalf("read %d exposures and %d events from DuckDB, want 9,000 exposures and some clicks", len(d.Exposures), len(d.Events))
	}
	ch, err := clickhouse.Open(ctx, clickhouse.Options{Shards: c.Addrs()[:2]})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Load(ctx, d); err != nil {
		t.Fatal(err)
	}

	duck, err := jobs.BanditReport(ctx, db, db.Engine(), "headline")
	if err != nil {
		t.Fatal(err)
	}
	got, err := jobs.BanditReport(ctx, db, ch, "headline")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Cohorts) != 7 || len(got.Cohorts) != len(duck.Cohorts) || got.Unentered != duck.Unentered {
		t.Fatalf("ClickHouse: %d cohorts, %d unentered; DuckDB: %d, %d", len(got.Cohorts), got.Unentered, len(duck.Cohorts), duck.Unentered)
	}
	for i := range duck.Cohorts {
		for a := range duck.Cohorts[i].Arms {
			if g, w := got.Cohorts[i].Arms[a], duck.Cohorts[i].Arms[a]; g != w {
				t.Errorf("cohort %d arm %d: ClickHouse %+v, DuckDB %+v", i, a, g, w)
			}
		}
	}
	near := func(what string, g, w float64) {
		if math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
			t.Errorf("%s: ClickHouse %v, DuckDB %v", what, g, w)
		}
	}
	near("regret", got.Regret, duck.Regret)
	for a := range duck.ArmMeans {
		near("arm mean", got.ArmMeans[a], duck.ArmMeans[a])
	}
	if len(got.Effects) != 2 || len(duck.Effects) != 2 {
		t.Fatalf("effects: ClickHouse %+v, DuckDB %+v", got.Effects, duck.Effects)
	}
	for i := range duck.Effects {
		g, w := got.Effects[i], duck.Effects[i]
		near(w.Variant+" estimate", g.Estimate, w.Estimate)
		near(w.Variant+" se", g.SE, w.SE)
		near(w.Variant+" naive", g.Naive, w.Naive)
	}
	t.Logf("%d exposures, %d clicks; effects %+v", len(d.Exposures), len(d.Events), got.Effects)
}
