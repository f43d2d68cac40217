package store

import (
	"context"
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
