package journey_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
)

// TestThompsonLearnsFromClicks runs the journey's item bandit against the real
// scorer and store: new units (one known recent item, under min_history 3)
// get k = 4 items, the model's top 2 and 2 slots (budget 0.5) drawn by
// Thompson sampling from the model's ranks 3–16. One item of that pool, the
// model's 16th (picked 2 times in 14 by chance), is clicked 6 times in 10
// when shown; every other item 2 times in 100. Ten rounds of 40 decisions,
// the clicks ingested as events and the record read again after each: the
// target must fill a slot in at least 80% of the last round's decisions
// against at most 40% of the first's (expected 2/14 = 0.14). The store's
// per-item counts are checked against the decisions recounted here, and the
// provenance states the exploration of each stage. (The latency budget is
// 10s: the test is about learning, and a loaded machine must not turn it into
// fallbacks.)
func TestThompsonLearnsFromClicks(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{K: 4, LatencyBudget: experiment.Duration(10 * time.Second), Exploration: experiment.Exploration{
		Kind: experiment.ExploreThompson, MinHistory: 3, Budget: 0.5, Epsilon: 0.05}})
	ctx := context.Background()
	seed, _ := f.m.ItemIndex("item-5")
	q, _, err := f.m.Query("", []string{"item-5"})
	if err != nil {
		t.Fatal(err)
	}
	greedy := bruteTopK(f.m, q, 16, []int32{seed})
	target := greedy[15]
	var units []string
	for i := 0; len(units) < 400; i++ {
		u := "u-" + strconv.Itoa(i)
		if inVariant("personalized")(f.plan.Assign(u)) {
			units = append(units, u)
		}
	}
	rng := rand.New(rand.NewPCG(3, 5))
	const rounds, per = 10, 40
	shownTarget := map[string]bool{} // units shown the target, recounted here
	var share []float64
	var lastID string
	for r := range rounds {
		var events []experiment.Event
		hits := 0
		for _, u := range units[r*per : (r+1)*per] {
			d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: u, Context: journey.Context{RecentItems: []string{"item-5"}, ConsentTier: 2}})
			if err != nil {
				t.Fatal(err)
			}
			if d.Policy != experiment.PolicyPersonalized || len(d.Items) != 4 || d.Items[0].ID != greedy[0] || d.Items[1].ID != greedy[1] {
				t.Fatalf("decision %+v: want 4 personalized items starting with the greedy %v", d, greedy[:2])
			}
			lastID = d.ID
			for i, it := range d.Items[2:] {
				if !slices.Contains(greedy[2:], it.ID) || !(it.Reason == "something new to explore" || strings.HasPrefix(it.Reason, "exploring: clicked ")) {
					t.Fatalf("slot %d: %s (%q): want one of the model's ranks 3–16 explained as exploration", i+2, it.ID, it.Reason)
				}
				p := 0.02
				if it.ID == target {
					p = 0.6
					hits++
					shownTarget[u] = true
				}
				if rng.Float64() < p {
					props, _ := json.Marshal(map[string]string{"item": it.ID})
					events = append(events, experiment.Event{EventID: fmt.Sprintf("c-%s-%s", u, it.ID), Unit: u, Type: "click",
						TS: f.now.Add(time.Minute), Value: 1, Properties: props})
				}
			}
		}
		share = append(share, float64(hits)/per)
		if len(events) > 0 {
			if _, _, err := f.db.IngestEvents(ctx, events); err != nil {
				t.Fatal(err)
			}
		}
		f.dec.Invalidate("home") // read the click record again
	}
	t.Logf("share of decisions showing the target, per round: %v", share)
	if share[0] > 0.4 || share[rounds-1] < 0.8 {
		t.Errorf("target shown in %.2f of the first round's decisions and %.2f of the last's: want ≤ 0.4 then ≥ 0.8", share[0], share[rounds-1])
	}
	rw, err := f.db.ItemRewards(ctx, "home", "click")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range rw {
		if x.Item == target && x.Shown != int64(len(shownTarget)) {
			t.Errorf("store: target shown to %d units, recounted %d", x.Shown, len(shownTarget))
		}
	}

	prov := func(id string) journey.Provenance {
		rec, err := f.db.GetDecision(ctx, "home", id)
		if err != nil {
			t.Fatal(err)
		}
		var p journey.Provenance
		if err := json.Unmarshal(rec.Provenance, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := prov(lastID).Exploration; p.Applied != journey.ExploredThompson || p.Stage != journey.StageNew || !p.Thompson || p.ExploredSlots != 2 {
		t.Errorf("new unit's provenance %+v: want thompson, stage new, 2 slots", p)
	}
	// An established unit (3 known recent items) gets ε-greedy.
	d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: units[len(units)-1] + "-x", Context: journey.Context{
		RecentItems: []string{"item-5", "item-6", "item-7"}, ConsentTier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Policy == experiment.PolicyPersonalized {
		if p := prov(d.ID).Exploration; p.Applied != journey.ExploredEpsilon || p.Stage != journey.StageEstablished || p.Thompson {
			t.Errorf("established unit's provenance %+v: want epsilon_greedy, stage established", p)
		}
	}
}
