package privacy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

func TestMemoryLedger(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := NewLedger(NewMemoryLedger(func() time.Time { return clock }))
	scope := ExperimentScope("checkout")
	if err := l.Spend(ctx, scope, 0.1, 0, "ann", "results"); !experiment.Is(err, experiment.NotFound) {
		t.Fatalf("spend without budget: %v, want NotFound", err)
	}
	if err := l.SetBudget(ctx, scope, Budget{Epsilon: 1, Delta: 1e-6, ReleaseEpsilon: 0.2}, "admin"); err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		if err := l.Spend(ctx, scope, 0.1, 0, "ann", fmt.Sprintf("results #%d", i)); err != nil {
			t.Fatalf("spend %d: %v", i, err)
		}
	}
	err := l.Spend(ctx, scope, 0.2, 0, "bob", "results")
	const want = "privacy budget of experiment checkout exhausted: ε spent 0.9 of 1, this release needs 0.2"
	var le *experiment.Error
	if !experiment.Is(err, experiment.BudgetExceeded) || !errors.As(err, &le) || le.Message() != want {
		t.Fatalf("overspend: %v, want BudgetExceeded %q", err, want)
	}
	// The tenth 0.1 fills the budget exactly (floating-point sums are within Slack).
	if err := l.Spend(ctx, scope, 0.1, 0, "ann", "results #9"); err != nil {
		t.Fatalf("last spend: %v", err)
	}
	a, err := l.Account(ctx, scope, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Entries) != 3 || a.Entries[0].What != "results #9" || !a.Entries[0].When.Equal(clock) || a.EpsilonLeft > 1e-9 {
		t.Errorf("account = %+v", a)
	}
	near(t, "ε spent", a.EpsilonSpent, 1, 1e-9)
	// δ runs out too.
	h := HoldoutScope("global")
	if err := l.SetBudget(ctx, h, Budget{Epsilon: 10, Delta: 1e-6, ReleaseEpsilon: 1}, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := l.Spend(ctx, h, 1, 8e-7, "ann", "digest"); err != nil {
		t.Fatal(err)
	}
	err = l.Spend(ctx, h, 1, 8e-7, "ann", "digest")
	if !experiment.Is(err, experiment.BudgetExceeded) || !strings.Contains(err.Error(), "holdout global exhausted: δ spent 8e-07 of 1e-06") {
		t.Fatalf("δ overspend: %v", err)
	}
}

func TestLedgerInvalid(t *testing.T) {
	ctx := context.Background()
	l := NewLedger(NewMemoryLedger(nil))
	cases := []struct {
		scope string
		b     Budget
		field string
	}{
		{"checkout", Budget{Epsilon: 1, ReleaseEpsilon: 0.1}, "scope"},
		{"experiment:checkout", Budget{Epsilon: 0, ReleaseEpsilon: 0.1}, "epsilon"},
		{"experiment:checkout", Budget{Epsilon: 1, ReleaseEpsilon: 2}, "release_epsilon"},
		{"experiment:checkout", Budget{Epsilon: 1, Delta: 1, ReleaseEpsilon: 0.1}, "delta"},
	}
	for _, c := range cases {
		err := l.SetBudget(ctx, c.scope, c.b, "admin")
		var le *experiment.Error
		if !experiment.Is(err, experiment.Invalid) || !errors.As(err, &le) || le.Field != c.field {
			t.Errorf("SetBudget(%q, %+v) = %v, want Invalid on %s", c.scope, c.b, err, c.field)
		}
	}
}

// TestScheduledRelease: a period's release is made once and served to every later
// reader of the period, whatever the data; the next period makes a new one; a
// failing release spends nothing, and neither does a failure after the spend.
func TestScheduledRelease(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryLedger(nil)
	l := NewLedger(m)
	scope := ExperimentScope("checkout")
	if err := l.SetBudget(ctx, scope, Budget{Epsilon: 1, ReleaseEpsilon: 0.4, ReleasePeriod: experiment.Duration(time.Hour)}, "admin"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC)
	release := func(now time.Time, in *Input) (*Scheduled, error) {
		return l.Release(ctx, scope, "results", now, Laplace, "ann", func(p Params) (*Release, error) {
			return NewRelease(in, p, Options{Noise: zeroNoise{}})
		})
	}
	bad := smallInput()
	bad.Control = "nobody"
	if _, err := release(t0, bad); !experiment.Is(err, experiment.Invalid) {
		t.Fatalf("bad input: %v, want Invalid", err)
	}
	m.FailSave = experiment.E(experiment.Internal, experiment.Errorf("disk full"))
	if _, err := release(t0, smallInput()); !experiment.Is(err, experiment.Internal) {
		t.Fatalf("failing save: %v, want Internal", err)
	}
	m.FailSave = nil
	if a, _ := l.Account(ctx, scope, 0); a.EpsilonSpent != 0 || len(a.Entries) != 0 {
		t.Fatalf("after failures: %+v, want nothing spent", a)
	}
	first, err := release(t0, smallInput())
	if err != nil {
		t.Fatal(err)
	}
	if first.Release.Epsilon != 0.4 || first.Account.EpsilonSpent != 0.4 || !first.PeriodStart.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) ||
		!first.NextAt().Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) || !first.ReleasedAt.Equal(t0) {
		t.Fatalf("first release: %+v", first.StoredRelease)
	}
	// Later in the hour, with other data: the same release, nothing spent.
	other := smallInput()
	other.Metrics[0].Variants[0] = Summarize("control", []float64{8, 8, 8, 8, 8}, other.Metrics[0].Bounds)
	again, err := release(t0.Add(49*time.Minute), other)
	if err != nil {
		t.Fatal(err)
	}
	if again.Release.Metrics[0].Variants[0].Mean != first.Release.Metrics[0].Variants[0].Mean || again.Account.EpsilonSpent != 0.4 || !again.ReleasedAt.Equal(t0) {
		t.Fatalf("same period: mean %g released at %s, spent %g; want the first release", again.Release.Metrics[0].Variants[0].Mean, again.ReleasedAt, again.Account.EpsilonSpent)
	}
	// The next hour: a new release of the new data.
	next, err := release(t0.Add(50*time.Minute), other)
	if err != nil {
		t.Fatal(err)
	}
	if next.Release.Metrics[0].Variants[0].Mean != 8 || next.Account.EpsilonSpent != 0.8 {
		t.Fatalf("next period: mean %g, spent %g; want 8 and 0.8", next.Release.Metrics[0].Variants[0].Mean, next.Account.EpsilonSpent)
	}
	if _, err := release(t0.Add(2*time.Hour), other); !experiment.Is(err, experiment.BudgetExceeded) {
		t.Fatalf("third period: %v, want BudgetExceeded", err)
	}
}

