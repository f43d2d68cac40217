package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Ledger keeps privacy budgets and the ledger of releases in DuckDB. It implements
// privacy.LedgerStore: Spend reads what a scope has spent, checks the budget and
// records the spend in one transaction, and spends are also serialized in the
// process (DuckDB reports concurrent updates of one row as a conflict rather than
// waiting), so concurrent releases can never overspend.
type Ledger struct{ db *DB }

// Ledger returns the privacy ledger of db.
func (db *DB) Ledger() *Ledger { return &Ledger{db: db} }

// checkScope returns NotFound unless scope names an existing experiment or holdout.
func checkScope(ctx context.Context, q queryer, scope string) error {
	kind, key, _ := strings.Cut(scope, ":")
	var err error
	switch kind {
	case "experiment":
		_, err = getExperiment(ctx, q, key)
	case "holdout":
		_, err = getHoldout(ctx, q, key)
	default:
		err = experiment.E(experiment.Invalid, experiment.Field("scope"), experiment.Errorf(`must be "experiment:KEY" or "holdout:NAME", got %q`, scope))
	}
	return err
}

// SetBudget sets the budget of scope (an existing experiment or holdout), keeping
// what is spent, and writes an audit entry (entity "privacy", key scope).
func (l *Ledger) SetBudget(ctx context.Context, scope string, b experiment.PrivacyBudget, who string) error {
	const op = "store.SetBudget"
	if err := b.Validate(); err != nil {
		return experiment.E(op, err)
	}
	db := l.db
	db.regMu.Lock()
	defer db.regMu.Unlock()
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback()
	if err := checkScope(ctx, tx, scope); err != nil {
		return experiment.E(op, err)
	}
	before, err := readBudget(ctx, tx, scope)
	if err != nil && !experiment.Is(err, experiment.NotFound) {
		return internal(op, err)
	}
	now := db.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO privacy_budgets
		(scope, epsilon, delta, release_epsilon, release_delta, release_period_s, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (scope) DO UPDATE SET epsilon = excluded.epsilon, delta = excluded.delta,
		release_epsilon = excluded.release_epsilon, release_delta = excluded.release_delta,
		release_period_s = excluded.release_period_s, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		scope, b.Epsilon, b.Delta, b.ReleaseEpsilon, b.ReleaseDelta, int64(b.Period()/time.Second), now, who); err != nil {
		return internal(op, err)
	}
	var prev any
	if before != nil {
		prev = before.Budget
	}
	if err := db.audit(ctx, tx, now, who, "set_budget", "privacy", scope, prev, b); err != nil {
		return internal(op, err)
	}
	return internal(op, tx.Commit())
}

// readBudget reads a scope's budget and spent amounts (without entries).
func readBudget(ctx context.Context, q queryer, scope string) (*experiment.PrivacyAccount, error) {
	a := &experiment.PrivacyAccount{Scope: scope}
	b := &a.Budget
	var period sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT epsilon, delta, release_epsilon, release_delta, release_period_s, epsilon_spent, delta_spent
		FROM privacy_budgets WHERE scope = ?`, scope).
		Scan(&b.Epsilon, &b.Delta, &b.ReleaseEpsilon, &b.ReleaseDelta, &period, &a.EpsilonSpent, &a.DeltaSpent)
	b.ReleasePeriod = experiment.DefaultReleasePeriod
	if period.Valid && period.Int64 > 0 {
		b.ReleasePeriod = experiment.Duration(time.Duration(period.Int64) * time.Second)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(experiment.NotFound, experiment.Errorf("%s has no privacy budget; set one first", strings.Replace(scope, ":", " ", 1)))
	}
	if err != nil {
		return nil, err
	}
	a.EpsilonLeft = max(b.Epsilon-a.EpsilonSpent, 0)
	a.DeltaLeft = max(b.Delta-a.DeltaSpent, 0)
	return a, nil
}

// Account returns the budget of scope, what is spent and left, and its limit newest
// ledger entries (0 = all).
func (l *Ledger) Account(ctx context.Context, scope string, limit int) (*experiment.PrivacyAccount, error) {
	const op = "store.Account"
	a, err := readBudget(ctx, l.db.db, scope)
	if err != nil {
		return nil, internal(op, err)
	}
	q := `SELECT scope, who, ts, what, epsilon, delta FROM privacy_ledger WHERE scope = ? ORDER BY id DESC`
	args := []any{scope}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := l.db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	a.Entries = []experiment.PrivacyEntry{}
	for rows.Next() {
		var e experiment.PrivacyEntry
		if err := rows.Scan(&e.Scope, &e.Who, &e.When, &e.What, &e.Epsilon, &e.Delta); err != nil {
			return nil, internal(op, err)
		}
		e.When = e.When.UTC()
		a.Entries = append(a.Entries, e)
	}
	return a, internal(op, rows.Err())
}

// Spend records a release of (eps, delta) against scope, or refuses it with
// experiment.BudgetExceeded when the budget would be exceeded; a refused or failed
// spend stores nothing.
func (l *Ledger) Spend(ctx context.Context, scope string, eps, delta float64, who, what string) error {
	const op = "store.Spend"
	db := l.db
	db.regMu.Lock()
	defer db.regMu.Unlock()
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback()
	if _, err := spend(ctx, tx, db.now(), scope, eps, delta, who, what); err != nil {
		return experiment.E(op, err)
	}
	return internal(op, tx.Commit())
}

// spend checks the budget of scope and records (eps, delta) in tx, returning the
// ledger entry's id.
func spend(ctx context.Context, tx *sql.Tx, now time.Time, scope string, eps, delta float64, who, what string) (int64, error) {
	a, err := readBudget(ctx, tx, scope)
	if err != nil {
		return 0, err
	}
	if err := a.Budget.Refuse(scope, a.EpsilonSpent, a.DeltaSpent, eps, delta); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE privacy_budgets SET epsilon_spent = epsilon_spent + ?, delta_spent = delta_spent + ? WHERE scope = ?`,
		eps, delta, scope); err != nil {
		return 0, experiment.E(experiment.Internal, err)
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO privacy_ledger (scope, who, ts, what, epsilon, delta) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		scope, who, now, what, eps, delta).Scan(&id); err != nil {
		return 0, experiment.E(experiment.Internal, err)
	}
	return id, nil
}

