package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Forwarding committed rows to a warehouse: every exposure and event row has
// a number (seq) in the order its group or load started, and a watermark
// (ExposureWatermark, EventWatermark) below which no row can still commit. A
// forwarder reads the rows after its cursor up to the watermark, sends them,
// and then moves its cursor (ForwardCursor, SetForwardCursor), so that every
// acknowledged row is sent at least once, across restarts too.

// ExposuresAfter returns, in seq order, at most limit exposure rows with
// after < seq ≤ upto, and their numbers.
func (db *DB) ExposuresAfter(ctx context.Context, after, upto int64, limit int) ([]int64, []experiment.Exposure, error) {
	const op = "store.ExposuresAfter"
	rows, err := db.db.QueryContext(ctx, `SELECT seq, experiment, unit, coalesce(variant, ''), ts, in_holdout, coalesce(holdout_version, 0), coalesce(source, '')
FROM exposures WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, after, upto, limit)
	if err != nil {
		return nil, nil, internal(op, err)
	}
	defer rows.Close()
	var seqs []int64
	var out []experiment.Exposure
	for rows.Next() {
		var s int64
		var x experiment.Exposure
		if err := rows.Scan(&s, &x.Experiment, &x.Unit, &x.Variant, &x.TS, &x.InHoldout, &x.HoldoutVersion, &x.Source); err != nil {
			return nil, nil, internal(op, err)
		}
		x.TS = x.TS.UTC()
		seqs, out = append(seqs, s), append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, internal(op, err)
	}
	return seqs, out, nil
}

// EventsAfter returns, in seq order, at most limit event rows with
// after < seq ≤ upto, and their numbers (without properties).
func (db *DB) EventsAfter(ctx context.Context, after, upto int64, limit int) ([]int64, []experiment.Event, error) {
	const op = "store.EventsAfter"
	rows, err := db.db.QueryContext(ctx, `SELECT seq, event_id, unit, type, ts, value
FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, after, upto, limit)
	if err != nil {
		return nil, nil, internal(op, err)
	}
	defer rows.Close()
	var seqs []int64
	var out []experiment.Event
	for rows.Next() {
		var s int64
		var e experiment.Event
		if err := rows.Scan(&s, &e.EventID, &e.Unit, &e.Type, &e.TS, &e.Value); err != nil {
			return nil, nil, internal(op, err)
		}
		e.TS = e.TS.UTC()
		seqs, out = append(seqs, s), append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, internal(op, err)
	}
	return seqs, out, nil
}

// ForwardCursor is the highest seq that target has acknowledged (0: none).
func (db *DB) ForwardCursor(ctx context.Context, target string) (int64, error) {
	var s int64
	err := db.db.QueryRowContext(ctx, `SELECT seq FROM forward_cursors WHERE target = ?`, target).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, internal("store.ForwardCursor", err)
	}
	return s, nil
}

// SetForwardCursor records that target has acknowledged every row up to seq.
// A forwarder sets its cursor (to 0 at first) before it reads rows: EraseUnit
// records a pending erasure for the forwarder (PendingErasures) only when a
// cursor exists, and the two are ordered by a lock, so an erasure either sees
// the cursor or commits before the forwarder reads the unit's rows.
func (db *DB) SetForwardCursor(ctx context.Context, target string, seq int64) error {
	db.fwdMu.Lock()
	defer db.fwdMu.Unlock()
	_, err := db.db.ExecContext(ctx, `INSERT INTO forward_cursors (target, seq, updated_at) VALUES (?, ?, ?)
ON CONFLICT (target) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`, target, seq, db.now())
	if err != nil {
		return internal("store.SetForwardCursor", err)
	}
	return nil
}

// PendingErasures are the erasures no forwarder has finished, oldest first.
func (db *DB) PendingErasures(ctx context.Context) ([]experiment.PendingErasure, error) {
	const op = "store.PendingErasures"
	rows, err := db.db.QueryContext(ctx, `SELECT pseudonym, unit, requested_at FROM forward_erasures ORDER BY requested_at, pseudonym`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []experiment.PendingErasure
	for rows.Next() {
		var e experiment.PendingErasure
		if err := rows.Scan(&e.Pseudonym, &e.Unit, &e.RequestedAt); err != nil {
			return nil, internal(op, err)
		}
		e.RequestedAt = e.RequestedAt.UTC()
		out = append(out, e)
	}
	return out, internal(op, rows.Err())
}

// UnitExposures returns, in seq order, unit's exposure rows with seq ≤ upto
// (those a forwarder at cursor upto has sent), and their numbers.
func (db *DB) UnitExposures(ctx context.Context, unit string, upto int64) ([]int64, []experiment.Exposure, error) {
	const op = "store.UnitExposures"
	rows, err := db.db.QueryContext(ctx, `SELECT seq, experiment, unit, coalesce(variant, ''), ts, in_holdout, coalesce(holdout_version, 0), coalesce(source, '')
FROM exposures WHERE unit = ? AND seq <= ? ORDER BY seq`, unit, upto)
	if err != nil {
		return nil, nil, internal(op, err)
	}
	defer rows.Close()
	var seqs []int64
	var out []experiment.Exposure
	for rows.Next() {
		var s int64
		var x experiment.Exposure
		if err := rows.Scan(&s, &x.Experiment, &x.Unit, &x.Variant, &x.TS, &x.InHoldout, &x.HoldoutVersion, &x.Source); err != nil {
			return nil, nil, internal(op, err)
		}
		x.TS = x.TS.UTC()
		seqs, out = append(seqs, s), append(out, x)
	}
	return seqs, out, internal(op, rows.Err())
}

// UnitEvents returns, in seq order, unit's event rows with seq ≤ upto, and
// their numbers (without properties).
func (db *DB) UnitEvents(ctx context.Context, unit string, upto int64) ([]int64, []experiment.Event, error) {
	const op = "store.UnitEvents"
	rows, err := db.db.QueryContext(ctx, `SELECT seq, event_id, unit, type, ts, value FROM events WHERE unit = ? AND seq <= ? ORDER BY seq`, unit, upto)
	if err != nil {
		return nil, nil, internal(op, err)
	}
	defer rows.Close()
	var seqs []int64
	var out []experiment.Event
	for rows.Next() {
		var s int64
		var e experiment.Event
		if err := rows.Scan(&s, &e.EventID, &e.Unit, &e.Type, &e.TS, &e.Value); err != nil {
			return nil, nil, internal(op, err)
		}
		e.TS = e.TS.UTC()
		seqs, out = append(seqs, s), append(out, e)
	}
	return seqs, out, internal(op, rows.Err())
}

// FinishErasure records that the forwarder has applied the erasure of
// pseudonym to its warehouse, with report (which must not name the raw id) as
// the after of its audit entry ("unit.erase.clickhouse", keyed by the
// pseudonym), in one transaction that deletes the pending row, and with it the
// last copy of the raw id. An erasure requested again since requested (a later
// EraseUnit) stays pending.
func (db *DB) FinishErasure(ctx context.Context, pseudonym string, requested time.Time, report any) error {
	const op = "store.FinishErasure"
	err := db.tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM forward_erasures WHERE pseudonym = ? AND requested_at <= ?`, pseudonym, requested)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return nil
		}
		return db.audit(ctx, tx, db.now(), "forwarder", "unit.erase.clickhouse", "unit", pseudonym, nil, report)
	})
	return internal(op, err)
}
