package store

import (
	"context"
	"database/sql"
	"errors"

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
func (db *DB) SetForwardCursor(ctx context.Context, target string, seq int64) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO forward_cursors (target, seq, updated_at) VALUES (?, ?, ?)
ON CONFLICT (target) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`, target, seq, db.now())
	if err != nil {
		return internal("store.SetForwardCursor", err)
	}
	return nil
}
