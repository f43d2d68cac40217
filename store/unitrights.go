package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/liftlab/lift/experiment"
)

// UnitData is everything Lift holds about one unit (GET /v1/units/ID/data).
type UnitData struct {
	Unit       string                `json:"unit"`
	Exposures  []experiment.Exposure `json:"exposures"`
	Events     []experiment.Event    `json:"events"`
	Decisions  []DecisionRecord      `json:"decisions"`
	Attributes map[string]any        `json:"attributes"`
	Consent    []experiment.Consent  `json:"consent"` // every version, oldest first
	ResetAt    *time.Time            `json:"profile_reset_at,omitempty"`
	Erasure    *ErasureState         `json:"erasure,omitempty"` // set once the id was erased
}

// ErasureState is where the erasure of a unit stands.
type ErasureState struct {
	Pseudonym string    `json:"pseudonym"`
	ErasedAt  time.Time `json:"erased_at"` // the first erasure
	// ClickHouse is "pending" while the forwarder has still to erase the unit
	// there, "done" once it has (the audit entry "unit.erase.clickhouse" under
	// the pseudonym says what it removed), empty when nothing was forwarded.
	ClickHouse string `json:"clickhouse,omitempty"`
}

// DecisionRecord is a stored decision as exported to its unit.
type DecisionRecord struct {
	ID           string          `json:"decision_id"`
	TS           time.Time       `json:"ts"`
	Journey      string          `json:"journey"`
	Experiment   string          `json:"experiment"`
	Unit         string          `json:"unit,omitempty"` // set by GetDecision
	Variant      string          `json:"variant,omitempty"`
	Policy       string          `json:"policy"`
	Reason       string          `json:"reason,omitempty"`
	Items        json.RawMessage `json:"items"`
	ModelVersion string          `json:"model_version,omitempty"`
	Provenance   json.RawMessage `json:"provenance,omitempty"` // why these items (journey.Provenance)
}

// ExportUnit returns everything stored about unit, read in one transaction (a
// consistent snapshot). A unit Lift knows nothing of gets empty lists.
func (db *DB) ExportUnit(ctx context.Context, unit string) (*UnitData, error) {
	const op = "store.ExportUnit"
	if p := experiment.IdentProblem(unit); p != "" || unit == "" {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("unit"), experiment.Errorf("must be a non-empty UTF-8 string without control characters"))
	}
	ps, err := db.pseudonymIfKeyed(ctx, unit)
	if err != nil {
		return nil, internal(op, err)
	}
	out := &UnitData{Unit: unit, Exposures: []experiment.Exposure{}, Events: []experiment.Event{}, Decisions: []DecisionRecord{}, Attributes: map[string]any{}}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT experiment, coalesce(variant, ''), ts, in_holdout, coalesce(holdout_version, 0), coalesce(source, '') FROM exposures WHERE unit = ? ORDER BY ts`, unit)
		if err != nil {
			return err
		}
		for rows.Next() {
			x := experiment.Exposure{Unit: unit}
			if err := rows.Scan(&x.Experiment, &x.Variant, &x.TS, &x.InHoldout, &x.HoldoutVersion, &x.Source); err != nil {
				rows.Close()
				return err
			}
			x.TS = x.TS.UTC()
			out.Exposures = append(out.Exposures, x)
		}
		rows.Close()
		if rows, err = tx.QueryContext(ctx, `SELECT event_id, type, ts, value, properties FROM events WHERE unit = ? ORDER BY ts, event_id`, unit); err != nil {
			return err
		}
		for rows.Next() {
			e := experiment.Event{Unit: unit}
			var props jsonText
			if err := rows.Scan(&e.EventID, &e.Type, &e.TS, &e.Value, &props); err != nil {
				rows.Close()
				return err
			}
			e.TS, e.Properties = e.TS.UTC(), json.RawMessage(props)
			out.Events = append(out.Events, e)
		}
		rows.Close()
		if rows, err = tx.QueryContext(ctx, `SELECT decision_id, ts, journey, experiment, coalesce(variant, ''), policy, coalesce(reason, ''), items, coalesce(model_version, ''), provenance
