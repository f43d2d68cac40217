package journey_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
)

// testModel is a seeded model of n items and users trained users, dimension d.
func testModel(t testing.TB, n, d, users int) *scorer.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	m := &scorer.Model{Dim: d, Meta: scorer.Metadata{Name: "shop", Version: "v7"}}
	for i := range n {
		m.ItemIDs = append(m.ItemIDs, "item-"+strconv.Itoa(i))
		for range d {
			m.Items = append(m.Items, float32(rng.NormFloat64()))
		}
	}
	for u := range users {
		m.UserIDs = append(m.UserIDs, "known-"+strconv.Itoa(u))
		for range d {
			m.Users = append(m.Users, float32(rng.NormFloat64()))
		}
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// slowScorer answers after delay (or when its context ends), or fails with err;
// without an inner scorer it never answers, only its context ends it (so that
// under load a late budget timer cannot find it "answered" with nothing).
type slowScorer struct {
	delay time.Duration
	err   error
	calls atomic.Int64
	inner scorer.Scorer
}

func (s *slowScorer) Score(ctx context.Context, q [][]float32, k int, ex [][]int32) ([][]scorer.Scored, error) {
	s.calls.Add(1)
	if s.err != nil {
		return nil, s.err
	}
	if s.inner == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.inner.Score(ctx, q, k, ex)
}
func (s *slowScorer) Name() string { return "slow" }
func (s *slowScorer) Close() error { return nil }

type fixture struct {
	db   *store.DB
	dec  *journey.Decider
	plan *assign.Plan
	m    *scorer.Model
	now  time.Time
}

// newFixture registers a 20% holdout, a running 50/50 experiment naming it, and a
// journey "home" over model "shop" served by s (nil: the real CPU scorer).
func newFixture(t *testing.T, s func(m *scorer.Model) scorer.Scorer, jr experiment.Journey, batch ...scorer.BatchOptions) *fixture {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	opt := store.DefaultOptions()
	opt.Now = func() time.Time { return now }
	opt.MaxClockSkew = -1 // fixtures lie ahead of the fixed clock (events days later)
	db, err := store.Open(ctx, "", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h, err := db.CreateHoldout(ctx, "t", &experiment.Holdout{Name: "perm", Fraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	// revenue per unit over the 14 days after exposure, CUPED-adjusted by the 14 days before.
	if _, err := db.CreateMetric(ctx, "t", &experiment.Metric{Name: "revenue", EventType: "purchase", Aggregation: experiment.Sum,
		Window: &experiment.Window{StartDays: 0, EndDays: 14}, Covariate: &experiment.Covariate{Days: 14}}); err != nil {
		t.Fatal(err)
	}
	e, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "home-exp", Holdout: "perm",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "personalized", Weight: 0.5}},
		Metrics:  []experiment.MetricRef{{Name: "revenue", Primary: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, err = db.StartExperiment(ctx, "t", e.Key); err != nil {
		t.Fatal(err)
	}
	plan, err := assign.Compile(e, h)
	if err != nil {
		t.Fatal(err)
	}
	m := testModel(t, 200, 8, 32)
	var sc scorer.Scorer
	if s != nil {
		sc = s(m)
	} else if sc, err = scorer.NewCPU(m, scorer.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	bopt := scorer.BatchOptions{MaxWait: time.Millisecond}
	if len(batch) > 0 {
		bopt = batch[0]
	}
	ms, err := journey.NewModels(bopt, &journey.Model{Name: "shop", Model: m, Scorer: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	jr.Key, jr.Experiment, jr.Model = "home", "home-exp", "shop"
	if jr.ControlPolicy.Kind == "" {
		jr.ControlPolicy = experiment.ControlPolicy{Kind: experiment.ControlFixed, Items: []string{"item-1", "item-2", "item-3"}}
	}
	if _, err := db.CreateJourney(ctx, "t", &jr); err != nil {
		t.Fatal(err)
	}
	var seq atomic.Int64 // deterministic decision ids, hence deterministic exploration draws
	dec := journey.New(db, ms, journey.Options{Now: func() time.Time { return now },
		NewID: func() string { return "dec-" + strconv.FormatInt(seq.Add(1), 10) }})
	t.Cleanup(func() { dec.Close() })
	return &fixture{db: db, dec: dec, plan: plan, m: m, now: now}
}

// unitWhere returns the first unit "u-N" whose assignment satisfies ok.
func (f *fixture) unitWhere(t *testing.T, ok func(a experiment.Assignment) bool) string {
	t.Helper()
	for i := range 10000 {
		u := "u-" + strconv.Itoa(i)
		if ok(f.plan.Assign(u)) {
			return u
		}
	}
	t.Fatal("no unit found")
	return ""
}

func inHoldout(a experiment.Assignment) bool { return a.Holdout != nil && a.Holdout.InHoldout }
func inVariant(v string) func(a experiment.Assignment) bool {
	return func(a experiment.Assignment) bool { return !inHoldout(a) && a.Variant != nil && *a.Variant == v }
}

// bruteTopK ranks every item by q·y_i (no bias in the test model), ties by index,
// leaving out exclude: the reference the scorer must match.
func bruteTopK(m *scorer.Model, q []float32, k int, exclude []int32) []string {
	type sc struct {
		i int
		s float32
	}
	var all []sc
	for i := range m.NItems() {
		if slices.Contains(exclude, int32(i)) {
			continue
		}
		var s float32
		for j, v := range m.Item(i) {
			s += v * q[j]
		}
		all = append(all, sc{i, s})
	}
	slices.SortStableFunc(all, func(a, b sc) int {
		if a.s != b.s {
			if a.s > b.s {
				return -1
			}
			return 1
		}
		return a.i - b.i
	})
	out := make([]string, 0, k)
	for _, x := range all[:k] {
		out = append(out, m.ItemIDs[x.i])
	}
	return out
}

// nearest is the reference explanation: the history item of highest cosine
// similarity with item target.
func nearest(m *scorer.Model, target string, history []string) string {
	ti, _ := m.ItemIndex(target)
	t := m.Item(int(ti))
	best, bestSim := "", math.Inf(-1)
	for _, h := range history {
		hi, _ := m.ItemIndex(h)
		y := m.Item(int(hi))
		var dot, a, b float64
		for j := range y {
			dot += float64(y[j]) * float64(t[j])
			a += float64(y[j]) * float64(y[j])
			b += float64(t[j]) * float64(t[j])
		}
		if s := dot / math.Sqrt(a*b); s > bestSim {
			best, bestSim = h, s
		}
	}
	return best
}

func TestDecidePolicies(t *testing.T) {
	recent := []string{"item-10", "item-20", "item-30"}
	fixedIDs := []string{"item-1", "item-2", "item-3"}
	cases := []struct {
		name      string
		scorer    func(m *scorer.Model) scorer.Scorer // nil: real CPU
		budget    time.Duration
		unit      func(a experiment.Assignment) bool
		unitID    string // instead of unit
		consent   int
		recent    []string
		policy    string
		why       string
		variant   string // "" = null
		exposed   bool   // an exposure is logged
		holdoutEx bool   // the exposure is a holdout exposure
	}{
		{name: "consent functional only", unit: inVariant("personalized"), consent: 1, recent: recent,
			policy: experiment.PolicyIneligible, why: "consent"},
		{name: "no consent sent", unit: inVariant("control"), consent: 0, recent: recent,
			policy: experiment.PolicyIneligible, why: "consent"},
		{name: "holdout", unit: inHoldout, consent: 2, recent: recent,
			policy: experiment.PolicyHoldout, exposed: true, holdoutEx: true},
		{name: "control arm", unit: inVariant("control"), consent: 2, recent: recent,
			policy: experiment.PolicyControl, variant: "control", exposed: true},
		{name: "treatment, folded in from recent items", unit: inVariant("personalized"), consent: 2, recent: recent,
			policy: experiment.PolicyPersonalized, variant: "personalized", exposed: true},
		{name: "treatment, slow scorer misses the budget", consent: 2, recent: recent, unit: inVariant("personalized"),
			scorer: func(m *scorer.Model) scorer.Scorer { return &slowScorer{delay: 300 * time.Millisecond} },
			budget: 20 * time.Millisecond,
			policy: experiment.PolicyFallback, why: "timeout", variant: "personalized", exposed: true},
		{name: "treatment, scorer fails", consent: 2, recent: recent, unit: inVariant("personalized"),
			scorer: func(m *scorer.Model) scorer.Scorer { return &slowScorer{err: errors.New("device lost")} },
			policy: experiment.PolicyFallback, why: "error", variant: "personalized", exposed: true},
		{name: "treatment, unknown unit without history", consent: 2, unit: inVariant("personalized"),
			policy: experiment.PolicyFallback, why: "no_history", variant: "personalized", exposed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jr := experiment.Journey{K: 5, LatencyBudget: experiment.Duration(tc.budget),
				Exploration: experiment.Exploration{Kind: experiment.ExploreNone}}
			f := newFixture(t, tc.scorer, jr)
			ctx := context.Background()
			unit := f.unitWhere(t, tc.unit)
			d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit,
				Context: journey.Context{RecentItems: tc.recent, ConsentTier: tc.consent}})
			if err != nil {
				t.Fatal(err)
			}
			if d.Policy != tc.policy || d.Why != tc.why {
				t.Fatalf("policy %q (why %q), want %q (why %q)", d.Policy, d.Why, tc.policy, tc.why)
			}
			gotVariant := ""
			if d.Variant != nil {
				gotVariant = *d.Variant
			}
			if gotVariant != tc.variant {
				t.Errorf("variant %q, want %q", gotVariant, tc.variant)
			}
			var ids []string
			for _, it := range d.Items {
				ids = append(ids, it.ID)
			}
			if tc.policy == experiment.PolicyPersonalized {
				q, folded, err := f.m.Query(unit, tc.recent)
				if err != nil || !folded {
					t.Fatalf("query: folded=%v err=%v", folded, err)
				}
				var hist []int32
				for _, r := range tc.recent {
					i, _ := f.m.ItemIndex(r)
					hist = append(hist, i)
				}
				if want := bruteTopK(f.m, q, 5, hist); !slices.Equal(ids, want) {
					t.Errorf("items %v, want the brute-force top 5 %v", ids, want)
				}
				for _, it := range d.Items {
					if want := "because you viewed " + nearest(f.m, it.ID, tc.recent); it.Reason != want {
						t.Errorf("item %s: reason %q, want %q", it.ID, it.Reason, want)
					}
				}
				if d.ModelVersion != "v7" {
					t.Errorf("model version %q, want v7", d.ModelVersion)
				}
			} else if !slices.Equal(ids, fixedIDs) {
				t.Errorf("items %v, want the fixed control list %v", ids, fixedIDs)
			}
			counts, err := f.db.ExposureCounts(ctx, "home-exp")
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, n := range counts {
				total += n
			}
			switch {
			case !tc.exposed && total != 0:
				t.Errorf("exposures %v, want none", counts)
			case tc.exposed && tc.holdoutEx && counts[""] != 1:
				t.Errorf("exposures %v, want one holdout exposure", counts)
			case tc.exposed && !tc.holdoutEx && counts[tc.variant] != 1:
				t.Errorf("exposures %v, want one in %q", counts, tc.variant)
			}
			if err := f.dec.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			var policy, items string
			if err := f.db.SQL().QueryRowContext(ctx, `SELECT policy, CAST(items AS VARCHAR) FROM journey_decisions WHERE decision_id = ?`, d.ID).Scan(&policy, &items); err != nil {
				t.Fatalf("decision row: %v", err)
			}
			if policy != tc.policy || items == "" || items == "[]" {
				t.Errorf("stored decision: policy %q items %s", policy, items)
			}
		})
	}
}

// knownUnitIn returns the first of the model's trained users whose assignment
// satisfies ok, computed with the experiment's plan.
func (f *fixture) knownUnitIn(t *testing.T, ok func(a experiment.Assignment) bool) string {
	t.Helper()
	for _, u := range f.m.UserIDs {
		if ok(f.plan.Assign(u)) {
			return u
		}
	}
	t.Fatalf("none of the model's %d users is assigned as wanted", len(f.m.UserIDs))
	return ""
}

// A unit the model knows is scored with its trained vector (no fold-in): with
// ε = 0 the list is the greedy top k of q·y_i; with ε = 1 every slot is
// explored, so each item is a catalog item outside the greedy top k, explained
// as exploration and scored with the same q.
func TestDecideKnownUnitAndExploration(t *testing.T) {
	for _, eps := range []float64{0, 1} {
		t.Run("epsilon="+strconv.FormatFloat(eps, 'g', -1, 64), func(t *testing.T) {
			f := newFixture(t, nil, experiment.Journey{K: 4, Exploration: experiment.Exploration{Kind: experiment.ExploreEpsilonGreedy, Epsilon: eps}})
			ctx := context.Background()
			unit := f.knownUnitIn(t, inVariant("personalized"))
			d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{ConsentTier: 2}})
			if err != nil {
				t.Fatal(err)
			}
			if d.Policy != experiment.PolicyPersonalized || len(d.Items) != 4 {
				t.Fatalf("decision %+v, want 4 personalized items", d)
			}
			q, folded, err := f.m.Query(unit, nil)
			if err != nil || folded {
				t.Fatalf("query %s: folded=%v err=%v; want the trained vector", unit, folded, err)
			}
			greedy := bruteTopK(f.m, q, 4, nil)
			seen := map[string]bool{}
			for i, it := range d.Items {
				idx, ok := f.m.ItemIndex(it.ID)
				if !ok || seen[it.ID] {
					t.Fatalf("item %d %q: unknown or repeated in %+v", i, it.ID, d.Items)
				}
				seen[it.ID] = true
				var s float32
				for j, v := range f.m.Item(int(idx)) {
					s += v * q[j]
				}
				if math.Abs(it.Score-float64(s)) > 1e-5*math.Max(1, math.Abs(float64(s))) {
					t.Errorf("item %s score %g, want q·y = %g with the unit's trained q", it.ID, it.Score, s)
				}
				switch {
				case eps == 0 && (it.ID != greedy[i] || it.Reason != "recommended for you"):
					t.Errorf("slot %d: %s (%q), want the greedy %s (\"recommended for you\")", i, it.ID, it.Reason, greedy[i])
				case eps == 1 && (slices.Contains(greedy, it.ID) || it.Reason != "something new to explore"):
					t.Errorf("slot %d: %s (%q), want an item outside the greedy top 4 %v explained as exploration", i, it.ID, it.Reason, greedy)
				}
			}
		})
	}
}

func TestDecideBadInput(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{})
	ctx := context.Background()
	cases := []struct {
		name string
		key  string
		req  journey.Request
		kind experiment.Kind
	}{
		{"unknown journey", "nope", journey.Request{Unit: "u"}, experiment.NotFound},
		{"empty unit", "home", journey.Request{}, experiment.Invalid},
		{"negative consent", "home", journey.Request{Unit: "u", Context: journey.Context{ConsentTier: -1}}, experiment.Invalid},
		{"too many recent items", "home", journey.Request{Unit: "u", Context: journey.Context{RecentItems: make([]string, journey.MaxRecentItems+1)}}, experiment.TooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.dec.Decide(ctx, tc.key, tc.req)
			if experiment.KindOf(err) != tc.kind {
				t.Fatalf("error %v (kind %v), want kind %v", err, experiment.KindOf(err), tc.kind)
			}
		})
	}
}

