package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Result snapshots: the results documents the results service computes, kept
// so that a report can be reproduced. The store keeps them; it does not
// compute them.

// SaveSnapshot stores the document doc(id) of a kind ("experiment" or
// "holdout") and subject under a new id from result_snapshot_id, in one
// transaction, and returns the id.
func (db *DB) SaveSnapshot(ctx context.Context, kind, subject string, computedAt time.Time, inputHash, codeVersion string, doc func(id int64) ([]byte, error)) (int64, error) {
	const op = "store.SaveSnapshot"
	var id int64
	err := db.outputTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT nextval('result_snapshot_id')`).Scan(&id); err != nil {
			return err
		}
		d, err := doc(id)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO result_snapshots (id, kind, subject, computed_at, input_hash, code_version, doc)
VALUES (?, ?, ?, ?, ?, ?, ?)`, id, kind, subject, computedAt, inputHash, codeVersion, string(d))
		return err
	})
	if err != nil {
		return 0, internal(op, err)
	}
	return id, nil
}

// SnapshotDoc returns the document of an experiment's ("experiment") or a
// holdout's ("holdout") snapshot id; NotFound when id is not one of subject's.
func (db *DB) SnapshotDoc(ctx context.Context, kind, subject string, id int64) ([]byte, error) {
	const op = "store.SnapshotDoc"
	var doc jsonText
	err := db.db.QueryRowContext(ctx, `SELECT doc FROM result_snapshots WHERE id = ? AND kind = ? AND subject = ?`, id, kind, subject).Scan(&doc)
	if err == sql.ErrNoRows {
		return nil, experiment.E(op, experiment.NotFound, experiment.Field("snapshot"),
			experiment.Errorf("%s %q has no result snapshot %d", kind, subject, id))
	}
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	return doc, nil
}

// SnapshotInfo lists a snapshot without its document.
type SnapshotInfo struct {
	ID          int64     `json:"id"`
	ComputedAt  time.Time `json:"computed_at"`
	InputHash   string    `json:"input_hash"`
	CodeVersion string    `json:"code_version"`
}

// ResultSnapshots lists the snapshots of an experiment or holdout, newest first.
func (db *DB) ResultSnapshots(ctx context.Context, kind, subject string, limit int) ([]SnapshotInfo, error) {
	const op = "store.ResultSnapshots"
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.db.QueryContext(ctx, `SELECT id, computed_at, input_hash, code_version FROM result_snapshots
WHERE kind = ? AND subject = ? ORDER BY id DESC LIMIT ?`, kind, subject, limit)
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	defer rows.Close()
	out := []SnapshotInfo{}
	for rows.Next() {
		var s SnapshotInfo
		if err := rows.Scan(&s.ID, &s.ComputedAt, &s.InputHash, &s.CodeVersion); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		s.ComputedAt = s.ComputedAt.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// Now is the store's clock (Options.Now), in UTC to the microsecond.
func (db *DB) Now() time.Time { return db.now() }
