package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

func setupJourneyRegistry(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.CreateHoldout(ctx, "t", &experiment.Holdout{Name: "perm", Fraction: 0.1}); err != nil {
		t.Fatal(err)
	}
	e := abExperiment("feed")
	e.Metrics = nil
	e.Holdout = "perm"
	if _, err := db.CreateExperiment(ctx, "t", e); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "bare",
		Variants: []experiment.Variant{{Name: "a", Weight: 0.5}, {Name: "b", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
}

func fixedJourney(key, exp string) *experiment.Journey {
	return &experiment.Journey{Key: key, Experiment: exp, Model: "shop",
		ControlPolicy: experiment.ControlPolicy{Kind: experiment.ControlFixed, Items: []string{"a", "b"}}}
}

func TestCreateJourney(t *testing.T) {
	db, _ := openTest(t, newClock())
	ctx := context.Background()
	setupJourneyRegistry(t, db)
	bad := []struct {
		name  string
		edit  func(j *experiment.Journey)
		kind  experiment.Kind
		field string
	}{
		{"unknown experiment", func(j *experiment.Journey) { j.Experiment = "nope" }, experiment.Invalid, "experiment"},
		{"other holdout", func(j *experiment.Journey) { j.Holdout = "other" }, experiment.Invalid, "holdout"},
		{"holdout on an experiment without one", func(j *experiment.Journey) { j.Experiment, j.Holdout = "bare", "perm" }, experiment.Invalid, "holdout"},
		{"unknown control variant", func(j *experiment.Journey) { j.Control = "blue" }, experiment.Invalid, "control"},
		{"no control policy", func(j *experiment.Journey) { j.ControlPolicy = experiment.ControlPolicy{} }, experiment.Invalid, "control_policy.kind"},
		{"duplicate fixed item", func(j *experiment.Journey) { j.ControlPolicy.Items = []string{"a", "a"} }, experiment.Invalid, "control_policy.items[1]"},
		{"popular with items", func(j *experiment.Journey) { j.ControlPolicy.Kind = experiment.ControlPopular }, experiment.Invalid, "control_policy.items"},
		// thompson takes an epsilon since issue 19 (ε-greedy for established units), in [0, 1].
		{"thompson with epsilon above 1", func(j *experiment.Journey) { j.Exploration = experiment.Exploration{Kind: "thompson", Epsilon: 1.5} }, experiment.Invalid, "exploration.epsilon"},
		{"thompson with budget above 1", func(j *experiment.Journey) { j.Exploration = experiment.Exploration{Kind: "thompson", Budget: 2} }, experiment.Invalid, "exploration.budget"},
		{"no model", func(j *experiment.Journey) { j.Model = "" }, experiment.Invalid, "model"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			j := fixedJourney("home", "feed")
			tc.edit(j)
			_, err := db.CreateJourney(ctx, "t", j)
			var le *experiment.Error
			if !asError(err, &le) || experiment.KindOf(err) != tc.kind || string(le.Field) != tc.field {
				t.Fatalf("error %v, want kind %v naming field %q", err, tc.kind, tc.field)
			}
			if n := count(t, db, `SELECT count(*) FROM journeys`); n != 0 {
				t.Fatalf("%d journeys stored after an error", n)
			}
		})
	}
	j, err := db.CreateJourney(ctx, "ana", fixedJourney("home", "feed"))
	if err != nil {
		t.Fatal(err)
	}
	if j.Control != "control" || j.Holdout != "perm" || j.K != 10 || time.Duration(j.LatencyBudget) != 120*time.Millisecond ||
		j.Exploration.Epsilon != 0.05 || j.ConsentTier != 2 {
		t.Errorf("defaults: %+v", j)
	}
	if _, err := db.CreateJourney(ctx, "ana", fixedJourney("home", "feed")); experiment.KindOf(err) != experiment.Conflict {
		t.Errorf("duplicate: %v, want Conflict", err)
	}
	got, err := db.GetJourney(ctx, "home")
	if err != nil || got.Control != "control" || got.ControlPolicy.Items[1] != "b" {
		t.Fatalf("GetJourney: %+v %v", got, err)
	}
	if _, err := db.GetJourney(ctx, "nope"); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("GetJourney(nope): %v, want NotFound", err)
	}
	if n := count(t, db, `SELECT count(*) FROM audit WHERE entity = 'journey' AND key = 'home' AND actor = 'ana'`); n != 1 {
		t.Errorf("%d audit entries, want 1", n)
	}
}

func TestJourneyDaysAndLog(t *testing.T) {
	// A 1 ms group window, and none (a group is what queued during the last commit).
	for _, wait := range []time.Duration{time.Millisecond, -1} {
		t.Run("wait="+wait.String(), func(t *testing.T) { testJourneyDaysAndLog(t, wait) })
	}
}