func TestThompsonExploration(t *testing.T) {
	// With thompson exploration and min_history 5, a unit with 1 recent item is
	// new: the last of its 5 slots (budget 0.2) is drawn by Thompson sampling
	// over the model's next items (a new draw per decision), the others are the
	// greedy top 4; a unit with 5 recent items is established and, with ε = 0,
	// ranked greedily (the same list each time).
	f := newFixture(t, nil, experiment.Journey{K: 5, Exploration: experiment.Exploration{Kind: experiment.ExploreThompson, MinHistory: 5}})
	ctx := context.Background()
	unit := f.unitWhere(t, inVariant("personalized"))
	lists := func(recent []string) (a, b []string) {
		for i := range 2 {
			d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{RecentItems: recent, ConsentTier: 2}})
			if err != nil || d.Policy != experiment.PolicyPersonalized {
				t.Fatalf("decision %+v, %v", d, err)
			}
			for _, it := range d.Items {
				if i == 0 {
					a = append(a, it.ID)
				} else {
					b = append(b, it.ID)
				}
			}
		}
		return a, b
	}
	a, b := lists([]string{"item-7"})
	if slices.Equal(a, b) {
		t.Errorf("short history: two decisions gave the same list %v; want two posterior draws", a)
	}
	q7, _, _ := f.m.Query(unit, []string{"item-7"})
	i7, _ := f.m.ItemIndex("item-7")
	if want := bruteTopK(f.m, q7, 20, []int32{i7}); !slices.Equal(a[:4], want[:4]) || !slices.Equal(b[:4], want[:4]) ||
		!slices.Contains(want[4:], a[4]) || !slices.Contains(want[4:], b[4]) {
		t.Errorf("short history: %v and %v, want the greedy top 4 %v and a fifth item from the model's ranks 5–20 %v", a, b, want[:4], want[4:])
	}
	long := []string{"item-7", "item-8", "item-9", "item-10", "item-11"}
	a, b = lists(long)
	if !slices.Equal(a, b) {
		t.Errorf("long history: lists %v and %v differ; want the greedy ranking", a, b)
	}
	q, _, _ := f.m.Query(unit, long)
	var hist []int32
	for _, r := range long {
		i, _ := f.m.ItemIndex(r)
		hist = append(hist, i)
	}
	if want := bruteTopK(f.m, q, 5, hist); !slices.Equal(a, want) {
		t.Errorf("long history: %v, want the brute-force top 5 %v", a, want)
	}
}

