package privacy

import (
	"context"
	"errors"
	"fmt"
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

// ReleaseResults spends only when the release succeeds and refuses over budget.
func TestReleaseResults(t *testing.T) {
	ctx := context.Background()
	l := NewLedger(NewMemoryLedger(nil))
	scope := ExperimentScope("checkout")
	if err := l.SetBudget(ctx, scope, Budget{Epsilon: 1, ReleaseEpsilon: 0.6}, "admin"); err != nil {
		t.Fatal(err)
	}
	bad := smallInput()
	bad.Control = "nobody"
	if _, _, err := l.ReleaseResults(ctx, scope, bad, Options{Noise: zeroNoise{}}, "ann", "results"); !experiment.Is(err, experiment.Invalid) {
		t.Fatalf("bad input: %v", err)
	}
	r, a, err := l.ReleaseResults(ctx, scope, smallInput(), Options{Noise: zeroNoise{}}, "ann", "results")
	if err != nil {
		t.Fatal(err)
	}
	if r.Epsilon != 0.6 || a.EpsilonSpent != 0.6 || len(a.Entries) != 1 {
		t.Fatalf("release ε %g, account %+v: want one spend of 0.6", r.Epsilon, a)
	}
	if _, _, err := l.ReleaseResults(ctx, scope, smallInput(), Options{Noise: zeroNoise{}}, "ann", "results"); !experiment.Is(err, experiment.BudgetExceeded) {
		t.Fatalf("second release: %v, want BudgetExceeded", err)
	}
	a, _ = l.Account(ctx, scope, 0)
	if a.EpsilonSpent != 0.6 {
		t.Errorf("ε spent after refusals %g, want 0.6", a.EpsilonSpent)
	}
}

func TestBudgetRelease(t *testing.T) {
	// δ spread evenly over the 1/0.25 = 4 releases the ε budget allows.
	p := ReleaseParams(Budget{Epsilon: 1, Delta: 1e-5, ReleaseEpsilon: 0.25})
	if p.Epsilon != 0.25 || p.Delta != 2.5e-6 {
		t.Errorf("release params %+v, want ε 0.25 δ 2.5e-6", p)
	}
}