FROM journey_decisions WHERE unit = ? ORDER BY ts, decision_id`, unit); err != nil {
			return err
		}
		for rows.Next() {
			var d DecisionRecord
			var items string
			var prov sql.NullString
			if err := rows.Scan(&d.ID, &d.TS, &d.Journey, &d.Experiment, &d.Variant, &d.Policy, &d.Reason, &items, &d.ModelVersion, &prov); err != nil {
				rows.Close()
				return err
			}
			d.TS, d.Items = d.TS.UTC(), json.RawMessage(items)
			if prov.Valid {
				d.Provenance = json.RawMessage(prov.String)
			}
			out.Decisions = append(out.Decisions, d)
		}
		rows.Close()
		var attrs jsonText
		switch err := tx.QueryRowContext(ctx, `SELECT attrs FROM unit_attributes WHERE unit = ?`, unit).Scan(&attrs); {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(attrs, &out.Attributes); err != nil {
				return fmt.Errorf("attributes: %w", err)
			}
		}
		if rows, err = tx.QueryContext(ctx, `SELECT `+consentCols+` FROM unit_consent WHERE unit = ? ORDER BY version`, unit); err != nil {
			return err
		}
		if out.Consent, err = scanConsents(rows); err != nil {
			return err
		}
		if out.Consent == nil {
			out.Consent = []experiment.Consent{}
		}
		var reset sql.NullTime
		if err := tx.QueryRowContext(ctx, `SELECT reset_at FROM unit_profile_resets WHERE unit = ?`, unit).Scan(&reset); err != nil && err != sql.ErrNoRows {
			return err
		}
		if reset.Valid {
			t := reset.Time.UTC()
			out.ResetAt = &t
		}
		if ps == "" {
			return nil
		}
		var at sql.NullTime
		var pending, done bool
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT max(erased_at) FROM unit_erasures WHERE pseudonym = $1),
  EXISTS (SELECT 1 FROM forward_erasures WHERE pseudonym = $1),
  EXISTS (SELECT 1 FROM audit WHERE entity = 'unit' AND key = $1 AND action = 'unit.erase.clickhouse')`, ps).Scan(&at, &pending, &done); err != nil {
			return err
		}
		if at.Valid {
			out.Erasure = &ErasureState{Pseudonym: ps, ErasedAt: at.Time.UTC()}
			switch {
			case pending:
				out.Erasure.ClickHouse = "pending"
			case done:
				out.Erasure.ClickHouse = "done"
			}
		}
		return nil
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// Erasure is the answer to EraseUnit.
type Erasure struct {
	Pseudonym string    `json:"pseudonym"` // what replaced the unit's id in exposures and decisions
	ErasedAt  time.Time `json:"erased_at"` // the first erasure of this id
	Already   bool      `json:"already_erased"`
	Removed   Purged    `json:"removed"` // what this call removed (zeros when nothing was left)
	// ClickHouse is "pending" when rows were forwarded to a warehouse
	// (a forward cursor exists): the forwarder still has to delete the unit's
	// rows there and store its exposures under the pseudonym (PendingErasures).
	// Empty when nothing was ever forwarded.
	ClickHouse string `json:"clickhouse,omitempty"`
}

// EraseUnit erases unit, in one transaction with its audit entry ("unit.erase",
// keyed by the pseudonym, never the id):
//
//   - deleted: its events, attributes, consent history and profile reset;
//   - pseudonymized (the id replaced by Pseudonym(unit)): its exposures and journey
//     decisions, so that every experiment keeps its counts and past results stay
//     reproducible, and its earlier audit entries (key replaced, before/after
//     cleared, since they hold the consent documents);
//   - recorded: the pseudonym and the time, in unit_erasures, so that decisions
//     serve the id as unknown to any model trained before then; and, when rows
//     are forwarded to a warehouse (a forward cursor exists), the id and its
//     pseudonym in forward_erasures, the one place the id stays, until the
//     forwarder has erased it there too (FinishErasure).
//
// Decisions keep the items they showed (the journey's exposure Gini counts them)
// and their policy, but lose their inputs (the provenance: session items, consent). Erasing again is harmless:
// it removes what arrived since (nothing, usually) and reports Already.
// Exposures or events of the unit still in flight when EraseUnit runs commit
// after it under the id; erase again once the unit's clients have stopped.
func (db *DB) EraseUnit(ctx context.Context, actor, unit string) (*Erasure, error) {
	const op = "store.EraseUnit"
	if p := experiment.IdentProblem(unit); p != "" || unit == "" {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("unit"), experiment.Errorf("must be a non-empty UTF-8 string without control characters"))
	}
	ps, err := db.Pseudonym(ctx, unit)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	now := db.now()
	out := &Erasure{Pseudonym: ps, ErasedAt: now}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	db.fwdMu.Lock()
	defer db.fwdMu.Unlock()
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var fwd bool
		if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM forward_cursors`).Scan(&fwd); err != nil {
			return err
		}
		if fwd {
			if _, err := tx.ExecContext(ctx, `INSERT INTO forward_erasures VALUES (?, ?, ?)
