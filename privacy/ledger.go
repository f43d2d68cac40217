package privacy

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Budget, Entry and Account are the ledger's vocabulary, shared with package store.
type (
	Budget  = experiment.PrivacyBudget
	Entry   = experiment.PrivacyEntry
	Account = experiment.PrivacyAccount
)

// ReleaseParams returns the parameters one results release of b spends.
func ReleaseParams(b Budget) Params {
	d := b.ReleaseDelta
	if d == 0 && b.Epsilon > 0 {
		d = b.Delta * b.ReleaseEpsilon / b.Epsilon
	}
	return Params{Epsilon: b.ReleaseEpsilon, Delta: d}
}

// LedgerStore is the storage contract of the ledger.
//
// Spend must be atomic with respect to every other Spend of the same scope: it reads
// what the scope has spent, refuses with an experiment.BudgetExceeded error (built by
// Exhausted) when ε or δ would exceed the budget, and otherwise appends the entry,
// all in one step, so concurrent releases can never overspend. A refused or failed
// Spend stores nothing. A scope without a budget gives experiment.NotFound.
type LedgerStore interface {
	SetBudget(ctx context.Context, scope string, b Budget, who string) error
	Account(ctx context.Context, scope string, limit int) (*Account, error) // the limit newest entries; 0 = all
	Spend(ctx context.Context, scope string, eps, delta float64, who, what string) error
}

// ExperimentScope is the ledger scope of an experiment, "experiment:KEY".
func ExperimentScope(key string) string { return "experiment:" + key }

// HoldoutScope is the ledger scope of a holdout, "holdout:NAME".
func HoldoutScope(name string) string { return "holdout:" + name }

// ScopeLabel turns "experiment:KEY" into "experiment KEY" for messages.
func ScopeLabel(scope string) string { return strings.Replace(scope, ":", " ", 1) }

// ValidScope checks that scope is "experiment:KEY" or "holdout:NAME" with a valid key.
func ValidScope(scope string) error {
	kind, key, ok := strings.Cut(scope, ":")
	if !ok || (kind != "experiment" && kind != "holdout") || !experiment.ValidKey(key) {
		return experiment.E("privacy.Scope", experiment.Invalid, experiment.Field("scope"), experiment.Errorf(`must be "experiment:KEY" or "holdout:NAME", got %q`, scope))
	}
	return nil
}

// Ledger enforces privacy budgets over a LedgerStore.
type Ledger struct {
	store LedgerStore
}

// NewLedger returns a ledger over s.
func NewLedger(s LedgerStore) *Ledger { return &Ledger{store: s} }

// SetBudget sets (or changes) the budget of scope. Lowering it below what is
// already spent is allowed and leaves the scope exhausted.
func (l *Ledger) SetBudget(ctx context.Context, scope string, b Budget, who string) error {
	if err := ValidScope(scope); err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return err
	}
	if err := l.store.SetBudget(ctx, scope, b, who); err != nil {
		return experiment.E("privacy.SetBudget", err)
	}
	return nil
}

// Account returns the budget of scope, what is spent and the limit newest entries.
func (l *Ledger) Account(ctx context.Context, scope string, limit int) (*Account, error) {
	if err := ValidScope(scope); err != nil {
		return nil, err
	}
	a, err := l.store.Account(ctx, scope, limit)
	if err != nil {
		return nil, experiment.E("privacy.Account", err)
	}
	return a, nil
}

// Spend records a release of (eps, delta) by who, described by what, or refuses it
// with experiment.BudgetExceeded, spending nothing.
func (l *Ledger) Spend(ctx context.Context, scope string, eps, delta float64, who, what string) error {
	const op = "privacy.Spend"
	if err := ValidScope(scope); err != nil {
		return err
	}
	if !(eps > 0) || math.IsInf(eps, 0) {
		return experiment.E(op, experiment.Invalid, experiment.Field("epsilon"), experiment.Errorf("must be positive and finite, got %g", eps))
	}
	if !(delta >= 0 && delta < 1) {
		return experiment.E(op, experiment.Invalid, experiment.Field("delta"), experiment.Errorf("must be in [0, 1), got %g", delta))
	}
	if who == "" {
		return experiment.E(op, experiment.Invalid, experiment.Field("who"), experiment.Errorf("a spend must name who released"))
	}
	if err := l.store.Spend(ctx, scope, eps, delta, who, what); err != nil {
		return experiment.E(op, err)
	}
	return nil
}

