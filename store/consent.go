package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Consent and data-subject rights. A unit's consent is a list of versions
// (unit_consent); the latest is in force. Recording a lower tier purges, in the
// same transaction, what the new tier no longer allows:
//
//   - below tier 3 (enhanced): the unit's attributes (unit_attributes);
//   - below tier 2 (personalization): its stored history, i.e. the "item" property
//     of its events (the events stay, with their type, time and value, as
//     experiment outcomes), and the unit is marked reset (unit_profile_resets), so
//     that models trained before then serve it as unknown.
//
// PurgeWithdrawn repeats that purge for every unit whose consent is below a tier,
// for what was ingested after the withdrawal; lift serve runs it hourly.

// ConsentChange is the answer to RecordConsent: the new version and what it purged.
type ConsentChange struct {
	Consent experiment.Consent `json:"consent"`
	Purged  Purged             `json:"purged"`
}

// Purged counts what a withdrawal, a reset or an erasure removed.
type Purged struct {
	Attributes   int64 `json:"attributes"`    // unit_attributes rows deleted
	ItemHistory  int64 `json:"item_history"`  // events whose "item" property was removed
	Events       int64 `json:"events"`        // events deleted (erasure only)
	Consents     int64 `json:"consents"`      // consent versions deleted (erasure only)
	Exposures    int64 `json:"exposures"`     // exposures pseudonymized (erasure only)
	Decisions    int64 `json:"decisions"`     // decisions pseudonymized (erasure only)
	AuditEntries int64 `json:"audit_entries"` // audit entries of the unit pseudonymized (erasure only)
}

