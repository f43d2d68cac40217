package privacy

import (
	"context"
	"encoding/json"
	"fmt"
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
//
// SpendRelease is Spend and the saving of the release it paid for, in one
// transaction: either both are stored or neither. It refuses with
// experiment.Conflict when a release for the same scope, subject and period is
// stored already. PeriodRelease reads that release (experiment.NotFound when there
// is none). Exclusive waits until no other caller holds the scope's release lock
// (or ctx ends) and returns the function that lets it go: releases of one scope are
// made one at a time, so concurrent readers of a period wait for its one release.
type LedgerStore interface {
	SetBudget(ctx context.Context, scope string, b Budget, who string) error
	Account(ctx context.Context, scope string, limit int) (*Account, error) // the limit newest entries; 0 = all
	Spend(ctx context.Context, scope string, eps, delta float64, who, what string) error
	SpendRelease(ctx context.Context, r *StoredRelease, eps, delta float64, who string) error
	PeriodRelease(ctx context.Context, scope, subject string, periodStart time.Time) (*StoredRelease, error)
	Exclusive(ctx context.Context, scope string) (unlock func(), err error)
}

// StoredRelease is the release of one period of a scope's schedule, as stored.
type StoredRelease = experiment.PrivacyRelease

// PeriodStart is the start of the release period of length period that holds t:
// periods are aligned to the Unix epoch in UTC, so a day starts at 00:00 UTC and an
// hour on the hour.
func PeriodStart(t time.Time, period time.Duration) time.Time {
	p := int64(period)
	ns := t.UnixNano()
	start := ns - ns%p
	if ns%p < 0 {
		start -= p
	}
	return time.Unix(0, start).UTC()
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
	if b.ReleasePeriod == 0 {
		b.ReleasePeriod = experiment.DefaultReleasePeriod
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

// Scheduled is a scope's release of one period with the account after it.
type Scheduled struct {
	Release *Release
	Account *Account
	StoredRelease
	Period time.Duration
}

// NextAt is when the next period starts: the earliest time a new release can be made.
func (s *Scheduled) NextAt() time.Time { return s.PeriodStart.Add(s.Period) }

// Release returns the release of subject (e.g. "results") for the period of the
// scope's schedule that holds now, making it when there is none yet.
//
// The first call of a period computes the release with compute, given the
// per-release parameters of the budget (compute must not spend), and spends and saves
// it in one ledger transaction (LedgerStore.SpendRelease): nothing is spent unless
// the release is saved, and nothing is saved unless it is paid for. Every later
// call of the period is answered with the saved release and spends nothing,
// whether or not the data changed: reuse depends on the clock only, so a reader
// learns nothing from it about the data. Concurrent calls for one scope wait for
// each other (LedgerStore.Exclusive), so a period's release is made once. A
// release that would overspend is refused with experiment.BudgetExceeded.
func (l *Ledger) Release(ctx context.Context, scope, subject string, now time.Time, mech Mechanism, who string, compute func(Params) (*Release, error)) (*Scheduled, error) {
	out := &Scheduled{Release: new(Release)}
	params := func(b Budget) Params {
		p := ReleaseParams(b)
		if mech != Gaussian {
			p.Delta = 0 // Laplace spends no δ
		}
		return p
	}
	build := func(p Params) (any, float64, float64, error) {
		r, err := compute(p)
		if err != nil {
			return nil, 0, 0, err
		}
		out.Release = r
		return r, r.Epsilon, r.Delta, nil
	}
	sr, a, period, err := l.scheduled(ctx, scope, subject, now, who, params, build, out.Release)
	if err != nil {
		return nil, err
	}
	out.StoredRelease, out.Account, out.Period = sr, a, period
	return out, nil
}

// ScheduledSegments is a scope's segment breakdown of one period (one subject)
// with the account after it.
type ScheduledSegments struct {
	Segments *Segments
	Account  *Account
	StoredRelease
	Period time.Duration
}

// NextAt is when the next period starts: the earliest time a new breakdown can be made.
func (s *ScheduledSegments) NextAt() time.Time { return s.PeriodStart.Add(s.Period) }

// ReleaseSegments is Release for a segment breakdown (ReleaseSegments, the
// function, made by compute): the first call of a period for subject (one
// breakdown: a metric by an attribute) computes it with the budget's
// per-release ε and δ, whatever the mechanism (partition selection needs δ > 0
// under Laplace too), and spends (ε, δ) and saves it in one transaction; later
// calls of the period are answered with it and spend nothing. Each breakdown is
// its own subject and spends on its own.
func (l *Ledger) ReleaseSegments(ctx context.Context, scope, subject string, now time.Time, who string, compute func(Params) (*Segments, error)) (*ScheduledSegments, error) {
	out := &ScheduledSegments{Segments: new(Segments)}
	build := func(p Params) (any, float64, float64, error) {
		sg, err := compute(p)
		if err != nil {
			return nil, 0, 0, err
		}
		out.Segments = sg
		return sg, sg.Epsilon, sg.Delta, nil
	}
	sr, a, period, err := l.scheduled(ctx, scope, subject, now, who, ReleaseParams, build, out.Segments)
	if err != nil {
		return nil, err
	}
	out.StoredRelease, out.Account, out.Period = sr, a, period
	return out, nil
}

// scheduled is the schedule of Release: the stored document of the period is
// read into into, or made by build (the document and what it spends) with the
// parameters params gives for the budget, then spent and saved.
func (l *Ledger) scheduled(ctx context.Context, scope, subject string, now time.Time, who string,
	params func(Budget) Params, build func(Params) (any, float64, float64, error), into any) (StoredRelease, *Account, time.Duration, error) {
	const op = "privacy.Release"
	if err := ValidScope(scope); err != nil {
		return StoredRelease{}, nil, 0, err
	}
	now = now.UTC().Truncate(time.Microsecond) // what stores keep, so every reader sees the same time
	unlock, err := l.store.Exclusive(ctx, scope)
	if err != nil {
		return StoredRelease{}, nil, 0, experiment.E(op, err)
	}
	defer unlock()
	a, err := l.Account(ctx, scope, 1)
	if err != nil {
		return StoredRelease{}, nil, 0, err
	}
	period := a.Budget.Period()
	start := PeriodStart(now, period)
	sr, err := l.store.PeriodRelease(ctx, scope, subject, start)
	switch {
	case err == nil:
		if err := json.Unmarshal(sr.Doc, into); err != nil {
			return StoredRelease{}, nil, 0, experiment.E(op, experiment.Internal, fmt.Errorf("stored release of %s: %w", ScopeLabel(scope), err))
		}
		return *sr, a, period, nil
	case !experiment.Is(err, experiment.NotFound):
		return StoredRelease{}, nil, 0, experiment.E(op, err)
	}
	p := params(a.Budget)
	// Checked again atomically by SpendRelease; this early answer saves the work.
	if err := a.Budget.Refuse(scope, a.EpsilonSpent, a.DeltaSpent, p.Epsilon, p.Delta); err != nil {
		return StoredRelease{}, nil, 0, err
	}
	r, eps, delta, err := build(p)
	if err != nil {
		return StoredRelease{}, nil, 0, err
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return StoredRelease{}, nil, 0, experiment.E(op, experiment.Internal, err)
	}
	stored := StoredRelease{Scope: scope, Subject: subject, PeriodStart: start, ReleasedAt: now, Doc: doc}
	if err := l.store.SpendRelease(ctx, &stored, eps, delta, who); err != nil {
		return StoredRelease{}, nil, 0, experiment.E(op, err)
	}
	if a, err = l.Account(ctx, scope, 1); err != nil {
		return StoredRelease{}, nil, 0, err
	}
	return stored, a, period, nil
}

// MemoryLedger is an in-memory LedgerStore, for tests and offline reports.
type MemoryLedger struct {
	mu       sync.Mutex
	now      func() time.Time
	budgets  map[string]Budget
	entries  map[string][]Entry
	releases map[string]StoredRelease // by scope, subject and period start
	locks    map[string]chan struct{}
	// FailSave, when set, makes SpendRelease fail after the spend and before the
	// save (for tests of the one-transaction guarantee): nothing is kept.
	FailSave error
}

var _ LedgerStore = (*MemoryLedger)(nil)

// NewMemoryLedger returns an empty in-memory ledger with the clock now (time.Now when nil).
func NewMemoryLedger(now func() time.Time) *MemoryLedger {
	if now == nil {
		now = time.Now
	}
	return &MemoryLedger{now: now, budgets: map[string]Budget{}, entries: map[string][]Entry{},
		releases: map[string]StoredRelease{}, locks: map[string]chan struct{}{}}
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

func releaseKey(scope, subject string, start time.Time) string {
	return scope + "\x00" + subject + "\x00" + start.UTC().Format(time.RFC3339Nano)
}

// SpendRelease implements LedgerStore.
func (m *MemoryLedger) SpendRelease(ctx context.Context, r *StoredRelease, eps, delta float64, who string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.budgets[r.Scope]
	if !ok {
		return experiment.E(experiment.NotFound, experiment.Errorf("%s has no privacy budget", ScopeLabel(r.Scope)))
	}
	k := releaseKey(r.Scope, r.Subject, r.PeriodStart)
	if _, dup := m.releases[k]; dup {
		return experiment.E(experiment.Conflict, experiment.Errorf("%s has a release of %s for the period from %s already", ScopeLabel(r.Scope), r.Subject, r.PeriodStart.Format(time.RFC3339)))
	}
	var se, sd float64
	for _, e := range m.entries[r.Scope] {
		se += e.Epsilon
		sd += e.Delta
	}
	if err := b.Refuse(r.Scope, se, sd, eps, delta); err != nil {
		return err
	}
	if m.FailSave != nil {
		return m.FailSave // the spend above is not kept: both or neither
	}
	m.entries[r.Scope] = append(m.entries[r.Scope], Entry{Scope: r.Scope, Who: who, When: m.now(), What: r.Subject, Epsilon: eps, Delta: delta})
	m.releases[k] = *r
	return nil
}

// PeriodRelease implements LedgerStore.
func (m *MemoryLedger) PeriodRelease(ctx context.Context, scope, subject string, start time.Time) (*StoredRelease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.releases[releaseKey(scope, subject, start)]
	if !ok {
		return nil, experiment.E(experiment.NotFound, experiment.Errorf("no release of %s for this period", ScopeLabel(scope)))
	}
	return &r, nil
}

// Exclusive implements LedgerStore.
func (m *MemoryLedger) Exclusive(ctx context.Context, scope string) (func(), error) {
	m.mu.Lock()
	ch, ok := m.locks[scope]
	if !ok {
		ch = make(chan struct{}, 1)
		m.locks[scope] = ch
	}
	m.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, experiment.E(experiment.Unavailable, ctx.Err())
	}
}
