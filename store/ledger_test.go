package store

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/privacy/privacytest"
)

var _ privacy.LedgerStore = (*Ledger)(nil)

func TestLedgerSpendAndPersist(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	db, path := openTest(t, c)
	if _, err := db.CreateExperiment(ctx, "ann", abExperiment("checkout")); err != nil {
		t.Fatal(err)
	}
	l := privacy.NewLedger(db.Ledger())
	scope := privacy.ExperimentScope("checkout")
	if err := l.SetBudget(ctx, privacy.ExperimentScope("nope"), privacy.Budget{Epsilon: 1, ReleaseEpsilon: 0.1}, "ann"); !experiment.Is(err, experiment.NotFound) {
		t.Fatalf("budget of an unknown experiment: %v, want NotFound", err)
	}
	if err := l.Spend(ctx, scope, 0.1, 0, "ann", "results"); !experiment.Is(err, experiment.NotFound) {
		t.Fatalf("spend without a budget: %v, want NotFound", err)
	}
	if err := l.SetBudget(ctx, scope, privacy.Budget{Epsilon: 1, Delta: 1e-6, ReleaseEpsilon: 0.3}, "ann"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.Advance(time.Minute)
		if err := l.Spend(ctx, scope, 0.3, 1e-7, "viewer-key", "results"); err != nil {
			t.Fatalf("spend %d: %v", i, err)
		}
	}
	err := l.Spend(ctx, scope, 0.3, 0, "bob", "results")
	var le *experiment.Error
	const want = "privacy budget of experiment checkout exhausted: ε spent 0.9 of 1, this release needs 0.3"
	if !experiment.Is(err, experiment.BudgetExceeded) || !asError(err, &le) || le.Message() != want {
		t.Fatalf("overspend: %v, want %q", err, want)
	}
	if n := count(t, db, `SELECT count(*) FROM privacy_ledger`); n != 3 {
		t.Fatalf("ledger has %d rows after a refusal, want 3", n)
	}
	if n := count(t, db, `SELECT count(*) FROM audit WHERE entity = 'privacy' AND key = ?`, scope); n != 1 {
		t.Errorf("audit entries for the budget: %d, want 1", n)
	}
	db.Close()

	// Reopen: budget, spent and ledger are persisted.
	opt := DefaultOptions()
	opt.Now = c.Now
	db2, err := Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	a, err := privacy.NewLedger(db2.Ledger()).Account(ctx, scope, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Entries) != 2 || a.Entries[0].Who != "viewer-key" || !a.Entries[0].When.Equal(time.Date(2026, 3, 1, 9, 3, 0, 0, time.UTC)) {
		t.Errorf("entries = %+v, want the 2 newest, the last at 09:03", a.Entries)
	}
	if a.EpsilonSpent < 0.9-1e-12 || a.EpsilonSpent > 0.9+1e-12 || a.DeltaSpent < 3e-7-1e-18 || a.Budget.ReleaseEpsilon != 0.3 {
		t.Errorf("account = %+v, want ε spent 0.9, δ spent 3e-7", a)
	}
}

func TestLedgerConcurrentNoOverspend(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, nil)
	if _, err := db.CreateExperiment(ctx, "ann", abExperiment("race")); err != nil {
		t.Fatal(err)
	}
	privacytest.ConcurrentSpendCheck(t, db.Ledger())
}

// TestLedgerConcurrentRelease: 50 callers of one period make one release and one
// spend, and all get that release (privacytest.ConcurrentReleaseCheck).
func TestLedgerConcurrentRelease(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, nil)
	if _, err := db.CreateExperiment(ctx, "ann", abExperiment("race")); err != nil {
		t.Fatal(err)
	}
	privacytest.ConcurrentReleaseCheck(t, db.Ledger(), privacy.ExperimentScope("race"))
}

