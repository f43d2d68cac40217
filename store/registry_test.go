package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

func TestMigrationsRunOnce(t *testing.T) {
	ctx := context.Background()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i-1].version >= ms[i].version {
			t.Fatalf("migrations out of order: %s before %s", ms[i-1].name, ms[i].name)
		}
	}
	db, path := openTest(t, nil)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening must skip every applied migration: re-running one would fail with
	// "table already exists" and would add a second row to schema_migrations.
	for i := 0; i < 2; i++ {
		db, err = Open(ctx, path, DefaultOptions())
		if err != nil {
			t.Fatalf("reopen %d: %v", i+1, err)
		}
		if n := count(t, db, `SELECT count(*) FROM schema_migrations`); n != len(ms) {
			t.Errorf("reopen %d: schema_migrations has %d rows, want %d (one per embedded migration)", i+1, n, len(ms))
		}
		if n := count(t, db, `SELECT count(DISTINCT version) FROM schema_migrations`); n != len(ms) {
			t.Errorf("reopen %d: %d distinct versions, want %d", i+1, n, len(ms))
		}
		db.Close()
	}
}

func TestExperimentLifecycle(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	db, _ := openTest(t, c)
	t0 := c.Now()

	e, err := db.CreateExperiment(ctx, "alice", abExperiment("btn"))
	if err != nil {
		t.Fatal(err)
	}
	// Defaults documented on experiment.ApplyDefaults.
	if e.Status != experiment.Draft || e.Seed != "btn" || e.HashVersion != 2 || e.CoverageOr1() != 1 ||
		e.Analysis.Alpha != 0.05 || e.Analysis.PrimaryMetric != "revenue" || !e.CreatedAt.Equal(t0) {
		t.Errorf("created experiment lacks defaults: %+v", e)
	}
	got, err := db.GetExperiment(ctx, "btn")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, e), mustJSON(t, got); a != b {
		t.Errorf("read back differs from written:\n got %s\nwant %s", b, a)
	}

	// A draft may change its design.
	c.Advance(time.Minute)
	upd := abExperiment("btn")
	upd.Variants = []experiment.Variant{{Name: "control", Weight: 0.4}, {Name: "treatment", Weight: 0.6}}
	e2, err := db.UpdateExperiment(ctx, "bob", upd)
	if err != nil {
		t.Fatalf("update draft: %v", err)
	}
	if e2.Variants[1].Weight != 0.6 || !e2.CreatedAt.Equal(t0) || !e2.UpdatedAt.Equal(c.Now()) {
		t.Errorf("update: got %+v", e2)
	}

	c.Advance(time.Minute)
	started, err := db.StartExperiment(ctx, "bob", "btn")
	if err != nil {
		t.Fatal(err)
	}
	if started.Status != experiment.Running || started.StartedAt == nil || !started.StartedAt.Equal(c.Now()) {
		t.Errorf("start: got status %s started_at %v", started.Status, started.StartedAt)
	}
	if _, err := db.StartExperiment(ctx, "bob", "btn"); !experiment.Is(err, experiment.Conflict) {
		t.Errorf("second start: got %v, want Conflict", err)
	}
	c.Advance(time.Hour)
	stopped, err := db.StopExperiment(ctx, "bob", "btn")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.Status != experiment.Stopped || stopped.StoppedAt == nil || !stopped.StoppedAt.Equal(c.Now()) {
		t.Errorf("stop: got %+v", stopped)
	}
	if _, err := db.StopExperiment(ctx, "bob", "btn"); !experiment.Is(err, experiment.Conflict) {
		t.Errorf("second stop: got %v, want Conflict", err)
	}
	if _, err := db.GetExperiment(ctx, "nope"); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("get unknown: got %v, want NotFound", err)
	}
	if _, err := db.StartExperiment(ctx, "bob", "nope"); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("start unknown: got %v, want NotFound", err)
	}
	if _, err := db.CreateExperiment(ctx, "alice", abExperiment("btn")); !experiment.Is(err, experiment.Conflict) {
		t.Errorf("create taken key: got %v, want Conflict", err)
	}
	if _, err := db.CreateExperiment(ctx, "alice", abExperiment("second")); err != nil {
		t.Fatal(err)
	}
	list, err := db.ListExperiments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Key != "btn" || list[1].Key != "second" {
		t.Errorf("list: got %d experiments", len(list))
	}

	// The audit log holds every change, newest first, with before and after.
	audit, err := db.Audit(ctx, "experiment", "btn", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantActions := []string{"experiment.stop", "experiment.start", "experiment.update", "experiment.create"}
	if len(audit) != len(wantActions) {
		t.Fatalf("audit has %d entries, want %d: %+v", len(audit), len(wantActions), audit)
	}
	for i, a := range audit {
		if a.Action != wantActions[i] {
			t.Errorf("audit[%d].Action = %s, want %s", i, a.Action, wantActions[i])
		}
	}
	create, update := audit[3], audit[2]
	if create.Before != nil || create.Actor != "alice" || !create.At.Equal(t0) {
		t.Errorf("create entry: %+v", create)
	}
	var before, after experiment.Experiment
	if err := json.Unmarshal(update.Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(update.After, &after); err != nil {
		t.Fatal(err)
	}
	if update.Actor != "bob" || before.Variants[1].Weight != 0.5 || after.Variants[1].Weight != 0.6 {
		t.Errorf("update entry: actor %s, before %v, after %v", update.Actor, before.Variants, after.Variants)
	}
	if all, _ := db.Audit(ctx, "", "", 2); len(all) != 2 || all[0].Key != "second" {
		t.Errorf("Audit(all, limit 2) = %+v", all)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPreRegistrationLocksDesign(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, newClock())
	if _, err := db.CreateExperiment(ctx, "alice", abExperiment("btn")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartExperiment(ctx, "alice", "btn"); err != nil {
		t.Fatal(err)
	}
	half := 0.5
	tests := []struct {
		name   string
		change func(e *experiment.Experiment)
	}{
		{"weights", func(e *experiment.Experiment) { e.Variants[0].Weight, e.Variants[1].Weight = 0.3, 0.7 }},
		{"variants", func(e *experiment.Experiment) {
			e.Variants = append(e.Variants[:1], experiment.Variant{Name: "green", Weight: 0.5})
		}},
		{"metrics", func(e *experiment.Experiment) { e.Metrics = append(e.Metrics, experiment.MetricRef{Name: "clicks"}) }},
		{"primary metric", func(e *experiment.Experiment) {
			e.Metrics = []experiment.MetricRef{{Name: "revenue"}, {Name: "clicks", Primary: true}}
		}},
		{"alpha", func(e *experiment.Experiment) { e.Analysis.Alpha = 0.1 }},
		{"mde", func(e *experiment.Experiment) { e.Analysis.MDE = 0.02 }},
		{"coverage", func(e *experiment.Experiment) { e.Coverage = &half }},
		{"seed", func(e *experiment.Experiment) { e.Seed = "other" }},
	}
	before := count(t, db, `SELECT count(*) FROM audit`)
	stored, _ := db.GetExperiment(ctx, "btn")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := abExperiment("btn")
			tt.change(e)
			_, err := db.UpdateExperiment(ctx, "mallory", e)
			if !experiment.Is(err, experiment.Conflict) {
				t.Fatalf("got %v, want Conflict", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "experiment btn is running") || !strings.Contains(msg, "pre-registration") {
				t.Errorf("message does not explain pre-registration: %s", msg)
			}
		})
	}
	if n := count(t, db, `SELECT count(*) FROM audit`); n != before {
		t.Errorf("rejected updates wrote %d audit entries", n-before)
	}
	if now, _ := db.GetExperiment(ctx, "btn"); mustJSON(t, now) != mustJSON(t, stored) {
		t.Errorf("rejected updates changed the experiment: %s", mustJSON(t, now))
	}
	// Name and description stay editable.
	e := abExperiment("btn")
	e.Name, e.Description = "Checkout button v2", "bigger button"
	got, err := db.UpdateExperiment(ctx, "alice", e)
	if err != nil {
		t.Fatalf("renaming a running experiment: %v", err)
	}
	if got.Name != "Checkout button v2" || got.Status != experiment.Running || got.StartedAt == nil {
		t.Errorf("rename: got %+v", got)
	}
}

func TestCreateExperimentInvalid(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, newClock())
	if _, err := db.CreateLayer(ctx, "alice", &experiment.Layer{Name: "checkout"}); err != nil {
		t.Fatal(err)
	}
	taken := abExperiment("taken")
	taken.Layer, taken.LayerRange = "checkout", &experiment.Range{Start: 0, End: 0.5}
	if _, err := db.CreateExperiment(ctx, "alice", taken); err != nil {
		t.Fatal(err)
	}
	minus := -0.1
	tests := []struct {
		name   string
		change func(e *experiment.Experiment)
		field  string
		msg    string
	}{
		{"weights sum", func(e *experiment.Experiment) { e.Variants[1].Weight = 0.6 }, "variants", "sum to 1"},
		{"negative weight", func(e *experiment.Experiment) {
			e.Variants = []experiment.Variant{{Name: "a", Weight: 1.1}, {Name: "b", Weight: -0.1}}
		}, "variants[0].weight", "[0, 1]"},
		{"duplicate variant", func(e *experiment.Experiment) { e.Variants[1].Name = "control" }, "variants[1].name", "duplicate"},
		{"coverage", func(e *experiment.Experiment) { e.Coverage = &minus }, "coverage", "[0, 1]"},
		{"unknown layer", func(e *experiment.Experiment) {
			e.Layer, e.LayerRange = "nope", &experiment.Range{Start: 0.5, End: 1}
		}, "layer", "unknown layer"},
		{"unknown holdout", func(e *experiment.Experiment) { e.Holdout = "nope" }, "holdout", "unknown holdout"},
		{"overlapping slice", func(e *experiment.Experiment) {
			e.Layer, e.LayerRange = "checkout", &experiment.Range{Start: 0.4, End: 0.6}
		}, "layer_range", `"taken"`},
		{"status", func(e *experiment.Experiment) { e.Status = experiment.Running }, "status", "draft"},
		{"bad key", func(e *experiment.Experiment) { e.Key = "has space" }, "key", "letters"},
	}
	experiments := count(t, db, `SELECT count(*) FROM experiments`)
	audits := count(t, db, `SELECT count(*) FROM audit`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := abExperiment("new")
			tt.change(e)
			_, err := db.CreateExperiment(ctx, "alice", e)
			if !experiment.Is(err, experiment.Invalid) {
				t.Fatalf("got %v, want Invalid", err)
			}
			var le *experiment.Error
			if !asError(err, &le) || le.Field != tt.field {
				t.Errorf("field: got %q, want %q (%v)", le.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
		})
	}
	if n := count(t, db, `SELECT count(*) FROM experiments`); n != experiments {
		t.Errorf("rejected creates stored %d experiments", n-experiments)
	}
	if n := count(t, db, `SELECT count(*) FROM audit`); n != audits {
		t.Errorf("rejected creates wrote %d audit entries", n-audits)
	}
}