func TestDecideStoppedExperiment(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{})
	ctx := context.Background()
	if _, err := f.db.StopExperiment(ctx, "t", "home-exp"); err != nil {
		t.Fatal(err)
	}
	f.dec.Invalidate("home")
	d, err := f.dec.Decide(ctx, "home", journey.Request{Unit: f.unitWhere(t, inVariant("personalized")), Context: journey.Context{ConsentTier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Policy != experiment.PolicyIneligible || d.Why != "experiment_not_running" || d.Variant != nil || len(d.Items) != 3 {
		t.Errorf("decision %+v: want the control journey, ineligible because the experiment stopped", d)
	}
	if counts, _ := f.db.ExposureCounts(ctx, "home-exp"); len(counts) != 0 {
		t.Errorf("exposures %v after the experiment stopped", counts)
	}
}

func TestDecideOverload(t *testing.T) {
	// A scorer that takes 40 ms per batch of one: once a call has been timed, a
	// request that would queue behind five or more others cannot finish within the
	// 200 ms budget and falls back at once ("overload") instead of waiting it out.
	f := newFixture(t, func(m *scorer.Model) scorer.Scorer {
		cpu, err := scorer.NewCPU(m, scorer.Options{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		return &slowScorer{delay: 40 * time.Millisecond, inner: cpu}
	}, experiment.Journey{K: 3, LatencyBudget: experiment.Duration(200 * time.Millisecond), Exploration: experiment.Exploration{Kind: experiment.ExploreNone}},
		scorer.BatchOptions{MaxBatch: 1, MaxWait: time.Millisecond})
	ctx := context.Background()
	unit := f.unitWhere(t, inVariant("personalized"))
	req := journey.Request{Unit: unit, Context: journey.Context{RecentItems: []string{"item-3"}, ConsentTier: 2}}
	if d, err := f.dec.Decide(ctx, "home", req); err != nil || d.Policy != experiment.PolicyPersonalized {
		t.Fatalf("priming decision %+v, %v", d, err)
	}
	whys := make(chan string, 12)
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := f.dec.Decide(ctx, "home", req)
			if err != nil {
				t.Error(err)
				return
			}
			whys <- d.Policy + "/" + d.Why
		}()
	}
	wg.Wait()
	close(whys)
	got := map[string]int{}
	for w := range whys {
		got[w]++
	}
	if got["fallback/overload"] == 0 || got["personalized/"] == 0 {
		t.Errorf("outcomes %v: want some personalized and some overload fallbacks", got)
	}
}