// TestLedgerSpendRelease: the spend and the saved release are one transaction. A
// release that cannot be saved (here a document that is not JSON, refused by the
// column after the spend statement ran) leaves neither a ledger entry nor a spent
// amount; a second release of the same period is refused as a conflict, spending
// nothing; the saved release survives a reopen.
func TestLedgerSpendRelease(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	db, path := openTest(t, c)
	if _, err := db.CreateExperiment(ctx, "ann", abExperiment("checkout")); err != nil {
		t.Fatal(err)
	}
	scope := privacy.ExperimentScope("checkout")
	l := db.Ledger()
	if err := privacy.NewLedger(l).SetBudget(ctx, scope, privacy.Budget{Epsilon: 1, ReleaseEpsilon: 0.3, ReleasePeriod: experiment.Duration(time.Hour)}, "ann"); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	r := &experiment.PrivacyRelease{Scope: scope, Subject: "results", PeriodStart: start, ReleasedAt: start.Add(5 * time.Minute), Doc: []byte(`{"epsilon": 0.3`)}
	if err := l.SpendRelease(ctx, r, 0.3, 0, "viewer"); err == nil {
		t.Fatal("a release whose document cannot be saved was accepted")
	}
	if n := count(t, db, `SELECT count(*) FROM privacy_ledger`); n != 0 {
		t.Fatalf("a failed save left %d ledger entries", n)
	}
	if a, _ := l.Account(ctx, scope, 0); a.EpsilonSpent != 0 {
		t.Fatalf("a failed save spent %g", a.EpsilonSpent)
	}
	r.Doc = []byte(`{"epsilon": 0.3}`)
	if err := l.SpendRelease(ctx, r, 0.3, 0, "viewer"); err != nil {
		t.Fatal(err)
	}
	if err := l.SpendRelease(ctx, r, 0.3, 0, "other"); !experiment.Is(err, experiment.Conflict) {
		t.Fatalf("second release of the period: %v, want Conflict", err)
	}
	if _, err := l.PeriodRelease(ctx, scope, "results", start.Add(time.Hour)); !experiment.Is(err, experiment.NotFound) {
		t.Fatalf("release of the next period: %v, want NotFound", err)
	}
	db.Close()
	opt := DefaultOptions()
	opt.Now = c.Now
	db2, err := Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got, err := db2.Ledger().PeriodRelease(ctx, scope, "results", start)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ReleasedAt.Equal(r.ReleasedAt) || string(got.Doc) != `{"epsilon": 0.3}` && string(got.Doc) != `{"epsilon":0.3}` {
		t.Errorf("stored release %+v %s", got, got.Doc)
	}
	a, err := db2.Ledger().Account(ctx, scope, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Entries) != 1 || a.EpsilonSpent != 0.3 || a.Entries[0].What != "results" || a.Budget.ReleasePeriod != experiment.Duration(time.Hour) {
		t.Errorf("account after reopen: %+v, want one spend of 0.3 and the hourly period", a)
	}
	// Waiting for a held release lock ends with the context.
	unlock, err := db2.Ledger().Exclusive(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := db2.Ledger().Exclusive(short, scope); !experiment.Is(err, experiment.Unavailable) {
		t.Errorf("waiting on a held lock: %v, want Unavailable when the context ends", err)
	}
	unlock()
}

// TestBoundedStats checks the clamped statistics two ways: with bounds wide enough
// to clamp nothing they must equal MetricStats (the results' own query) for metrics
// without caps; with tight bounds they must equal a unit-by-unit computation in Go.
func TestBoundedStats(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, nil)
	s := genSynth(rand.New(rand.NewPCG(1, 2)), "bounded", 600, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	ms := []*experiment.Metric{
		{Name: "b_orders", EventType: "purchase", Aggregation: experiment.Count, Bounds: &experiment.Bounds{Lower: 0, Upper: 1e9}},
		{Name: "b_revenue", EventType: "purchase", Aggregation: experiment.Sum, Window: &experiment.Window{EndDays: 7}, Bounds: &experiment.Bounds{Lower: 0, Upper: 1e9}},
		{Name: "b_converted", EventType: "purchase", Aggregation: experiment.Binary, Window: &experiment.Window{StartDays: 0.5, EndDays: 3}},
		{Name: "b_aov", EventType: "purchase", Aggregation: experiment.Mean, Bounds: &experiment.Bounds{Lower: -1e9, Upper: 1e9}},
		{Name: "b_orders_tight", EventType: "purchase", Aggregation: experiment.Count, Bounds: &experiment.Bounds{Lower: 1, Upper: 2}},
	}
	e := loadSynth(t, db, "bounded", s, ms)
	pop := ExperimentPopulation(e)
	names := []string{"b_orders", "b_revenue", "b_converted", "b_aov", "b_orders_tight"}
	got, err := db.BoundedStats(ctx, pop, names)
	if err != nil {
		t.Fatal(err)
	}
	// Without any metric the units per arm are counted all the same (issue 13, item 1).
	none, err := db.BoundedStats(ctx, pop, nil)
	if err != nil {
		t.Fatal(err)
	}
	for arm, n := range got.Units {
		if n == 0 || none.Units[arm] != n {
			t.Errorf("units of %s without metrics: %d, with metrics %d; want the same, not 0", arm, none.Units[arm], n)
		}
	}
	ref, err := db.MetricStats(ctx, pop, names[:4])
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names[:4] {
		for j, a := range got.Metrics[i].Arms {
			r := unshift(ref.Metrics[n][j]) // MetricStats sums are shifted
			if a.N != r.N || math.Abs(a.Sum-r.Sum) > 1e-6*(1+math.Abs(r.Sum)) || math.Abs(a.SumSq-r.SumSquares) > 1e-6*(1+r.SumSquares) {
				t.Errorf("%s %s: bounded %+v, MetricStats n=%d Σ=%g Σ²=%g", n, a.Arm, a, r.N, r.Sum, r.SumSquares)
			}
		}
		if got.Metrics[i].OwnCount != (n == "b_aov") {
			t.Errorf("%s: own count %v", n, got.Metrics[i].OwnCount)
		}
	}
	for a, u := range ref.Units {
		if got.Units[a] != u {
			t.Errorf("units of %s: %d, want %d", a, got.Units[a], u)
		}
	}
	// Unit by unit: purchases after the first exposure, clamped to [1, 2].
	arm, first, multi := map[string]string{}, map[string]time.Time{}, map[string]bool{}
	for _, x := range s.exposures {
		if a, ok := arm[x.Unit]; ok && a != x.Variant {
			multi[x.Unit] = true
		}
		if f, ok := first[x.Unit]; !ok || x.TS.Before(f) {
			first[x.Unit] = x.TS
		}
		arm[x.Unit] = x.Variant
	}
	orders := map[string]float64{}
	for _, ev := range s.events {
		if f, ok := first[ev.Unit]; ok && ev.Type == "purchase" && !ev.TS.Before(f) {
			orders[ev.Unit]++
		}
	}
	want := map[string][3]float64{}
	for u, a := range arm {
		if multi[u] {
			continue
		}
		v := min(max(orders[u], 1), 2)
		w := want[a]
		want[a] = [3]float64{w[0] + 1, w[1] + v, w[2] + v*v}
	}
	for _, a := range got.Metrics[4].Arms {
		w := want[a.Arm]
		if float64(a.N) != w[0] || math.Abs(a.Sum-w[1]) > 1e-9 || math.Abs(a.SumSq-w[2]) > 1e-9 {
			t.Errorf("clamped orders %s: %+v, want n=%g Σ=%g Σ²=%g", a.Arm, a, w[0], w[1], w[2])
		}
	}
	// No bounds, ratio: refused naming the metric.
	if _, err := db.CreateMetric(ctx, "test", &experiment.Metric{Name: "nobounds", EventType: "purchase", Aggregation: experiment.Sum}); err != nil {
		t.Fatal(err)
	}
	_, err = db.BoundedStats(ctx, pop, []string{"b_orders", "nobounds"})
	if !experiment.Is(err, experiment.Invalid) || !strings.Contains(err.Error(), "metrics[1]") {
		t.Errorf("metric without bounds: %v", err)
	}
}
