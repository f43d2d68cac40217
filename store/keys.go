package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

// KeyPrefix starts every API key secret.
const KeyPrefix = "lift_"

// bootstrapKeyName names the admin key created by EnsureAdminKey.
const bootstrapKeyName = "bootstrap-admin"

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// hashSecret returns the hex SHA-256 of an API key secret: all that is stored.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// newSecret returns "lift_" followed by 32 base32 characters (160 random bits).
func (db *DB) newSecret() (string, error) {
	b := make([]byte, 20)
	if _, err := io.ReadFull(db.opt.Random, b); err != nil {
		return "", err
	}
	return KeyPrefix + strings.ToLower(secretEncoding.EncodeToString(b)), nil
}

func (db *DB) newKeyID() (string, error) {
	b := make([]byte, 8)
	if _, err := io.ReadFull(db.opt.Random, b); err != nil {
		return "", err
	}
	return "key_" + hex.EncodeToString(b), nil
}

// CreateKey creates an API key with the role and returns its secret, which is shown
// only now: the store keeps its SHA-256 alone. Names are unique among live keys
// (Conflict otherwise): the name is what logs and the audit trail show.
func (db *DB) CreateKey(ctx context.Context, actor, name string, role experiment.Role) (string, *experiment.APIKey, error) {
	const op = "store.CreateKey"
	if !experiment.ValidKey(name) {
		return "", nil, experiment.E(op, experiment.Invalid, experiment.Field("name"),
			experiment.Errorf("must be 1-128 letters, digits, '_', '.' or '-', got %q", name))
	}
	if !role.Valid() {
		return "", nil, experiment.E(op, experiment.Invalid, experiment.Field("role"),
			experiment.Errorf(`must be "admin", "analyst", "viewer" or "ingest", got %q`, role))
	}
	secret, err := db.newSecret()
	if err != nil {
		return "", nil, internal(op, err)
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	var same int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE name = ? AND revoked_at IS NULL`, name).Scan(&same); err != nil {
		return "", nil, internal(op, err)
	}
	if same > 0 {
		return "", nil, experiment.E(op, experiment.Conflict, experiment.Field("name"),
			experiment.Errorf("a live key named %q exists already; choose another name, or revoke that key first", name))
	}
	k, err := db.insertKey(ctx, actor, name, role, secret)
	if err != nil {
		return "", nil, internal(op, err)
	}
	return secret, k, nil
}

// insertKey stores a key for secret; the caller holds regMu.
func (db *DB) insertKey(ctx context.Context, actor, name string, role experiment.Role, secret string) (*experiment.APIKey, error) {
	id, err := db.newKeyID()
	if err != nil {
		return nil, err
	}
	now := db.now()
	prefix := secret
	if len(prefix) > len(KeyPrefix)+4 {
		prefix = prefix[:len(KeyPrefix)+4]
	}
	k := &experiment.APIKey{ID: id, Name: name, Role: role, Prefix: prefix, Hash: hashSecret(secret), CreatedAt: now}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, name, role, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.Name, string(k.Role), k.Prefix, k.Hash, k.CreatedAt); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "key.create", "key", k.ID, nil, k)
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

const keyColumns = `id, name, role, prefix, hash, created_at, revoked_at`

func scanKey(s interface{ Scan(...any) error }) (*experiment.APIKey, error) {
	var k experiment.APIKey
	var role string
	var revoked sql.NullTime
	if err := s.Scan(&k.ID, &k.Name, &role, &k.Prefix, &k.Hash, &k.CreatedAt, &revoked); err != nil {
		return nil, err
	}
	k.Role = experiment.Role(role)
	k.CreatedAt = k.CreatedAt.UTC()
	if revoked.Valid {
		t := revoked.Time.UTC()
		k.RevokedAt = &t
	}
	return &k, nil
}

var errBadKey = experiment.Errorf("invalid or revoked API key")

// Authenticate returns the live key whose secret is given, or an Unauthorized
// error. The secret is hashed before any lookup, so lookups leak nothing about it;
// authenticated keys are cached in memory until revoked.
func (db *DB) Authenticate(ctx context.Context, secret string) (*experiment.APIKey, error) {
	const op = "store.Authenticate"
	h := hashSecret(secret)
	db.cacheMu.RLock()
	k, ok := db.keyCache[h]
	db.cacheMu.RUnlock()
	if ok {
		c := *k
		return &c, nil
	}
	if secret == "" {
		return nil, experiment.E(op, experiment.Unauthorized, errBadKey)
	}
	k, err := scanKey(db.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, h))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && k.RevokedAt != nil) {
		return nil, experiment.E(op, experiment.Unauthorized, errBadKey)
	}
	if err != nil {
		return nil, internal(op, err)
	}
	db.cacheMu.Lock()
	db.keyCache[h] = k
	db.cacheMu.Unlock()
	c := *k
	return &c, nil
}

// ListKeys returns every key, revoked ones included, oldest first. Secrets are
// never stored, so never listed.
func (db *DB) ListKeys(ctx context.Context) ([]*experiment.APIKey, error) {
	return queryAll(ctx, db.db, "store.ListKeys", scanKey, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
}

// RevokeKey revokes the key with the id; it stops authenticating at once.
// Revoking a revoked key does nothing; an unknown id is NotFound; the last live
// admin key cannot be revoked (Conflict), so that someone can always administer.
func (db *DB) RevokeKey(ctx context.Context, actor, id string) error {
	const op = "store.RevokeKey"
	db.regMu.Lock()
	defer db.regMu.Unlock()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return experiment.E(experiment.NotFound, experiment.Errorf("API key %q not found", id))
		}
		if err != nil {
			return err
		}
		db.cacheMu.Lock()
		delete(db.keyCache, old.Hash)
		db.cacheMu.Unlock()
		if old.RevokedAt != nil {
			return nil
		}
		if old.Role == experiment.RoleAdmin {
			var admins int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE role = ? AND revoked_at IS NULL`, string(experiment.RoleAdmin)).Scan(&admins); err != nil {
				return err
			}
			if admins <= 1 {
				return experiment.E(experiment.Conflict, experiment.Errorf("key %q is the last live admin key: revoking it would lock every administrator out; create another admin key first", id))
			}
		}
		now := db.now()
		k := *old
		k.RevokedAt = &now
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, now, id); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "key.revoke", "key", id, old, &k)
	})
	return internal(op, err)
}

