package store

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestItemRewards: each (unit, item) pair the journey showed is one trial,
// a success when the unit has a reward event on the item at or after the
// first time it was shown. The expected counts are worked out by hand below.
func TestItemRewards(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	db, _ := openTest(t, c)
	t0 := c.Now()
	dec := func(id, journey, unit string, at time.Duration, items ...string) Decision {
		var list []map[string]any
		for _, it := range items {
			list = append(list, map[string]any{"id": it, "score": 1, "reason": "r"})
		}
		b, _ := json.Marshal(list)
		return Decision{ID: id, TS: t0.Add(at), Journey: journey, Experiment: "feed", Unit: unit, Policy: "personalized", Items: b}
	}
	if err := db.LogDecisions(ctx, []Decision{
		dec("d1", "home", "u1", 0, "a", "b"),
		dec("d2", "home", "u1", time.Hour, "a"), // u1 saw a twice: one trial
		dec("d3", "home", "u2", 0, "a", "c"),
		dec("d4", "home", "u3", 2*time.Hour, "b"),
		dec("d5", "other", "u1", 0, "z"), // another journey
	}); err != nil {
		t.Fatal(err)
	}
	click := func(id, unit, item, typ string, at time.Duration) experiment.Event {
		p, _ := json.Marshal(map[string]string{"item": item})
		return experiment.Event{EventID: id, Unit: unit, Type: typ, TS: t0.Add(at), Value: 1, Properties: p}
	}
	if _, _, err := db.IngestEvents(ctx, []experiment.Event{
		click("e1", "u1", "a", "click", 30*time.Minute), // u1 on a after the first showing: success
		click("e2", "u1", "a", "click", 90*time.Minute), // the same pair again: still one success
		click("e3", "u2", "c", "view", time.Minute),     // not the reward event
		click("e4", "u3", "b", "click", time.Hour),      // before u3 was shown b: no success
		click("e5", "u2", "b", "click", 10*time.Minute), // u2 was never shown b
	}); err != nil {
		t.Fatal(err)
	}
	got, err := db.ItemRewards(ctx, "home", "click")
	if err != nil {
		t.Fatal(err)
	}
	// a: shown to u1, u2 (2 trials), clicked by u1 (1); b: u1, u3 (2), none
	// (u3 clicked before it was shown, u2 was never shown it); c: u2 (1), none.
	want := []ItemReward{{"a", 2, 1}, {"b", 2, 0}, {"c", 1, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("ItemRewards = %+v, want %+v", got, want)
	}
}
