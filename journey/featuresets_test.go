package journey_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
)

// TestDecideFeatureSets: a journey declares its own signals per tier (here tier
// 2 the stored history only, tier 3 the session and attributes but not the
// history), and the model's input is built from those only: the ranking is
// the brute-force ranking of the query the allowed signals make.
func TestDecideFeatureSets(t *testing.T) {
	fs := map[int][]string{2: {journey.SignalStoredHistory}, 3: {journey.SignalSessionItems, journey.SignalAttributes}}
	f := newFixture(t, nil, experiment.Journey{K: 5, ConsentTier: experiment.ConsentFunctional, FeatureSets: fs,
		Exploration: experiment.Exploration{Kind: experiment.ExploreNone}})
	ctx := context.Background()
	unit := ""
	for u := range f.m.NUsers() {
		if id := "known-" + strconv.Itoa(u); inVariant("personalized")(f.plan.Assign(id)) {
			unit = id
			break
		}
	}
	recent := []string{"item-3", "item-4"}
	hist := []int32{3, 4}
	ui, _ := f.m.UserIndex(unit)
	folded, _, err := f.m.Query("", recent)
	if err != nil {
		t.Fatal(err)
	}
	byVector, bySession := bruteTopK(f.m, f.m.User(int(ui)), 5, nil), bruteTopK(f.m, folded, 5, hist)
	for _, tc := range []struct {
		tier    int
		signals []string
		items   []string
		session []string // the provenance's session items
	}{
		{1, []string{"session_items"}, bySession, recent}, // tier 1 keeps the default
		{2, fs[2], byVector, []string{}},
		{3, fs[3], bySession, recent},
	} {
		d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{ConsentTier: tc.tier, RecentItems: recent}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range d.Items {
			got = append(got, it.ID)
		}
		if d.Policy != experiment.PolicyPersonalized || !slices.Equal(d.Consent.Signals, tc.signals) || !slices.Equal(got, tc.items) {
			t.Errorf("tier %d: %s, signals %v, items %v; want signals %v, items %v", tc.tier, d.Policy, d.Consent.Signals, got, tc.signals, tc.items)
		}
		rec, err := f.db.GetDecision(ctx, "home", d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var p journey.Provenance
		if err := json.Unmarshal(rec.Provenance, &p); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.SessionItems, tc.session) || !slices.Equal(p.Rules.FeatureSet, tc.signals) {
			t.Errorf("tier %d: provenance session items %v, feature set %v; want %v, %v", tc.tier, p.SessionItems, p.Rules.FeatureSet, tc.session, tc.signals)
		}
	}
}
