package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

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
	if err := demoJourney(ctx, e, db, journeyDemo{ModelDir: t.TempDir()}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"model", "journey     home", "gate        membership-inference attack AUC", "deployable true", "decisions", "guardrails", "personalized vs control", "exposed vs permanent holdout", "withdrawn to tier 1", "left under the id: 0 exposures, 0 events, 0 decisions"} {
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
			if err := demoJourney(ctx, e, db, journeyDemo{ModelDir: t.TempDir(), Exploration: tc.x}); err != nil {
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

// TestDemoBandit runs the bandit stage: one weight version per period after
// the declared one, every exposed unit in the cohort of its first version
// (none unentered), the arm with the highest true rate (number, 0.07 against
// 0.04 and 0.05) holding the largest final weight and a positive effect
// against plain, and the weights at the floor or above.
func TestDemoBandit(t *testing.T) {
	ctx := context.Background()
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
	var out bytes.Buffer
	st, err := demoBandit(ctx, &out, db, banditDemo{Holdout: "global", Start: start, Seed: 7, Clock: clock})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	if len(st.Versions) != 7 || st.Unentered != 0 || len(st.Effects) != 2 {
		t.Fatalf("%d versions, %d unentered, effects %+v: want 7 versions (declared + 6 periods), none unentered, 2 effects", len(st.Versions), st.Unentered, st.Effects)
	}
	w := st.Versions[6].Weights
	for i, x := range w {
		if x < 0.05-1e-12 {
			t.Errorf("arm %d weight %v under the 0.05 floor", i, x)
		}
	}
	if !(w[2] > w[0] && w[2] > w[1]) || st.Effects[1].Variant != "number" || !(st.Effects[1].Estimate > 0) {
		t.Errorf("final weights %v, effects %+v: want arm number ahead with a positive effect", w, st.Effects)
	}
	var n float64
	for _, c := range st.Cohorts {
		for _, a := range c.Arms {
			n += a.N
		}
	}
	counts, err := db.ExposureCounts(ctx, "headline")
	if err != nil {
		t.Fatal(err)
	}
	if exposed := counts["plain"] + counts["question"] + counts["number"]; n != float64(exposed) || exposed+counts[""] != 6*1500 || counts[""] == 0 {
		t.Errorf("cohorts hold %v units; exposures %v: want the cohorts to hold every unit exposed to an arm, the holdout's outside", n, counts)
	}
}