// RecordConsent appends a version of c.Unit's consent (its version is one more
// than the latest stored) with its audit entry ("unit.consent"), and purges what
// the new tier no longer allows, all in one transaction. GrantedAt defaults to now.
func (db *DB) RecordConsent(ctx context.Context, actor string, c experiment.Consent) (*ConsentChange, error) {
	const op = "store.RecordConsent"
	if err := c.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	now := db.now()
	c.RecordedAt = now
	if c.GrantedAt.IsZero() {
		c.GrantedAt = now
	}
	c.GrantedAt = c.GrantedAt.UTC()
	for _, p := range []*[]string{&c.Purposes, &c.OptOutCategories, &c.Channels} {
		if *p == nil {
			*p = []string{}
		}
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	out := &ConsentChange{}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		prev, err := latestConsent(ctx, tx, c.Unit)
		if err != nil {
			return err
		}
		c.Version = 1
		if prev != nil {
			c.Version = prev.Version + 1
		}
		purposes, _ := json.Marshal(c.Purposes)
		optOut, _ := json.Marshal(c.OptOutCategories)
		channels, _ := json.Marshal(c.Channels)
		if _, err := tx.ExecContext(ctx, `INSERT INTO unit_consent VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Unit, c.Version, c.Tier, string(purposes), string(optOut), string(channels), c.PolicyID, c.PolicyVersion, c.GrantedAt, c.RecordedAt); err != nil {
			return err
		}
		if out.Purged, err = purgeBelow(ctx, tx, c.Unit, c.Tier, now); err != nil {
			return err
		}
		var before any
		if prev != nil {
			before = prev
		}
		return db.audit(ctx, tx, now, actor, "unit.consent", "unit", c.Unit, before, &c)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	db.noteUnit(ctx, c.Unit, "", time.Time{})
	out.Consent = c
	return out, nil
}

// purgeBelow removes what tier no longer allows of unit (see the comment above).
func purgeBelow(ctx context.Context, tx *sql.Tx, unit string, tier int, now time.Time) (Purged, error) {
	var p Purged
	if tier < experiment.ConsentEnhanced {
		r, err := tx.ExecContext(ctx, `DELETE FROM unit_attributes WHERE unit = ?`, unit)
		if err != nil {
			return p, err
		}
		p.Attributes, _ = r.RowsAffected()
	}
	if tier < experiment.ConsentPersonalization {
		n, err := clearHistory(ctx, tx, unit, now)
		if err != nil {
			return p, err
		}
		p.ItemHistory = n
	}
	return p, nil
}

// clearHistory removes the "item" property of unit's events and marks it reset.
func clearHistory(ctx context.Context, tx *sql.Tx, unit string, now time.Time) (int64, error) {
	r, err := tx.ExecContext(ctx, `UPDATE events SET properties = json_merge_patch(properties, '{"item": null}')
WHERE unit = ? AND json_extract_string(properties, '$.item') IS NOT NULL`, unit)
	if err != nil {
		return 0, fmt.Errorf("clearing item history: %w", err)
	}
	n, _ := r.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO unit_profile_resets VALUES (?, ?) ON CONFLICT (unit) DO UPDATE SET reset_at = excluded.reset_at`, unit, now); err != nil {
		return 0, err
	}
	return n, nil
}

const consentCols = `unit, version, tier, purposes, opt_out, channels, policy_id, policy_version, granted_at, recorded_at`

func scanConsents(rows *sql.Rows) ([]experiment.Consent, error) {
	defer rows.Close()
	var out []experiment.Consent
	for rows.Next() {
		var c experiment.Consent
		var purposes, optOut, channels string
		if err := rows.Scan(&c.Unit, &c.Version, &c.Tier, &purposes, &optOut, &channels, &c.PolicyID, &c.PolicyVersion, &c.GrantedAt, &c.RecordedAt); err != nil {
			return nil, err
		}
		if err := errors.Join(json.Unmarshal([]byte(purposes), &c.Purposes), json.Unmarshal([]byte(optOut), &c.OptOutCategories),
			json.Unmarshal([]byte(channels), &c.Channels)); err != nil {
			return nil, fmt.Errorf("consent of %q v%d: %w", c.Unit, c.Version, err)
		}
		c.GrantedAt, c.RecordedAt = c.GrantedAt.UTC(), c.RecordedAt.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

func latestConsent(ctx context.Context, q queryer, unit string) (*experiment.Consent, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+consentCols+` FROM unit_consent WHERE unit = ? ORDER BY version DESC LIMIT 1`, unit)
	if err != nil {
		return nil, err
	}
	cs, err := scanConsents(rows)
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	return &cs[0], nil
}

// ConsentHistory returns every version of unit's consent, oldest first (none: an
// empty list).
func (db *DB) ConsentHistory(ctx context.Context, unit string) ([]experiment.Consent, error) {
	const op = "store.ConsentHistory"
	rows, err := db.db.QueryContext(ctx, `SELECT `+consentCols+` FROM unit_consent WHERE unit = ? ORDER BY version`, unit)
	if err != nil {
		return nil, internal(op, err)
	}
	cs, err := scanConsents(rows)
	if cs == nil {
		cs = []experiment.Consent{}
	}
	return cs, internal(op, err)
}

// UnitState is what a decision needs to know of a unit beyond the request.
type UnitState struct {
	Consent *experiment.Consent // the consent in force; nil when none was recorded
	ResetAt time.Time           // last profile reset or withdrawal below tier 2; zero if none
	Erased  bool                // the unit id was erased (and may have come back since)
	// ErasedAt is when; models trained before it must not use its vector.
	ErasedAt time.Time
}

// UnitState returns the stored consent, last reset and erasure of unit. The
// database keeps in memory which units have a consent record or a reset and the
// erased pseudonyms (read on first use, kept current by this process's writes:
// lift serve is the file's one writer), so a unit without either costs no
// query; one with them costs two.
func (db *DB) UnitState(ctx context.Context, unit string) (UnitState, error) {
	const op = "store.UnitState"
	var s UnitState
	if err := db.loadUnitIndex(ctx); err != nil {
		return s, internal(op, err)
	}
	ps, err := db.pseudonymIfKeyed(ctx, unit)
	if err != nil {
		return s, internal(op, err)
	}
	db.unitMu.RLock()
	at, erased := db.erased[ps]
	_, stated := db.stated[unit]
	db.unitMu.RUnlock()
	if erased && ps != "" {
		s.Erased, s.ErasedAt = true, at
	}
	if !stated {
		return s, nil
	}
	var reset sql.NullTime
	if err := db.db.QueryRowContext(ctx, `SELECT (SELECT reset_at FROM unit_profile_resets WHERE unit = ?)`, unit).Scan(&reset); err != nil {
		return s, internal(op, err)
	}
	if reset.Valid {
		s.ResetAt = reset.Time.UTC()
	}
	if s.Consent, err = latestConsent(ctx, db.db, unit); err != nil {
		return s, internal(op, err)
	}
	return s, nil
}

// loadUnitIndex reads, once, the units with a consent record or a reset and the
// erased pseudonyms.
func (db *DB) loadUnitIndex(ctx context.Context) error {
	db.unitMu.RLock()
	done := db.stated != nil
	db.unitMu.RUnlock()
	if done {
		return nil
	}
	db.unitMu.Lock()
	defer db.unitMu.Unlock()
	if db.stated != nil {
		return nil
	}
	stated, erased := map[string]struct{}{}, map[string]time.Time{}
	rows, err := db.db.QueryContext(ctx, `SELECT unit FROM unit_consent UNION SELECT unit FROM unit_profile_resets`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return err
		}
		stated[u] = struct{}{}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if rows, err = db.db.QueryContext(ctx, `SELECT pseudonym, erased_at FROM unit_erasures`); err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var at time.Time
		if err := rows.Scan(&p, &at); err != nil {
			return err
		}
		erased[p] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		return err
	}
	db.stated, db.erased = stated, erased
	return nil
}

// noteUnit records, after a commit, that unit has a consent record or a reset
// (and, with ps set, that ps was erased at at).
func (db *DB) noteUnit(ctx context.Context, unit, ps string, at time.Time) {
	if db.loadUnitIndex(ctx) != nil {
		db.unitMu.Lock()
		db.stated, db.erased = nil, nil // read again on next use
		db.unitMu.Unlock()
		return
	}
	db.unitMu.Lock()
	defer db.unitMu.Unlock()
	if unit != "" {
		db.stated[unit] = struct{}{}
	}
	if ps != "" {
		if _, ok := db.erased[ps]; !ok {
			db.erased[ps] = at
		}
	}
}

// ---- pseudonyms ----

// Pseudonym returns the keyed pseudonym that replaces unit in exposures and
// decisions once it is erased: "erased_" and the first 32 hex digits of
// HMAC-SHA256(key, unit), with the database's pseudonym key (made on first use
// from Options.Random). The same unit always gets the same pseudonym, so erasure
// is idempotent and an erased unit's rows stay one unit in every count.
func (db *DB) Pseudonym(ctx context.Context, unit string) (string, error) {
	const op = "store.Pseudonym"
	key, err := db.pseudonymKey(ctx, true)
	if err != nil {
		return "", internal(op, err)
	}
	return pseudonym(key, unit), nil
}

func pseudonym(key []byte, unit string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(unit))
	return "erased_" + hex.EncodeToString(m.Sum(nil))[:32]
}

