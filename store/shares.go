package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

// ShareTokenPrefix starts every share-link token, so that a leaked one is
// recognisable (and told apart from an API key).
const ShareTokenPrefix = "lsh_"

// MaxShareLifetime bounds how long a share link may live.
const MaxShareLifetime = 366 * 24 * time.Hour

const shareColumns = `id, experiment, created_by, created_at, expires_at, revoked_at`

func scanShare(s interface{ Scan(...any) error }) (*experiment.ShareLink, error) {
	var l experiment.ShareLink
	var revoked sql.NullTime
	if err := s.Scan(&l.ID, &l.Experiment, &l.CreatedBy, &l.CreatedAt, &l.ExpiresAt, &revoked); err != nil {
		return nil, err
	}
	l.CreatedAt, l.ExpiresAt = l.CreatedAt.UTC(), l.ExpiresAt.UTC()
	if revoked.Valid {
		t := revoked.Time.UTC()
		l.RevokedAt = &t
	}
	return &l, nil
}

// CreateShareLink creates a link to the report of experiment key that expires
// after lifetime (at most MaxShareLifetime), and returns it with its token, which
// is shown only now: the store keeps its SHA-256 alone.
func (db *DB) CreateShareLink(ctx context.Context, actor, key string, lifetime time.Duration) (*experiment.ShareLink, string, error) {
	const op = "store.CreateShareLink"
	if lifetime <= 0 || lifetime > MaxShareLifetime {
		return nil, "", experiment.E(op, experiment.Invalid, experiment.Field("expires_in"),
			experiment.Errorf("must be more than 0 and at most 366d, got %s", lifetime))
	}
	if _, err := db.GetExperiment(ctx, key); err != nil {
		return nil, "", experiment.E(op, err)
	}
	b := make([]byte, 28)
	if _, err := io.ReadFull(db.opt.Random, b); err != nil {
		return nil, "", internal(op, err)
	}
	token := ShareTokenPrefix + strings.ToLower(secretEncoding.EncodeToString(b[:20]))
	now := db.now()
	if actor == "" {
		actor = "system"
	}
	l := &experiment.ShareLink{ID: "share_" + hex.EncodeToString(b[20:]), Experiment: key, CreatedBy: actor, CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO share_links (id, experiment, hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			l.ID, l.Experiment, hashSecret(token), l.CreatedBy, l.CreatedAt, l.ExpiresAt); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "share.create", "share", l.ID, nil, l)
	})
	if err != nil {
		return nil, "", internal(op, err)
	}
	return l, token, nil
}

var errBadShare = experiment.Errorf("this link is unknown, expired or revoked; ask for a new one")

// ShareLinkByToken returns the live link whose token is given; an unknown,
// expired or revoked token is NotFound (the same answer for all three, so the
// answer tells nothing about tokens).
func (db *DB) ShareLinkByToken(ctx context.Context, token string) (*experiment.ShareLink, error) {
	const op = "store.ShareLinkByToken"
	if !strings.HasPrefix(token, ShareTokenPrefix) {
		return nil, experiment.E(op, experiment.NotFound, errBadShare)
	}
	l, err := scanShare(db.db.QueryRowContext(ctx, `SELECT `+shareColumns+` FROM share_links WHERE hash = ?`, hashSecret(token)))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !l.Live(db.now())) {
		return nil, experiment.E(op, experiment.NotFound, errBadShare)
	}
	if err != nil {
		return nil, internal(op, err)
	}
	return l, nil
}

// ListShareLinks returns the links of experiment key, revoked and expired ones
// included, newest first.
func (db *DB) ListShareLinks(ctx context.Context, key string) ([]*experiment.ShareLink, error) {
	return queryAll(ctx, db.db, "store.ListShareLinks", scanShare,
		`SELECT `+shareColumns+` FROM share_links WHERE experiment = ? ORDER BY created_at DESC, id`, key)
}

// RevokeShareLink revokes the link with the id; it stops working at once.
// Revoking a revoked link does nothing; an unknown id is NotFound.
func (db *DB) RevokeShareLink(ctx context.Context, actor, id string) error {
	const op = "store.RevokeShareLink"
	err := db.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanShare(tx.QueryRowContext(ctx, `SELECT `+shareColumns+` FROM share_links WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return experiment.E(experiment.NotFound, experiment.Field("id"), experiment.Errorf("share link %q not found", id))
		}
		if err != nil || old.RevokedAt != nil {
			return err
		}
		now := db.now()
		l := *old
		l.RevokedAt = &now
		if _, err := tx.ExecContext(ctx, `UPDATE share_links SET revoked_at = ? WHERE id = ?`, now, id); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "share.revoke", "share", id, old, &l)
	})
	return internal(op, err)
}