func testJourneyDaysAndLog(t *testing.T, wait time.Duration) {
	c := newClock()
	db, _ := openTest(t, c)
	ctx := context.Background()
	setupJourneyRegistry(t, db)
	if _, err := db.CreateJourney(ctx, "t", fixedJourney("home", "feed")); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// Day 1: 100 decisions with latencies 1, 2, …, 100 ms; 10 fallback, 5
	// ineligible, 45 personalized; each shows item "a", and the personalized ones
	// also show "b". Day 2: 1 decision.
	log := db.NewDecisionLog(DecisionLogOptions{MaxWait: wait})
	var wg sync.WaitGroup
	errs := make(chan error, 101)
	for i := range 100 {
		policy := "control"
		switch {
		case i < 10:
			policy = "fallback"
		case i < 15:
			policy = "ineligible"
		case i < 60:
			policy = "personalized"
		}
		items := `[{"id":"a","score":1,"reason":"x"}]`
		if policy == "personalized" {
			items = `[{"id":"a","score":1,"reason":"x"},{"id":"b","score":0.5,"reason":"y"}]`
		}
		d := Decision{ID: fmt.Sprintf("d-%03d", i), TS: day.Add(time.Duration(i) * time.Minute), Journey: "home", Experiment: "feed",
			Unit: fmt.Sprintf("u%d", i), Policy: policy, Items: json.RawMessage(items), LatencyMS: float64(i + 1)}
		wg.Add(1)
		go func() { defer wg.Done(); errs <- log.Log(ctx, d) }()
	}
	wg.Wait()
	if err := log.Log(ctx, Decision{ID: "d-next", TS: day.Add(25 * time.Hour), Journey: "home", Experiment: "feed", Unit: "u", Policy: "control", LatencyMS: 3}); err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A repeated decision id is refused (the table's primary key).
	if err := log.Log(ctx, Decision{ID: "d-000", Journey: "home", Experiment: "feed", Unit: "u", Policy: "control"}); experiment.KindOf(err) != experiment.Conflict {
		t.Errorf("repeated id: %v, want Conflict", err)
	}
	// Enqueue returns before the commit; Flush waits for it.
	if err := log.Enqueue(ctx, Decision{ID: "d-async", TS: day.Add(30 * time.Hour), Journey: "home", Experiment: "feed", Unit: "u", Policy: "holdout", LatencyMS: 3}); err != nil {
		t.Fatal(err)
	}
	if err := log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM journey_decisions WHERE decision_id = 'd-async'`); n != 1 {
		t.Errorf("enqueued decision not stored after Flush")
	}
	if err := log.Enqueue(ctx, Decision{ID: "d-bad", Journey: "home", Experiment: "feed", Policy: "control"}); experiment.KindOf(err) != experiment.Invalid {
		t.Errorf("enqueue without a unit: %v, want Invalid", err)
	}
	log.Close()
	if err := log.Enqueue(ctx, Decision{ID: "d-late", Journey: "home", Experiment: "feed", Unit: "u", Policy: "control"}); experiment.KindOf(err) != experiment.Unavailable {
		t.Errorf("enqueue after Close: %v, want Unavailable", err)
	}
	if err := db.LogDecisions(ctx, []Decision{{ID: "x", Journey: "home", Experiment: "feed", Policy: "control"}}); err == nil || !strings.Contains(err.Error(), "decisions[0].unit") {
		t.Errorf("missing unit: %v, want an error naming decisions[0].unit", err)
	}

	days, err := db.JourneyDays(ctx, "home", day, day.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 2 || days[1].Decisions != 2 || days[1].Holdout != 1 {
		t.Fatalf("days %+v, want 2 with 2 decisions on the second", days)
	}
	d := days[0]
	if d.Decisions != 100 || d.Personalized != 45 || d.Fallback != 10 || d.Ineligible != 5 || d.Control != 40 {
		t.Errorf("counts %+v", d)
	}
	// fallback rate 10/(45+10); ineligible share 5/100.
	if math.Abs(d.FallbackRate-10.0/55) > 1e-12 || d.IneligibleShare != 0.05 {
		t.Errorf("rates %g %g", d.FallbackRate, d.IneligibleShare)
	}
	// Quantiles of 1..100 by linear interpolation (R: quantile(1:100, c(.5, .95, .99), type = 7)
	// = 50.50, 95.05, 99.01).
	for _, q := range []struct{ got, want float64 }{{d.LatencyP50, 50.5}, {d.LatencyP95, 95.05}, {d.LatencyP99, 99.01}} {
		if math.Abs(q.got-q.want) > 1e-9 {
			t.Errorf("latency quantile %g, want %g", q.got, q.want)
		}
	}
	// Items: "a" shown 100 times, "b" 45 times.
	if d.ItemsShown != 145 || d.DistinctItems != 2 || len(d.ItemCounts) != 2 || d.ItemCounts[0] != 100 || d.ItemCounts[1] != 45 {
		t.Errorf("items %d distinct %d counts %v", d.ItemsShown, d.DistinctItems, d.ItemCounts)
	}
	days[0].Gini = 0.25
	if err := db.SaveJourneyDays(ctx, days); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveJourneyDays(ctx, days); err != nil { // idempotent: replaces
		t.Fatal(err)
	}
	saved, err := db.SavedJourneyDays(ctx, "home", day, day.Add(48*time.Hour))
	if err != nil || len(saved) != 2 || saved[0].Gini != 0.25 || saved[0].LatencyP99 != d.LatencyP99 || saved[1].Decisions != 2 {
		t.Errorf("saved %+v, %v", saved, err)
	}
}

func TestPopularItemsAndItemEvents(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, c)
	ctx := context.Background()
	t0 := c.t.Add(-48 * time.Hour)
	var evs []experiment.Event
	add := func(id, unit, typ, item string, ts time.Time) {
		props := json.RawMessage(`{}`)
		if item != "" {
			props = json.RawMessage(`{"item":"` + item + `"}`)
		}
		evs = append(evs, experiment.Event{EventID: id, Unit: unit, Type: typ, TS: ts, Value: 1, Properties: props})
	}
	add("1", "u1", "view", "x", t0)
	evs[0].Properties = json.RawMessage(`{"item":"x","category":"books"}`)
	add("2", "u2", "view", "x", t0.Add(time.Hour))
	add("3", "u1", "view", "y", t0.Add(2*time.Hour))
	add("4", "u3", "view", "z", t0.Add(-10*24*time.Hour)) // too old for a 7-day window
	add("5", "u3", "buy", "y", t0)
	add("6", "u3", "view", "", t0) // no item
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	pop, err := db.PopularItems(ctx, "view", c.t.Add(-7*24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pop) != 2 || pop[0] != (ItemCount{"x", 2}) || pop[1] != (ItemCount{"y", 1}) {
		t.Errorf("popular %v, want [x:2 y:1]", pop)
	}
	var got []string
	n, err := db.ItemEvents(ctx, []string{"view"}, time.Time{}, time.Time{}, func(ev ItemEvent) error {
		got = append(got, ev.Unit+"/"+ev.Item+"/"+ev.Category)
		return nil
	})
	if err != nil || n != 4 || strings.Join(got, ",") != "u3/z/,u1/x/books,u2/x/,u1/y/" {
		t.Errorf("item events %v (%d, %v), want time order u3/z,u1/x (category books),u2/x,u1/y", got, n, err)
	}
}

// TestDecisionLogRepeatedIDFailsAlone: a group holding a decision whose id is
// already stored fails at COMMIT; the log then commits the group's decisions one
// by one, so only the repeated one is refused (Conflict) and its neighbours are
// stored. The long window makes the eight decisions one group.
func TestDecisionLogRepeatedIDFailsAlone(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	log := db.NewDecisionLog(DecisionLogOptions{MaxWait: time.Hour, MaxBatch: 8})
	defer log.Close()
	if err := log.Enqueue(ctx, Decision{ID: "d-old", Journey: "home", Experiment: "feed", Unit: "u", Policy: "control"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 8; i++ { // with d-old, eight decisions: the group is full and commits
		if err := log.Enqueue(ctx, Decision{ID: fmt.Sprintf("d-%d", i), Journey: "home", Experiment: "feed", Unit: "u", Policy: "control"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		id := fmt.Sprintf("n-%d", i)
		if i == 5 {
			id = "d-old"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = log.Log(ctx, Decision{ID: id, Journey: "home", Experiment: "feed", Unit: "u", Policy: "control"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == 5 {
			if experiment.KindOf(err) != experiment.Conflict {
				t.Errorf("repeated id: %v, want Conflict", err)
			}
		} else if err != nil {
			t.Errorf("decision n-%d: %v, want stored", i, err)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM journey_decisions WHERE decision_id LIKE 'n-%'`); n != 7 {
		t.Errorf("%d of the group's 7 good decisions stored, want 7", n)
	}
}

// TestSaveJourneyDaysConcurrent: roll-ups of the same days stored at once
// (the console's comparison computed in the background while the API's
// compare runs) all succeed, and the days hold one of the roll-ups, whole.
func TestSaveJourneyDaysConcurrent(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, c)
	ctx := context.Background()
	day := c.t.Truncate(24 * time.Hour)
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			days := []JourneyDay{
				{Journey: "home", Day: day.Add(-24 * time.Hour), Decisions: int64(10 + i), Personalized: int64(i)},
				{Journey: "home", Day: day, Decisions: int64(10 + i), Personalized: int64(i)},
			}
			for range 5 {
				if err := db.SaveJourneyDays(ctx, days); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	saved, err := db.SavedJourneyDays(ctx, "home", day.Add(-24*time.Hour), day.Add(24*time.Hour))
	if err != nil || len(saved) != 2 {
		t.Fatalf("saved %+v, %v; want the 2 days", saved, err)
	}
	for _, d := range saved {
		if d.Decisions != 10+d.Personalized {
			t.Errorf("day %v: decisions %d, personalized %d: not one writer's row", d.Day, d.Decisions, d.Personalized)
		}
	}
}