// pseudonymIfKeyed is the pseudonym of unit, or "" when no key was made yet (no
// unit was erased).
func (db *DB) pseudonymIfKeyed(ctx context.Context, unit string) (string, error) {
	key, err := db.pseudonymKey(ctx, false)
	if err != nil || key == nil {
		return "", err
	}
	return pseudonym(key, unit), nil
}

// pseudonymKey reads the key, making it when create is set and there is none.
func (db *DB) pseudonymKey(ctx context.Context, create bool) ([]byte, error) {
	db.cacheMu.RLock()
	k, none := db.psKey, db.psNoKey
	db.cacheMu.RUnlock()
	if k != nil {
		return k, nil
	}
	if none && !create {
		return nil, nil
	}
	db.cacheMu.Lock()
	defer db.cacheMu.Unlock()
	if db.psKey != nil {
		return db.psKey, nil
	}
	if db.psNoKey && !create {
		return nil, nil // this process, the file's one writer, makes the key: none yet
	}
	var key []byte
	err := db.db.QueryRowContext(ctx, `SELECT key FROM pseudonym_key WHERE id = 1`).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		if !create {
			db.psNoKey = true
			return nil, nil
		}
		key = make([]byte, 32)
		if _, err := io.ReadFull(db.opt.Random, key); err != nil {
			return nil, fmt.Errorf("making the pseudonym key: %w", err)
		}
		if _, err := db.db.ExecContext(ctx, `INSERT INTO pseudonym_key VALUES (1, ?)`, key); err != nil {
			return nil, fmt.Errorf("storing the pseudonym key: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	db.psKey = key
	return key, nil
}