// EnsureAdminKey makes sure an administrator can log in. With a secret (from
// LIFT_ADMIN_KEY) it stores that secret as an admin key named "bootstrap-admin"
// unless it is already stored, and returns "". With secret "" it generates an admin
// key when no live admin key exists and returns its secret, to be printed once;
// otherwise it returns "". A given secret that was revoked is a Conflict.
func (db *DB) EnsureAdminKey(ctx context.Context, secret string) (string, error) {
	const op = "store.EnsureAdminKey"
	db.regMu.Lock()
	defer db.regMu.Unlock()
	if secret != "" {
		if len(secret) < 16 {
			return "", experiment.E(op, experiment.Invalid, experiment.Field("LIFT_ADMIN_KEY"),
				experiment.Errorf("must be at least 16 characters, got %d", len(secret)))
		}
		k, err := scanKey(db.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, hashSecret(secret)))
		switch {
		case err == nil && k.RevokedAt != nil:
			return "", experiment.E(op, experiment.Conflict, experiment.Field("LIFT_ADMIN_KEY"),
				experiment.Errorf("this key (id %s) was revoked at %s; set a new LIFT_ADMIN_KEY", k.ID, k.RevokedAt.Format(time.RFC3339)))
		case err == nil && k.Role != experiment.RoleAdmin:
			return "", experiment.E(op, experiment.Conflict, experiment.Field("LIFT_ADMIN_KEY"),
				experiment.Errorf("this secret belongs to key %s with role %s, not admin", k.ID, k.Role))
		case err == nil:
			return "", nil
		case !errors.Is(err, sql.ErrNoRows):
			return "", internal(op, err)
		}
		if _, err := db.insertKey(ctx, "system", bootstrapKeyName, experiment.RoleAdmin, secret); err != nil {
			return "", internal(op, err)
		}
		return "", nil
	}
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL`).Scan(&n); err != nil {
		return "", internal(op, err)
	}
	if n > 0 {
		return "", nil
	}
	s, err := db.newSecret()
	if err != nil {
		return "", internal(op, err)
	}
	if _, err := db.insertKey(ctx, "system", bootstrapKeyName, experiment.RoleAdmin, s); err != nil {
		return "", internal(op, err)
	}
	return s, nil
}
