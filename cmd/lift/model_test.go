package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
)

// writeInteractionStore writes a store file with views of users who each prefer
// one of 8 item groups (90% of their views), plus events that must be ignored.
func writeInteractionStore(t *testing.T, path string, users int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, path, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var evs []experiment.Event
	for u := range users {
		g := u % 8
		for v := range 10 {
			item := g + 8*rng.IntN(20)
			if rng.Float64() < 0.1 {
				item = rng.IntN(160)
			}
			evs = append(evs, experiment.Event{EventID: fmt.Sprintf("v%d-%d", u, v), Unit: fmt.Sprintf("user-%d", u), Type: "view",
				TS: t0.Add(time.Duration(v*1000+u) * time.Second), Value: 1, Properties: json.RawMessage(fmt.Sprintf(`{"item":"i%d"}`, item))})
		}
		evs = append(evs, experiment.Event{EventID: fmt.Sprintf("p%d", u), Unit: fmt.Sprintf("user-%d", u), Type: "purchase",
			TS: t0, Value: 20, Properties: json.RawMessage(`{"item":"not-a-view"}`)})
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
}

func TestModelTrainAndCard(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "lift.duckdb")
	writeInteractionStore(t, db, 400)
	out := filepath.Join(dir, "models")
	code, stdout, stderr := runLift(t, "model", "train", "--db", db, "--name", "shop", "--out", out, "--factors", "8", "--iters", "6", "--lambda", "5", "--alpha", "2", "--version", "v1")
	if code != 0 {
		t.Fatalf("train: %d\n%s\n%s", code, stdout, stderr)
	}
	t.Log(stdout)
	if !strings.Contains(stdout, "Training shop on 4000 interaction events (view)") {
		t.Errorf("train output: only the 4,000 views are interactions:\n%s", stdout)
	}
	m, err := scorer.Load(context.Background(), filepath.Join(out, "shop.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Dim != 8 || m.Meta.Name != "shop" || m.Meta.Version != "v1" || m.NUsers() != 400 {
		t.Errorf("model: dim %d meta %+v users %d", m.Dim, m.Meta, m.NUsers())
	}
	if _, ok := m.ItemIndex("not-a-view"); ok {
		t.Errorf("a purchase event's item was trained on")
	}
	card, err := scorer.LoadCard(context.Background(), filepath.Join(out, "shop.card.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Users view mostly within their group, so a model that learned the groups
	// must beat the most-popular baseline on held-out views.
	if card.Evaluation.Users == 0 || card.Evaluation.Recall <= card.Evaluation.BaselineRecall {
		t.Errorf("evaluation %+v: ALS should beat the popularity baseline on grouped data", card.Evaluation)
	}
	if _, err := os.Stat(filepath.Join(out, "shop.card.md")); err != nil {
		t.Error(err)
	}
	serveTrainedModel(t, db, out)
	code, stdout, _ = runLift(t, "model", "card", "--file", filepath.Join(out, "shop.safetensors"))
	if code != 0 || !strings.Contains(stdout, "pricing") {
		t.Errorf("card: %d\n%s", code, stdout)
	}
	code, stdout, _ = runLift(t, "model", "card", "--file", filepath.Join(out, "shop.safetensors"), "--format", "json")
	if code != 0 || !json.Valid([]byte(stdout)) {
		t.Errorf("card json: %d %s", code, stdout)
	}
}

func TestModelErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "lift.duckdb")
	writeInteractionStore(t, db, 10)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no db", []string{"model", "train", "--name", "x"}, "--db"},
		{"bad name", []string{"model", "train", "--db", db, "--name", "a b"}, "--name"},
		{"bad factors", []string{"model", "train", "--db", db, "--name", "x", "--factors", "0"}, "--factors"},
		{"no interactions", []string{"model", "train", "--db", db, "--name", "x", "--event-type", "click", "--out", dir}, `"item" property`},
		{"bad from", []string{"model", "train", "--db", db, "--name", "x", "--from", "yesterday"}, "--from"},
		{"missing card", []string{"model", "card", "--file", filepath.Join(dir, "none.safetensors")}, "--file"},
		{"unknown subcommand", []string{"model", "fit"}, "unknown subcommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runLift(t, tc.args...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want an error naming %q", code, stderr, tc.want)
			}
		})
	}
}

// serveTrainedModel loads the trained model the way "lift serve --models" does
// and decides for a known user and a new one folded in from recent items.
func serveTrainedModel(t *testing.T, dbPath, models string) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dbPath, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	logger := slog.New(slog.DiscardHandler)
	dec, closeJourneys, err := openJourneys(ctx, db, &journeyFlags{models: models, scorer: scorer.KindCPU}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeJourneys()
	if _, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "feed",
		Variants: []experiment.Variant{{Name: "control", Weight: 0}, {Name: "personalized", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.StartExperiment(ctx, "t", "feed"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateJourney(ctx, "t", &experiment.Journey{Key: "home", Experiment: "feed", Model: "shop", K: 5,
		Exploration:   experiment.Exploration{Kind: experiment.ExploreNone},
		ControlPolicy: experiment.ControlPolicy{Kind: experiment.ControlPopular}}); err != nil {
		t.Fatal(err)
	}
	for _, req := range []journey.Request{
		{Unit: "user-3", Context: journey.Context{ConsentTier: 2}},
		{Unit: "newcomer", Context: journey.Context{ConsentTier: 2, RecentItems: []string{"i3", "i11"}}},
	} {
		d, err := dec.Decide(ctx, "home", req)
		if err != nil {
			t.Fatal(err)
		}
		if d.Policy != experiment.PolicyPersonalized || len(d.Items) != 5 || d.ModelVersion != "v1" {
			t.Errorf("%s: decision %+v", req.Unit, d)
		}
	}
}
