// Package privacytest holds checks that every privacy.LedgerStore implementation
// must pass, for the tests of those implementations.
package privacytest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/privacy"
)

// ConcurrentSpendCheck is a test helper for privacy.LedgerStore implementations: 64
// goroutines each try 10 spends of ε = 0.03 on a budget of 1, all at once. Exactly
// 33 must succeed (33·0.03 = 0.99; a 34th would make 1.02), every other must be
// refused with experiment.BudgetExceeded, and the account must show 0.99 spent in 33
// entries.
func ConcurrentSpendCheck(t testing.TB, s privacy.LedgerStore) {
	t.Helper()
	ctx := context.Background()
	l := privacy.NewLedger(s)
	scope := privacy.ExperimentScope("race")
	if err := l.SetBudget(ctx, scope, privacy.Budget{Epsilon: 1, ReleaseEpsilon: 0.03}, "admin"); err != nil {
		t.Fatal(err)
	}
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 640)
	start := make(chan struct{})
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 10 {
				err := l.Spend(ctx, scope, 0.03, 0, "racer", "results")
				switch {
				case err == nil:
					ok.Add(1)
				case experiment.Is(err, experiment.BudgetExceeded):
					refused.Add(1)
				default:
					errc <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("unexpected error: %v", err)
	}
	if ok.Load() != 33 || refused.Load() != 640-33 {
		t.Fatalf("%d spends succeeded and %d were refused, want 33 and 607", ok.Load(), refused.Load())
	}
	a, err := l.Account(ctx, scope, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Entries) != 33 || a.EpsilonSpent > 1 || a.EpsilonSpent < 0.99-1e-9 {
		t.Fatalf("account after the race: %d entries, ε spent %g; want 33 and 0.99", len(a.Entries), a.EpsilonSpent)
	}
}

// ConcurrentReleaseCheck is a test helper for privacy.LedgerStore implementations:
// 50 goroutines ask at once for the release of one period of scope (whose
// experiment or holdout must exist for stores that check). Exactly one release may
// be computed and spent, and every caller must get that release.
func ConcurrentReleaseCheck(t testing.TB, s privacy.LedgerStore, scope string) {
	t.Helper()
	ctx := context.Background()
	l := privacy.NewLedger(s)
	if err := l.SetBudget(ctx, scope, privacy.Budget{Epsilon: 10, ReleaseEpsilon: 0.5}, "admin"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	var computed atomic.Int64
	compute := func(p privacy.Params) (*privacy.Release, error) {
		k := computed.Add(1)
		return &privacy.Release{Mechanism: privacy.Laplace, Epsilon: p.Epsilon, Control: "control",
			Units: []privacy.NoisyCount{{Variant: "control", N: 100 + k}, {Variant: "treatment", N: 100}}}, nil
	}
	const n = 50
	got := make([]*privacy.Scheduled, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = l.Release(ctx, scope, "results", now, privacy.Laplace, "racer", compute)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got[i].Release.Units[0].N != got[0].Release.Units[0].N || !got[i].ReleasedAt.Equal(got[0].ReleasedAt) {
			t.Fatalf("caller %d got release %+v, caller 0 %+v", i, got[i].Release.Units, got[0].Release.Units)
		}
	}
	a, err := l.Account(ctx, scope, 0)
	if err != nil {
		t.Fatal(err)
	}
	if computed.Load() != 1 || len(a.Entries) != 1 || a.EpsilonSpent != 0.5 {
		t.Fatalf("%d releases computed, %d ledger entries, ε spent %g; want one release of 0.5", computed.Load(), len(a.Entries), a.EpsilonSpent)
	}
	if !got[0].PeriodStart.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) || !got[0].NextAt().Equal(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("period %s, next %s; want the UTC day of 2 March", got[0].PeriodStart, got[0].NextAt())
	}
}
