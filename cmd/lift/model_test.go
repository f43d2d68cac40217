package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
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
				TS: t0.Add(time.Duration(v*1000+u) * time.Second), Value: 1, Properties: json.RawMessage(fmt.Sprintf(`{"item":"i%d","category":"g%d"}`, item, item%8))})
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
	if c := m.CategoryOf("i11"); c != "g3" || len(m.ItemsIn("g3")) != 20 {
		t.Errorf("item i11 has category %q (want g3, from its events), g3 has %d items (want 20)", c, len(m.ItemsIn("g3")))
	}
	if m.NotDeployable() != "" {
		t.Errorf("a regularized model was marked not deployable: %s", m.NotDeployable())
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
	// The attack holds out round(0.2 × 400) = 80 users whole and keeps 320.
	if mi := card.Membership; mi == nil || !mi.Passed || mi.MaxAUC != 0.6 || mi.Members != 320 || mi.NonMembers != 80 {
		t.Errorf("membership inference %+v: want a passed gate at 0.6 over 320 member and 80 held-out users", mi)
	}
	// Users view their group's items only (90%), and each group is one category:
	// the categories' shares of the views and of the recommendations are near 1/8.
	if f := card.Fairness; f == nil || len(f.ByCategory) != 8 || len(f.BySegment) != 3 || len(card.Monitoring) == 0 || len(card.Decommission) == 0 {
		t.Errorf("card fairness %+v, monitoring %q, decommission %q", f, card.Monitoring, card.Decommission)
	} else {
		var exp, inter float64
		for _, r := range f.ByCategory {
			exp += r.ExposureShare
			inter += r.InteractionShare
			if r.Items != 20 || r.ExposureShare < 0.08 || r.ExposureShare > 0.17 {
				t.Errorf("category %+v: want 20 items and about 1/8 of the exposures", r)
			}
		}
		if math.Abs(exp-1) > 1e-9 || math.Abs(inter-1) > 1e-9 {
			t.Errorf("category shares sum to %g (exposures) and %g (interactions), want 1", exp, inter)
		}
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

// TestModelTrainGate: an overfitted model (64 factors, λ = 0.01, on 10 views per
// user) fails the membership-inference gate: the command fails naming the flag,
// the files are written with the model marked not deployable, and serving refuses
// it unless told to.
func TestModelTrainGate(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "lift.duckdb")
	writeInteractionStore(t, db, 400)
	out := filepath.Join(dir, "models")
	code, stdout, stderr := runLift(t, "model", "train", "--db", db, "--name", "shop", "--out", out, "--factors", "64", "--lambda", "0.01", "--iters", "6")
	if code == 0 || !strings.Contains(stderr, "--max-mia-auc") || !strings.Contains(stderr, "not deployable") {
		t.Fatalf("overfitted training: exit %d\n%s\n%s", code, stdout, stderr)
	}
	m, err := scorer.Load(context.Background(), filepath.Join(out, "shop.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	card, err := scorer.LoadCard(context.Background(), filepath.Join(out, "shop.card.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.NotDeployable() == "" || card.NotDeployable == "" || card.Membership.Passed || card.Membership.AUC <= 0.6 {
		t.Errorf("model %q, card %q %+v: want marked not deployable", m.NotDeployable(), card.NotDeployable, card.Membership)
	}
	sdb, err := store.Open(context.Background(), db, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	logger := slog.New(slog.DiscardHandler)
	if _, _, err := openJourneys(context.Background(), sdb, &journeyFlags{models: out, scorer: scorer.KindCPU}, logger); err == nil || !strings.Contains(err.Error(), "--allow-undeployable") {
		t.Errorf("serving an undeployable model: %v, want a refusal naming --allow-undeployable", err)
	}
	_, closeJourneys, err := openJourneys(context.Background(), sdb, &journeyFlags{models: out, scorer: scorer.KindCPU, allowUndeployable: true}, logger)
	if err != nil {
		t.Fatal(err)
	}
	closeJourneys()
	// The gate's threshold is a flag; 1 reports without gating.
	if code, _, stderr := runLift(t, "model", "train", "--db", db, "--name", "shop", "--out", out, "--factors", "64", "--lambda", "0.01", "--iters", "6", "--max-mia-auc", "1"); code != 0 {
		t.Errorf("--max-mia-auc 1: exit %d %s", code, stderr)
	}
	if m, _ := scorer.Load(context.Background(), filepath.Join(out, "shop.safetensors")); m == nil || m.NotDeployable() != "" {
		t.Errorf("with the gate at 1 the model is still marked not deployable")
	}
}

// TestModelTrainDP: --dp-epsilon trains with differential privacy and the card
// states the guarantee and the recall without noise.
func TestModelTrainDP(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "lift.duckdb")
	writeInteractionStore(t, db, 400)
	out := filepath.Join(dir, "models")
	code, stdout, stderr := runLift(t, "model", "train", "--db", db, "--name", "shop", "--out", out, "--factors", "8", "--iters", "4",
		"--lambda", "5", "--alpha", "2", "--dp-epsilon", "8", "--dp-delta", "1e-5", "--max-mia-auc", "1")
	if code != 0 || !strings.Contains(stdout, "differential privacy: (ε = 8, δ = 1e-05) per user") {
		t.Fatalf("train: %d\n%s\n%s", code, stdout, stderr)
	}
	card, err := scorer.LoadCard(context.Background(), filepath.Join(out, "shop.card.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p := card.Privacy; p == nil || p.Epsilon != 8 || p.Delta != 1e-5 || p.NonPrivateRecall <= 0 || card.Parameters["dp_max_items"] != 50 {
		t.Errorf("card privacy %+v, parameters %v", p, card.Parameters)
	}
	t.Log(stdout)
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
		{"negative epsilon", []string{"model", "train", "--db", db, "--name", "x", "--dp-epsilon", "-1"}, "--dp-epsilon"},
		{"bad delta", []string{"model", "train", "--db", db, "--name", "x", "--dp-epsilon", "1", "--dp-delta", "2"}, "--dp-delta"},
		{"gate at chance", []string{"model", "train", "--db", db, "--name", "x", "--max-mia-auc", "0.5"}, "--max-mia-auc"},
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
