package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/liftlab/lift/experiment"
)

// ConsoleSession is one signed-in browser of the console: the key it signed in
// with (by id) and its CSRF token, until Expires.
type ConsoleSession struct {
	KeyID   string
	CSRF    string
	Expires time.Time
}

// StartConsoleSession records a session under the SHA-256 of its id (the
// cookie's value, which is not stored), and drops the sessions that have
// expired by now (the server's clock).
func (db *DB) StartConsoleSession(ctx context.Context, id string, se ConsoleSession, now time.Time) error {
	const op = "store.StartConsoleSession"
	return internal(op, db.outputTx(ctx, func(tx *sql.Tx) error { // no analysis reads sessions: DataVersion stays
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at <= ?`, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (hash, key_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			hashSecret(id), se.KeyID, se.CSRF, now, se.Expires.UTC())
		return err
	}))
}

// GetConsoleSession returns the live session of id at now; an unknown or
// expired one is NotFound (and an expired one is dropped).
func (db *DB) GetConsoleSession(ctx context.Context, id string, now time.Time) (*ConsoleSession, error) {
	const op = "store.GetConsoleSession"
	h := hashSecret(id)
	var se ConsoleSession
	err := db.db.QueryRowContext(ctx, `SELECT key_id, csrf, expires_at FROM console_sessions WHERE hash = ?`, h).Scan(&se.KeyID, &se.CSRF, &se.Expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(op, experiment.NotFound, experiment.Errorf("no such session"))
	}
	if err != nil {
		return nil, internal(op, err)
	}
	se.Expires = se.Expires.UTC()
	if !now.Before(se.Expires) {
		if err := db.EndConsoleSession(ctx, id); err != nil {
			return nil, experiment.E(op, err)
		}
		return nil, experiment.E(op, experiment.NotFound, experiment.Errorf("the session has expired"))
	}
	return &se, nil
}

// EndConsoleSession drops the session of id; ending an unknown one is harmless.
func (db *DB) EndConsoleSession(ctx context.Context, id string) error {
	_, err := db.db.ExecContext(ctx, `DELETE FROM console_sessions WHERE hash = ?`, hashSecret(id))
	return internal("store.EndConsoleSession", err)
}
