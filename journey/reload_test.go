package journey_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
)

// reloadFixture writes model "shop" version v1 to a folder, loads it with
// LoadModels and serves journey "home" (every unit personalized) from it.
func reloadFixture(t *testing.T) (dir string, ms *journey.Models, dec *journey.Decider) {
	t.Helper()
	dir, ms, dec, _ = reloadFixtureDB(t)
	return dir, ms, dec
}

// reloadFixtureDB is reloadFixture, and the store the Decider writes to.
func reloadFixtureDB(t *testing.T) (dir string, ms *journey.Models, dec *journey.Decider, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	writeVersion(t, dir, "v1", "")
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "lift.duckdb"), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "feed",
		Variants: []experiment.Variant{{Name: "control", Weight: 0}, {Name: "personalized", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartExperiment(ctx, "t", "feed"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateJourney(ctx, "t", &experiment.Journey{Key: "home", Experiment: "feed", Model: "shop", K: 5,
		LatencyBudget: experiment.Duration(5 * time.Second), Exploration: experiment.Exploration{Kind: experiment.ExploreNone},
		ControlPolicy: experiment.ControlPolicy{Kind: experiment.ControlFixed, Items: []string{"item-1"}}}); err != nil {
		t.Fatal(err)
	}
	ms, err = journey.LoadModels(ctx, dir, journey.LoadOptions{Kind: scorer.KindCPU, RetireAfter: 20 * time.Millisecond,
		Batch: scorer.BatchOptions{MaxWait: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	dec = journey.New(db, ms, journey.Options{})
	t.Cleanup(func() { dec.Close() })
	return dir, ms, dec, db
}

// writeVersion saves the test model as version v (marked not deployable when
// why is not empty) to dir/shop.safetensors.
func writeVersion(t *testing.T, dir, v, why string) {
	t.Helper()
	m := testModel(t, 200, 8, 32)
	m.Meta.Version = v
	if why != "" {
		m.Meta.Extra = map[string]string{scorer.MetaNotDeployable: why}
	}
	if err := m.Save(context.Background(), filepath.Join(dir, "shop.safetensors")); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad: decisions made while the model is reloaded again and
// again (each old version retired 20 ms later) are all personalized by the old
// or the new version: none fails, none falls back.
func TestReloadUnderLoad(t *testing.T) {
	ctx := context.Background()
	dir, ms, dec := reloadFixture(t)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d, err := dec.Decide(ctx, "home", journey.Request{Unit: "known-" + strconv.Itoa((c*7+i)%32), Context: journey.Context{ConsentTier: 2}})
				mu.Lock()
				switch {
				case err != nil:
					seen["error: "+err.Error()]++
				case d.Policy != experiment.PolicyPersonalized:
					seen["policy "+d.Policy+" "+d.Why]++
				default:
					seen[d.ModelVersion]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range 20 {
		v := "v" + strconv.Itoa(i%2+1)
		writeVersion(t, dir, v, "")
		m, old, err := ms.Reload(ctx, journey.ReloadRequest{Name: "shop"})
		if err != nil || m.Version() != v || old == nil {
			t.Fatalf("reload %d: %v (version %v, replaced %v)", i, err, m, old)
		}
		time.Sleep(15 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for k, n := range seen {
		if k != "v1" && k != "v2" {
			t.Errorf("%d decisions: %s", n, k)
		}
	}
	if seen["v1"] == 0 || seen["v2"] == 0 {
		t.Errorf("decisions by version %v: want both versions to serve", seen)
	}
}

// TestReloadRefusesBadFiles: a file that does not load leaves the old version
// serving, and the error's kind and field say why.
func TestReloadRefusesBadFiles(t *testing.T) {
	ctx := context.Background()
	dir, ms, dec := reloadFixture(t)
	path := filepath.Join(dir, "shop.safetensors")
	for _, c := range []struct {
		name  string
		write func()
		force bool
		kind  experiment.Kind
		field string
		want  string // version serving afterwards
	}{
		{"truncated file", func() { os.WriteFile(path, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\""), 0o644) }, false, experiment.Invalid, path, "v1"},
		{"missing file", func() { os.Remove(path) }, false, experiment.NotFound, "", "v1"},
		{"another model's file", func() {
			m := testModel(t, 20, 8, 2)
			m.Meta.Name = "books"
			m.Save(ctx, path)
		}, false, experiment.Invalid, scorer.MetaName, "v1"},
		{"not deployable", func() { writeVersion(t, dir, "v2", "membership-inference AUC 0.9") }, false, experiment.Conflict, scorer.MetaNotDeployable, "v1"},
		{"not deployable, forced", func() { writeVersion(t, dir, "v3", "membership-inference AUC 0.9") }, true, 0, "", "v3"},
		{"good file", func() { writeVersion(t, dir, "v4", "") }, false, 0, "", "v4"},
	} {
		c.write()
		_, _, err := ms.Reload(ctx, journey.ReloadRequest{Name: "shop", Force: c.force})
		var e *experiment.Error
		switch {
		case c.kind == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.kind != 0 && (!asError(err, &e) || e.Kind != c.kind || (c.field != "" && string(e.Field) != c.field)):
			t.Errorf("%s: %v, want kind %v naming %q", c.name, err, c.kind, c.field)
		}
		d, err := dec.Decide(ctx, "home", journey.Request{Unit: "known-3", Context: journey.Context{ConsentTier: 2}})
		if err != nil || d.Policy != experiment.PolicyPersonalized || d.ModelVersion != c.want {
			t.Errorf("%s: decision %+v, %v; want personalized by %s", c.name, d, err, c.want)
		}
	}
	if _, _, err := ms.Reload(ctx, journey.ReloadRequest{Name: "nope"}); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("reload of a model without a file: %v, want not_found", err)
	}
}

// TestLoadModelsRefusesUndeployable: a model that failed its training gate is
// not served unless the server is told to.
func TestLoadModelsRefusesUndeployable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeVersion(t, dir, "v1", "membership-inference AUC 0.9")
	if _, err := journey.LoadModels(ctx, dir, journey.LoadOptions{}); experiment.KindOf(err) != experiment.Conflict {
		t.Fatalf("LoadModels: %v, want conflict", err)
	}
	ms, err := journey.LoadModels(ctx, dir, journey.LoadOptions{AllowUndeployable: true})
	if err != nil {
		t.Fatal(err)
	}
	ms.Close()
}

func asError(err error, e **experiment.Error) bool { return errors.As(err, e) }

// TestWatchReloads: a changed file is reloaded by the watch; a broken one is
// refused and the old version keeps serving.
func TestWatchReloads(t *testing.T) {
	dir, ms, _ := reloadFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ms.Watch(ctx, 5*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()
	waitFor := func(v string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if m, _ := ms.Get("shop"); m.Version() == v {
				return
			}
		}
		m, _ := ms.Get("shop")
		t.Fatalf("serving %s, want %s", m.Version(), v)
	}
	writeVersion(t, dir, "v2", "")
	waitFor("v2")
	if err := os.WriteFile(filepath.Join(dir, "shop.safetensors"), []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // ten polls
	if m, _ := ms.Get("shop"); m.Version() != "v2" {
		t.Errorf("after a broken file: serving %s, want v2", m.Version())
	}
	writeVersion(t, dir, "v3", "")
	waitFor("v3")
}

// TestReloadsAudited: every reload attempt, by the API's caller or by the watch,
// loaded or refused, is an audit entry of entity "model" saying who, the version
// serving before, the file's version and the result.
func TestReloadsAudited(t *testing.T) {
	ctx := context.Background()
	dir, ms, _, db := reloadFixtureDB(t)
	api := func(force bool) journey.ReloadRequest {
		return journey.ReloadRequest{Name: "shop", Force: force, Actor: "alice", Trigger: journey.TriggerAPI}
	}
	writeVersion(t, dir, "v2", "")
	if _, _, err := ms.Reload(ctx, api(false)); err != nil {
		t.Fatal(err)
	}
	writeVersion(t, dir, "v3", "membership-inference AUC 0.9")
	if _, _, err := ms.Reload(ctx, api(false)); experiment.KindOf(err) != experiment.Conflict {
		t.Fatalf("undeployable reload: %v, want conflict", err)
	}
	if _, _, err := ms.Reload(ctx, api(true)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ms.Watch(wctx, 5*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	writeVersion(t, dir, "v4", "")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m, _ := ms.Get("shop"); m.Version() == "v4" {
			break
		}
	}
	cancel()
	<-done
	es, err := db.Audit(ctx, "model", "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		action, actor, trigger, before, old, new, serving, result, code string
		force                                                           bool
	}{ // oldest first
		{journey.ActionModelReload, "alice", "api", `{"version":"v1"}`, "v1", "v2", "v2", "loaded", "", false},
		{journey.ActionModelReloadRefused, "alice", "api", `{"version":"v2"}`, "v2", "v3", "v2", "refused", "conflict", false},
		{journey.ActionModelReload, "alice", "api", `{"version":"v2"}`, "v2", "v3", "v3", "loaded", "", true},
		{journey.ActionModelReload, "system", "watch", `{"version":"v3"}`, "v3", "v4", "v4", "loaded", "", false},
	}
	if len(es) != len(want) {
		t.Fatalf("%d audit entries, want %d: %+v", len(es), len(want), es)
	}
	for k, w := range want {
		e := es[len(es)-1-k]
		var r journey.ReloadRecord
		if err := json.Unmarshal(e.After, &r); err != nil {
			t.Fatal(err)
		}
		if e.Action != w.action || e.Actor != w.actor || e.Entity != "model" || e.Key != "shop" || string(e.Before) != w.before || e.At.IsZero() ||
			r.Trigger != w.trigger || r.OldVersion != w.old || r.NewVersion != w.new || r.Serving != w.serving || r.Result != w.result ||
			r.Code != w.code || r.Force != w.force || r.File != filepath.Join(dir, "shop.safetensors") {
			t.Errorf("entry %d: %+v after %s; want %+v", k, e, e.After, w)
		}
		if w.code == "conflict" && (r.NotDeployable != "membership-inference AUC 0.9" || r.Error == "") {
			t.Errorf("entry %d: the refusal should carry the gate's verdict and the error: %+v", k, r)
		}
	}
}