// SpendRelease spends (eps, delta) from r.Scope on behalf of who and saves the
// release r for its subject and period, in one transaction: a refused spend
// (experiment.BudgetExceeded), a period already released (experiment.Conflict) or
// any failure on the way stores neither. The ledger entry's "what" is r.Subject.
func (l *Ledger) SpendRelease(ctx context.Context, r *experiment.PrivacyRelease, eps, delta float64, who string) error {
	const op = "store.SpendRelease"
	db := l.db
	db.regMu.Lock()
	defer db.regMu.Unlock()
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM privacy_period_releases WHERE scope = ? AND subject = ? AND period_start = ?`,
		r.Scope, r.Subject, r.PeriodStart.UTC()).Scan(&n); err != nil {
		return internal(op, err)
	}
	if n > 0 {
		return experiment.E(op, experiment.Conflict, experiment.Errorf("%s has a release of %s for the period from %s already",
			strings.Replace(r.Scope, ":", " ", 1), r.Subject, r.PeriodStart.UTC().Format(time.RFC3339)))
	}
	id, err := spend(ctx, tx, db.now(), r.Scope, eps, delta, who, r.Subject)
	if err != nil {
		return experiment.E(op, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO privacy_period_releases (scope, subject, period_start, released_at, ledger_id, doc) VALUES (?, ?, ?, ?, ?, ?)`,
		r.Scope, r.Subject, r.PeriodStart.UTC(), r.ReleasedAt.UTC(), id, string(r.Doc)); err != nil {
		return internal(op, err)
	}
	return internal(op, tx.Commit())
}

// PeriodRelease returns the release of subject saved for the period of scope that
// starts at start, or experiment.NotFound.
func (l *Ledger) PeriodRelease(ctx context.Context, scope, subject string, start time.Time) (*experiment.PrivacyRelease, error) {
	const op = "store.PeriodRelease"
	var doc jsonText
	r := &experiment.PrivacyRelease{Scope: scope, Subject: subject}
	err := l.db.db.QueryRowContext(ctx, `SELECT period_start, released_at, doc FROM privacy_period_releases WHERE scope = ? AND subject = ? AND period_start = ?`,
		scope, subject, start.UTC()).Scan(&r.PeriodStart, &r.ReleasedAt, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(op, experiment.NotFound, experiment.Errorf("no release of %s for the period from %s", strings.Replace(scope, ":", " ", 1), start.UTC().Format(time.RFC3339)))
	}
	if err != nil {
		return nil, internal(op, err)
	}
	r.PeriodStart, r.ReleasedAt, r.Doc = r.PeriodStart.UTC(), r.ReleasedAt.UTC(), []byte(doc)
	return r, nil
}

// Exclusive waits until no other caller holds the release lock of scope, or ctx
// ends (experiment.Unavailable), and returns the function that lets it go. The
// releases of a scope are made under it one at a time, so that concurrent readers
// of a period wait for its one release instead of each making one.
func (l *Ledger) Exclusive(ctx context.Context, scope string) (func(), error) {
	db := l.db
	db.releaseMu.Lock()
	if db.releaseLocks == nil {
		db.releaseLocks = map[string]chan struct{}{}
	}
	ch, ok := db.releaseLocks[scope]
	if !ok {
		ch = make(chan struct{}, 1)
		db.releaseLocks[scope] = ch
	}
	db.releaseMu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, experiment.E("store.Exclusive", experiment.Unavailable, fmt.Errorf("waiting for the release of %s: %w", scope, ctx.Err()))
	}
}
