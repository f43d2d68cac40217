package journey_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/scorer"
)

// TestDecideStoredConsent: the stored consent decides when the request states
// none, and wins when stricter; a withdrawal changes the very next decision (tier
// 1: the model sees the session's items only, its stored vector no more; tier 0:
// ineligible) and purges the unit's item history; an erased unit's trained vector
// is never used again by a model trained before the erasure.
func TestDecideStoredConsent(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{K: 5, ConsentTier: experiment.ConsentFunctional, Exploration: experiment.Exploration{Kind: experiment.ExploreNone}})
	ctx := context.Background()
	unit := ""
	for u := range f.m.NUsers() {
		if id := "known-" + strconv.Itoa(u); inVariant("personalized")(f.plan.Assign(id)) {
			unit = id
			break
		}
	}
	if unit == "" {
		t.Fatal("no known unit in the personalized variant")
	}
	if _, _, err := f.db.IngestEvents(ctx, []experiment.Event{{EventID: "e1", Unit: unit, Type: "view", TS: f.now, Value: 1, Properties: json.RawMessage(`{"item": "item-9"}`)}}); err != nil {
		t.Fatal(err)
	}
	recent := []string{"item-3", "item-4"}
	hist := []int32{3, 4}
	ui, _ := f.m.UserIndex(unit)
	byVector := bruteTopK(f.m, f.m.User(int(ui)), 5, hist)
	folded, _, err := f.m.Query("", recent)
	if err != nil {
		t.Fatal(err)
	}
	bySession := bruteTopK(f.m, folded, 5, hist)
	if reflect.DeepEqual(byVector, bySession) {
		t.Fatal("the test needs the two rankings to differ")
	}
	record := func(tier int, purposes ...string) {
		t.Helper()
		if _, err := f.db.RecordConsent(ctx, "t", experiment.Consent{Unit: unit, Tier: tier, Purposes: purposes, PolicyID: "privacy", PolicyVersion: "v3"}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(d *journey.Decision) []string {
		var out []string
		for _, it := range d.Items {
			out = append(out, it.ID)
		}
		return out
	}
	both := []string{journey.SignalSessionItems, journey.SignalStoredHistory}
	session := []string{journey.SignalSessionItems}
	steps := []struct {
		name    string
		record  func()
		inline  int
		policy  string
		why     string
		tier    int
		source  string
		signals []string
		items   []string // nil: the control list
	}{
		{"no consent anywhere", func() {}, 0, experiment.PolicyIneligible, "consent", 0, "none", []string{}, nil},
		{"stored tier 2, none in the request", func() { record(2, "personalization") }, 0, experiment.PolicyPersonalized, "", 2, "stored", both, byVector},
		{"request tier 3, stored 2: stored wins", func() {}, 3, experiment.PolicyPersonalized, "", 2, "stored", both, byVector},
		{"request tier 1, stricter than stored", func() {}, 1, experiment.PolicyPersonalized, "", 1, "request", session, bySession},
		{"withdrawn to tier 1", func() { record(1) }, 2, experiment.PolicyPersonalized, "", 1, "stored", session, bySession},
		{"withdrawn to tier 0", func() { record(0) }, 2, experiment.PolicyIneligible, "consent", 0, "stored", []string{}, nil},
	}
	for _, s := range steps {
		s.record()
		d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{RecentItems: recent, ConsentTier: s.inline}})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := s.items
		if want == nil {
			want = []string{"item-1", "item-2", "item-3"}
		}
		if d.Policy != s.policy || d.Why != s.why || d.Consent.Tier != s.tier || d.Consent.Source != s.source ||
			!slices.Equal(d.Consent.Signals, s.signals) || !slices.Equal(ids(d), want) {
			t.Errorf("%s: policy %s/%s, consent %+v, items %v; want %s/%s, tier %d from %s, signals %v, items %v",
				s.name, d.Policy, d.Why, d.Consent, ids(d), s.policy, s.why, s.tier, s.source, s.signals, want)
		}
	}
	// The withdrawal below tier 2 purged the stored history.
	data, err := f.db.ExportUnit(ctx, unit)
	if err != nil {
		t.Fatal(err)
	}
	if len(data.Events) != 1 || string(data.Events[0].Properties) != "{}" || data.ResetAt == nil {
		t.Errorf("after withdrawal: events %+v, reset at %v; want the event without its item, and a reset", data.Events, data.ResetAt)
	}

	// Erased, the unit comes back with full consent: the model, trained before
	// the erasure, serves it from the session only.
	f.m.Meta.Created = f.now.Add(-24 * time.Hour)
	if _, err := f.db.EraseUnit(ctx, "t", unit); err != nil {
		t.Fatal(err)
	}
	record(2, "personalization")
	d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{RecentItems: recent}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Consent.Signals, session) || !slices.Equal(ids(d), bySession) {
		t.Errorf("after erasure: signals %v, items %v; want %v, %v", d.Consent.Signals, ids(d), session, bySession)
	}
	// A model trained after the erasure may use its (new) vector.
	f.m.Meta.Created = f.now.Add(time.Hour)
	if d, err = f.dec.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{RecentItems: recent}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Consent.Signals, both) {
		t.Errorf("model trained after the erasure: signals %v, want %v", d.Consent.Signals, both)
	}
}

// TestDecideOptOutCategories: no item of a category the unit opted out of is
// shown, in the model's ranking (the next best items take their places) or in
// the control list.
func TestDecideOptOutCategories(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{K: 5, Exploration: experiment.Exploration{Kind: experiment.ExploreNone}})
	ctx := context.Background()
	unit := ""
	for u := range f.m.NUsers() {
		if id := "known-" + strconv.Itoa(u); inVariant("personalized")(f.plan.Assign(id)) {
			unit = id
			break
		}
	}
	ui, _ := f.m.UserIndex(unit)
	top := bruteTopK(f.m, f.m.User(int(ui)), 5, nil)
	// Two of its top five and one control item are "health".
	f.m.Meta.Extra = map[string]string{scorer.MetaItemCategories: `{"` + top[0] + `": "health", "` + top[3] + `": "health", "item-2": "health", "item-7": "books"}`}
	var health []int32
	for _, id := range []string{top[0], top[3], "item-2"} {
		i, _ := f.m.ItemIndex(id)
		health = append(health, i)
	}
	want := bruteTopK(f.m, f.m.User(int(ui)), 5, health)
	for _, tc := range []struct {
		tier  int
		items []string
	}{{2, want}, {0, []string{"item-1", "item-3"}}} {
		if _, err := f.db.RecordConsent(ctx, "t", experiment.Consent{Unit: unit, Tier: tc.tier, Purposes: []string{"personalization"},
			OptOutCategories: []string{"health"}, PolicyID: "privacy", PolicyVersion: "v3"}); err != nil {
			t.Fatal(err)
		}
		d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range d.Items {
			got = append(got, it.ID)
		}
		if !slices.Equal(got, tc.items) || !slices.Equal(d.Consent.OptOutCategories, []string{"health"}) {
			t.Errorf("tier %d: %s items %v, opt-outs %v; want %v", tc.tier, d.Policy, got, d.Consent.OptOutCategories, tc.items)
		}
	}
}