func TestLayerSlices(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, newClock())
	if _, err := db.CreateLayer(ctx, "alice", &experiment.Layer{Name: "checkout", Description: "checkout page"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateLayer(ctx, "alice", &experiment.Layer{Name: "checkout"}); !experiment.Is(err, experiment.Conflict) {
		t.Errorf("duplicate layer: got %v, want Conflict", err)
	}
	if _, err := db.CreateLayer(ctx, "alice", &experiment.Layer{Name: ""}); !experiment.Is(err, experiment.Invalid) {
		t.Errorf("empty layer name: got %v, want Invalid", err)
	}
	in := func(key string, start, end float64) *experiment.Experiment {
		e := abExperiment(key)
		e.Layer, e.LayerRange = "checkout", &experiment.Range{Start: start, End: end}
		return e
	}
	// Half-open slices: [0, 0.5) and [0.5, 1) touch but do not overlap.
	for _, e := range []*experiment.Experiment{in("a", 0, 0.5), in("b", 0.5, 1)} {
		if _, err := db.CreateExperiment(ctx, "alice", e); err != nil {
			t.Fatalf("create %s: %v", e.Key, err)
		}
	}
	if _, err := db.CreateExperiment(ctx, "alice", in("c", 0.25, 0.75)); !experiment.Is(err, experiment.Invalid) {
		t.Fatalf("overlap: got %v, want Invalid", err)
	}
	// A draft may move within its own slice without clashing with itself.
	if _, err := db.UpdateExperiment(ctx, "alice", in("a", 0, 0.4)); err != nil {
		t.Fatalf("shrinking own slice: %v", err)
	}
	if _, err := db.UpdateExperiment(ctx, "alice", in("a", 0, 0.6)); !experiment.Is(err, experiment.Invalid) {
		t.Fatalf("growing into b: got %v, want Invalid", err)
	}
	// A stopped experiment frees its slice.
	if _, err := db.StartExperiment(ctx, "alice", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.StopExperiment(ctx, "alice", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateExperiment(ctx, "alice", in("c", 0.5, 1)); err != nil {
		t.Fatalf("reusing a stopped experiment's slice: %v", err)
	}
	l, err := db.GetLayer(ctx, "checkout")
	if err != nil || l.Description != "checkout page" {
		t.Errorf("GetLayer: %+v, %v", l, err)
	}
	if _, err := db.GetLayer(ctx, "nope"); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("GetLayer unknown: got %v, want NotFound", err)
	}
	if ls, _ := db.ListLayers(ctx); len(ls) != 1 {
		t.Errorf("ListLayers: %d layers, want 1", len(ls))
	}
}

func TestHoldoutVersions(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	db, _ := openTest(t, c)
	t0 := c.Now()
	h, err := db.CreateHoldout(ctx, "alice", &experiment.Holdout{Name: "global", Fraction: 0.05,
		RotationPeriod: experiment.Duration(90 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 1 || h.Salt != "global/v1" || len(h.Versions) != 1 {
		t.Errorf("created: %+v", h)
	}
	if _, err := db.CreateHoldout(ctx, "alice", &experiment.Holdout{Name: "global", Fraction: 0.05}); !experiment.Is(err, experiment.Conflict) {
		t.Errorf("duplicate: got %v, want Conflict", err)
	}
	if _, err := db.CreateHoldout(ctx, "alice", &experiment.Holdout{Name: "x", Fraction: 1.5}); !experiment.Is(err, experiment.Invalid) {
		t.Errorf("fraction 1.5: got %v, want Invalid", err)
	}
	if _, err := db.CreateHoldout(ctx, "alice", &experiment.Holdout{Name: "manual", Fraction: 0.1}); err != nil {
		t.Fatal(err)
	}

	// 89 days in: nothing due.
	c.Advance(89 * 24 * time.Hour)
	if due, err := db.RotateDueHoldouts(ctx, "scheduler"); err != nil || len(due) != 0 {
		t.Fatalf("day 89: rotated %d, err %v", len(due), err)
	}
	// 90 days in: "global" is due; "manual" has no period.
	c.Advance(24 * time.Hour)
	t1 := c.Now()
	due, err := db.RotateDueHoldouts(ctx, "scheduler")
	if err != nil || len(due) != 1 || due[0].Name != "global" {
		t.Fatalf("day 90: rotated %+v, err %v", due, err)
	}
	if due, _ := db.RotateDueHoldouts(ctx, "scheduler"); len(due) != 0 {
		t.Errorf("rotated twice on the same day")
	}
	c.Advance(time.Hour)
	t2 := c.Now()
	h, err = db.RotateHoldout(ctx, "alice", "global")
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.GetHoldout(ctx, "global")
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, h) {
		t.Errorf("read back differs:\n got %s\nwant %s", mustJSON(t, got), mustJSON(t, h))
	}
	want := []experiment.HoldoutVersion{
		{Version: 1, Salt: "global/v1", Start: t0, End: &t1},
		{Version: 2, Salt: "global/v2", Start: t1, End: &t2},
		{Version: 3, Salt: "global/v3", Start: t2},
	}
	if got.Version != 3 || got.Salt != "global/v3" || !got.RotatedAt.Equal(t2) || mustJSON(t, got.Versions) != mustJSON(t, want) {
		t.Errorf("versions:\n got %s\nwant %s", mustJSON(t, got.Versions), mustJSON(t, want))
	}
	if _, err := db.RotateHoldout(ctx, "alice", "nope"); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("rotate unknown: got %v, want NotFound", err)
	}
	if hs, _ := db.ListHoldouts(ctx); len(hs) != 2 || len(hs[0].Versions) != 3 {
		t.Errorf("ListHoldouts: %s", mustJSON(t, hs))
	}
	if a, _ := db.Audit(ctx, "holdout", "global", 0); len(a) != 3 || a[0].Action != "holdout.rotate" || a[0].Actor != "alice" || a[1].Actor != "scheduler" {
		t.Errorf("holdout audit: %+v", a)
	}
}

func TestOpenInMemory(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "", Options{}) // zero Options: every field takes its default
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Path() != "" {
		t.Errorf("Path() = %q, want \"\"", db.Path())
	}
	setupExposures(t, db)
	if err := db.LogExposures(ctx, batch("m", 40, time.Time{})); err != nil {
		t.Fatal(err)
	}
	// 40 units: i = 19, 39 in the holdout; 20 even i control; 18 odd i treatment.
	if got, err := db.ExposureCounts(ctx, "btn"); err != nil || got[""] != 2 || got["control"] != 20 || got["treatment"] != 18 {
		t.Errorf("ExposureCounts = %v, %v", got, err)
	}
	if st := db.WriterStats(); st.Committed != 40 || st.QueueCap != 1024 || st.Failed != 0 {
		t.Errorf("WriterStats = %+v", st)
	}
}