func TestPeriodStart(t *testing.T) {
	for _, c := range []struct {
		t      time.Time
		period time.Duration
		want   time.Time
	}{
		{time.Date(2026, 3, 2, 23, 59, 59, 0, time.UTC), 24 * time.Hour, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 24 * time.Hour, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 2, 9, 59, 0, 0, time.FixedZone("CET", 3600)), time.Hour, time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)},
		{time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), time.Hour, time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)},
	} {
		if got := PeriodStart(c.t, c.period); !got.Equal(c.want) {
			t.Errorf("PeriodStart(%s, %s) = %s, want %s", c.t, c.period, got, c.want)
		}
	}
}

func TestBudgetRelease(t *testing.T) {
	// δ spread evenly over the 1/0.25 = 4 releases the ε budget allows.
	p := ReleaseParams(Budget{Epsilon: 1, Delta: 1e-5, ReleaseEpsilon: 0.25})
	if p.Epsilon != 0.25 || p.Delta != 2.5e-6 {
		t.Errorf("release params %+v, want ε 0.25 δ 2.5e-6", p)
	}
}

// TestScheduledSegments: a segment breakdown is a subject of the schedule of its
// own: the period's first read spends the per-release ε and δ (δ even under
// Laplace), later reads get the stored breakdown, and another breakdown or the
// next period spends again, until the budget is spent.
func TestScheduledSegments(t *testing.T) {
	ctx := context.Background()
	l := NewLedger(NewMemoryLedger(nil))
	scope := ExperimentScope("checkout")
	if err := l.SetBudget(ctx, scope, Budget{Epsilon: 1.5, Delta: 3e-5, ReleaseEpsilon: 0.5, ReleasePeriod: experiment.Duration(time.Hour)}, "admin"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC)
	breakdown := func(now time.Time, subject string, segs []Segment) (*ScheduledSegments, error) {
		return l.ReleaseSegments(ctx, scope, subject, now, "ann", func(p Params) (*Segments, error) {
			return ReleaseSegments(segs, p, Options{Noise: zeroNoise{}})
		})
	}
	first, err := breakdown(t0, "segments by country", []Segment{segment("FR", 5000), segment("LU", 12)})
	if err != nil {
		t.Fatal(err)
	}
	// ReleaseDelta = Delta · ReleaseEpsilon / Epsilon = 3e-5 · 0.5 / 1.5 = 1e-5.
	if first.Account.EpsilonSpent != 0.5 || math.Abs(first.Account.DeltaSpent-1e-5) > 1e-18 || len(first.Segments.Kept) != 1 || first.Segments.Kept[0].Name != "FR" {
		t.Fatalf("first breakdown: %+v, account %+v", first.Segments, first.Account)
	}
	again, err := breakdown(t0.Add(40*time.Minute), "segments by country", []Segment{segment("FR", 9000), segment("LU", 9000)})
	if err != nil {
		t.Fatal(err)
	}
	if again.Account.EpsilonSpent != 0.5 || len(again.Segments.Kept) != 1 || again.Segments.Kept[0].N != 5000 || !again.ReleasedAt.Equal(t0) {
		t.Fatalf("same period: %+v, spent %g; want the first breakdown", again.Segments, again.Account.EpsilonSpent)
	}
	other, err := breakdown(t0.Add(40*time.Minute), "segments by device", []Segment{segment("ios", 900)})
	if err != nil || other.Account.EpsilonSpent != 1 {
		t.Fatalf("another breakdown: %+v, %v; want ε 1 spent", other, err)
	}
	if _, err := breakdown(t0.Add(time.Hour), "segments by country", []Segment{segment("FR", 9000)}); err != nil {
		t.Fatalf("next period: %v", err)
	}
	if _, err := breakdown(t0.Add(time.Hour), "segments by device", []Segment{segment("ios", 900)}); !experiment.Is(err, experiment.BudgetExceeded) {
		t.Fatalf("over budget: %v, want BudgetExceeded", err)
	}
}