ON CONFLICT (pseudonym) DO UPDATE SET requested_at = excluded.requested_at`, ps, unit, now); err != nil {
				return err
			}
			out.ClickHouse = "pending"
		}
		var first sql.NullTime
		if err := tx.QueryRowContext(ctx, `SELECT erased_at FROM unit_erasures WHERE pseudonym = ?`, ps).Scan(&first); err != nil && err != sql.ErrNoRows {
			return err
		}
		if first.Valid {
			out.Already, out.ErasedAt = true, first.Time.UTC()
		} else if _, err := tx.ExecContext(ctx, `INSERT INTO unit_erasures VALUES (?, ?)`, ps, now); err != nil {
			return err
		}
		r := &out.Removed
		for _, s := range []struct {
			n   *int64
			sql string
		}{
			{&r.Events, `DELETE FROM events WHERE unit = ?`},
			{&r.Attributes, `DELETE FROM unit_attributes WHERE unit = ?`},
			{&r.Consents, `DELETE FROM unit_consent WHERE unit = ?`},
			{new(int64), `DELETE FROM unit_profile_resets WHERE unit = ?`},
			{&r.Exposures, `UPDATE exposures SET unit = $2 WHERE unit = $1`},
			{&r.Decisions, `UPDATE journey_decisions SET unit = $2, provenance = NULL WHERE unit = $1`},
			{&r.AuditEntries, `UPDATE audit SET key = $2, before = NULL, after = NULL WHERE entity = 'unit' AND key = $1`},
		} {
			args := []any{unit}
			if s.sql[0] == 'U' {
				args = append(args, ps)
			}
			res, err := tx.ExecContext(ctx, s.sql, args...)
			if err != nil {
				return fmt.Errorf("%s: %w", s.sql, err)
			}
			*s.n, _ = res.RowsAffected()
		}
		return db.audit(ctx, tx, now, actor, "unit.erase", "unit", ps, nil, out)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	db.noteUnit(ctx, "", ps, out.ErasedAt)
	return out, nil
}

// ProfileReset is the answer to ResetProfile.
type ProfileReset struct {
	Unit    string    `json:"unit"`
	ResetAt time.Time `json:"reset_at"`
	Removed Purged    `json:"removed"`
}

// ResetProfile clears unit's personalization profile, with its audit entry
// ("unit.reset"), in one transaction: the "item" property of its events is
// removed (the events stay, so experiment results do not change) and the unit is
// marked reset, so that models trained before then serve it as unknown. Its
// exposures, decisions, attributes and consent are kept.
func (db *DB) ResetProfile(ctx context.Context, actor, unit string) (*ProfileReset, error) {
	const op = "store.ResetProfile"
	if p := experiment.IdentProblem(unit); p != "" || unit == "" {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("unit"), experiment.Errorf("must be a non-empty UTF-8 string without control characters"))
	}
	now := db.now()
	out := &ProfileReset{Unit: unit, ResetAt: now}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		n, err := clearHistory(ctx, tx, unit, now)
		if err != nil {
			return err
		}
		out.Removed.ItemHistory = n
		return db.audit(ctx, tx, now, actor, "unit.reset", "unit", unit, nil, out)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	db.noteUnit(ctx, unit, "", time.Time{})
	return out, nil
}

// PurgeWithdrawn applies, to every unit whose consent in force is below tier 3
// (or 2), the purge RecordConsent makes at the withdrawal, for what arrived
// since: attributes and item history sent after the withdrawal. It returns the
// totals. It is idempotent, and lift serve runs it hourly (so a withdrawn signal
// sent later is kept at most an hour).
func (db *DB) PurgeWithdrawn(ctx context.Context) (Purged, error) {
	const op = "store.PurgeWithdrawn"
	var p Purged
	err := db.tx(ctx, func(tx *sql.Tx) error {
		const current = `(SELECT unit, arg_max(tier, version) AS tier FROM unit_consent GROUP BY unit)`
		r, err := tx.ExecContext(ctx, `DELETE FROM unit_attributes WHERE unit IN (SELECT unit FROM `+current+` WHERE tier < 3)`)
		if err != nil {
			return err
		}
		p.Attributes, _ = r.RowsAffected()
		r, err = tx.ExecContext(ctx, `UPDATE events SET properties = json_merge_patch(properties, '{"item": null}')
WHERE unit IN (SELECT unit FROM `+current+` WHERE tier < 2) AND json_extract_string(properties, '$.item') IS NOT NULL`)
		if err != nil {
			return err
		}
		p.ItemHistory, _ = r.RowsAffected()
		return nil
	})
	return p, internal(op, err)
}
