// Package privacytest holds checks that every privacy.privacy.LedgerStore implementation
// must pass, for the tests of those implementations.
package privacytest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

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