// ReleaseResults computes a release of in with the scope's per-release parameters and
// spends them; the release is returned only when the spend was recorded, and nothing
// is spent when the release fails. The account after the spend is returned too.
func (l *Ledger) ReleaseResults(ctx context.Context, scope string, in *Input, opt Options, who, what string) (*Release, *Account, error) {
	a, err := l.Account(ctx, scope, 1)
	if err != nil {
		return nil, nil, err
	}
	p := ReleaseParams(a.Budget)
	if opt.Mechanism != Gaussian {
		p.Delta = 0 // Laplace spends no δ
	}
	// Checked again atomically by Spend; this early answer saves the work.
	if err := a.Budget.Refuse(scope, a.EpsilonSpent, a.DeltaSpent, p.Epsilon, p.Delta); err != nil {
		return nil, nil, err
	}
	r, err := NewRelease(in, p, opt)
	if err != nil {
		return nil, nil, err
	}
	if err := l.Spend(ctx, scope, r.Epsilon, r.Delta, who, what); err != nil {
		return nil, nil, err
	}
	if a, err = l.Account(ctx, scope, 1); err != nil {
		return nil, nil, err
	}
	return r, a, nil
}

// MemoryLedger is an in-memory LedgerStore, for tests and offline reports.
type MemoryLedger struct {
	mu      sync.Mutex
	now     func() time.Time
	budgets map[string]Budget
	entries map[string][]Entry
}

var _ LedgerStore = (*MemoryLedger)(nil)

// NewMemoryLedger returns an empty in-memory ledger with the clock now (time.Now when nil).
func NewMemoryLedger(now func() time.Time) *MemoryLedger {
	if now == nil {
		now = time.Now
	}
	return &MemoryLedger{now: now, budgets: map[string]Budget{}, entries: map[string][]Entry{}}
}

// SetBudget implements LedgerStore.
func (m *MemoryLedger) SetBudget(ctx context.Context, scope string, b Budget, who string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.budgets[scope] = b
	return nil
}

// Account implements LedgerStore.
func (m *MemoryLedger) Account(ctx context.Context, scope string, limit int) (*Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.budgets[scope]
	if !ok {
		return nil, experiment.E(experiment.NotFound, experiment.Errorf("%s has no privacy budget", ScopeLabel(scope)))
	}
	a := &Account{Scope: scope, Budget: b}
	es := m.entries[scope]
	for i := len(es) - 1; i >= 0; i-- {
		a.EpsilonSpent += es[i].Epsilon
		a.DeltaSpent += es[i].Delta
		if limit <= 0 || len(a.Entries) < limit {
			a.Entries = append(a.Entries, es[i])
		}
	}
	a.EpsilonLeft = max(b.Epsilon-a.EpsilonSpent, 0)
	a.DeltaLeft = max(b.Delta-a.DeltaSpent, 0)
	return a, nil
}

// Spend implements LedgerStore.
func (m *MemoryLedger) Spend(ctx context.Context, scope string, eps, delta float64, who, what string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.budgets[scope]
	if !ok {
		return experiment.E(experiment.NotFound, experiment.Errorf("%s has no privacy budget", ScopeLabel(scope)))
	}
	var se, sd float64
	for _, e := range m.entries[scope] {
		se += e.Epsilon
		sd += e.Delta
	}
	if err := b.Refuse(scope, se, sd, eps, delta); err != nil {
		return err
	}
	m.entries[scope] = append(m.entries[scope], Entry{Scope: scope, Who: who, When: m.now(), What: what, Epsilon: eps, Delta: delta})
	return nil
}
