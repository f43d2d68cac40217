package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/store"
)

// startJourneyServer trains a model with "lift model train" on a store of
// interactions, starts "lift serve --models" on it, and registers over HTTP a
// permanent holdout "perm", an experiment "feed" and a journey "home" (k = 5).
func startJourneyServer(t *testing.T) (*liftServer, string) {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lift.duckdb")
	models := filepath.Join(dir, "models")
	writeInteractionStore(t, dbPath, 400)
	if code, stdout, stderr := runLift(t, "model", "train", "--db", dbPath, "--name", "shop", "--out", models, "--factors", "8", "--iters", "4", "--lambda", "5", "--alpha", "2", "--version", "v1"); code != 0 {
		t.Fatalf("train: %d\n%s\n%s", code, stdout, stderr)
	}
	srv := startServe(t, buildLift(t), "--db", dbPath, "--models", models, "--scorer", "cpu")
	srv.mustCall(t, "POST", "/v1/holdouts", map[string]any{"name": "perm", "fraction": 0.1}, nil)
	srv.mustCall(t, "POST", "/v1/experiments", map[string]any{"key": "feed", "holdout": "perm",
		"variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "personalized", "weight": 0.5}}}, nil)
	srv.mustCall(t, "POST", "/v1/experiments/feed/start", nil, nil)
	srv.mustCall(t, "POST", "/v1/journeys", map[string]any{"key": "home", "experiment": "feed", "model": "shop", "k": 5,
		"latency_budget": "5s", "exploration": map[string]any{"kind": "none"},
		"control_policy": map[string]any{"kind": "fixed", "items": []string{"i1", "i2", "i3", "i4", "i5"}}}, nil)
	return srv, dbPath
}

// TestServeJourneysKill: every decision the server answered is in the file after the
// server is killed (SIGKILL, no shutdown) while decisions are in flight: the answer
// comes only after the decision row and the exposure are committed.
func TestServeJourneysKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	srv, dbPath := startJourneyServer(t)
	const clients = 8
	var (
		mu      sync.Mutex
		answers = map[string]string{} // decision id → unit
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				unit := fmt.Sprintf("c%d-u%d", c, i)
				var d journey.Decision
				code, err := srv.call("POST", "/v1/journeys/home/decide", e2eAdminKey, map[string]any{"unit": unit,
					"context": map[string]any{"consent_tier": 2}}, &d)
				if err != nil || code != 200 {
					return // the server is gone: this request was not answered
				}
				mu.Lock()
				answers[d.ID] = unit
				if len(answers) == 300 {
					// Kill the moment the 300th answer arrives, with other requests
					// in flight: nothing written after the answer can have happened.
					_ = srv.cmd.Process.Kill()
					close(stop)
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-stop:
	case <-time.After(60 * time.Second):
		t.Fatal("fewer than 300 decisions answered in 60 s")
	}
	wg.Wait()
	<-srv.done

	ctx := context.Background()
	db, err := store.Open(ctx, dbPath, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored := map[string]string{}
	rows, err := db.SQL().QueryContext(ctx, `SELECT decision_id, unit FROM journey_decisions WHERE journey = 'home'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, unit string
		if err := rows.Scan(&id, &unit); err != nil {
			t.Fatal(err)
		}
		stored[id] = unit
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	rows, err = db.SQL().QueryContext(ctx, `SELECT unit FROM exposures WHERE experiment = 'feed'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		exposed[u] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing, unexposed := 0, 0
	for id, unit := range answers {
		if stored[id] != unit {
			missing++
		}
		if !exposed[unit] {
			unexposed++
		}
	}
	if missing > 0 || unexposed > 0 {
		t.Fatalf("after SIGKILL, of %d answered decisions %d are missing from journey_decisions and %d units have no exposure", len(answers), missing, unexposed)
	}
	t.Logf("%d decisions answered before SIGKILL, all stored (%d rows in the file)", len(answers), len(stored))
}

// TestServeJourneys is the journey path as a growth team runs it: train a model
// with "lift model train", start "lift serve --models", register a holdout, an
// experiment and a journey over HTTP, decide for units, schedule a
// journey_comparison job and run it by hand, stop the server, and check that every
// decision and exposure is in the file and that the run's comparison counted them.
func TestServeJourneys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	srv, dbPath := startJourneyServer(t)

	const units = 200
	policies := map[string]int64{}
	for u := range units {
		var d journey.Decision
		srv.mustCall(t, "POST", "/v1/journeys/home/decide", map[string]any{"unit": fmt.Sprintf("user-%d", u),
			"context": map[string]any{"consent_tier": 2}}, &d)
		policies[d.Policy]++
		want := experiment.PolicyControl
		switch {
		case d.Variant == nil:
			want = experiment.PolicyHoldout
		case *d.Variant == "personalized":
			want = experiment.PolicyPersonalized
		}
		if d.Policy != want || len(d.Items) != 5 {
			t.Errorf("user-%d: policy %s with %d items, want %s with 5", u, d.Policy, len(d.Items), want)
		}
		if d.Policy == experiment.PolicyPersonalized && d.ModelVersion != "v1" {
			t.Errorf("user-%d: model version %q, want v1", u, d.ModelVersion)
		}
	}
	if policies[experiment.PolicyHoldout] == 0 || policies[experiment.PolicyPersonalized] == 0 || policies[experiment.PolicyControl] == 0 {
		t.Fatalf("policies %v: want every arm served", policies)
	}

	srv.mustCall(t, "POST", "/v1/jobs", map[string]any{"name": "weekly-journeys", "kind": "journey_comparison", "every": "168h", "target": "home"}, nil)
	var run experiment.JobRun
	srv.mustCall(t, "POST", "/v1/jobs/weekly-journeys/run", nil, &run)
	if run.Status != experiment.RunSucceeded {
		t.Fatalf("run %+v", run)
	}
	var out struct {
		Comparisons []journey.ScheduledComparison `json:"comparisons"`
	}
	if err := json.Unmarshal(run.Output, &out); err != nil || len(out.Comparisons) != 1 {
		t.Fatalf("run output %s: %v", run.Output, err)
	}
	s := out.Comparisons[0].Summary
	if s.Decisions != units || s.Personalized != policies[experiment.PolicyPersonalized] || s.Holdout != policies[experiment.PolicyHoldout] {
		t.Errorf("comparison summary %+v, want the %d decisions served %v", s, units, policies)
	}
	srv.stop(t)

	ctx := context.Background()
	db, err := store.Open(ctx, dbPath, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var decisions, exposed int64
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM journey_decisions WHERE journey = 'home'`).Scan(&decisions); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(DISTINCT unit) FROM exposures WHERE experiment = 'feed'`).Scan(&exposed); err != nil {
		t.Fatal(err)
	}
	if decisions != units || exposed != units {
		t.Errorf("stored %d decisions and %d exposed units, want %d each", decisions, exposed, units)
	}
}
