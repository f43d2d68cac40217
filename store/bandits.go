package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// Bandit state: the weight versions of a bandit experiment, in order, and the
// version at which each unit first entered (see analysis/bandit). Both are
// append-only: a version is never changed, and a unit's first version is
// written once (insert if absent), so a unit's arm is a function of stored
// state that never changes.

// BanditVersions returns the experiment's weight versions in order; version 0,
// the declared weights, is created on first read (or first append) if absent.
func (db *DB) BanditVersions(ctx context.Context, key string) ([]experiment.BanditVersion, error) {
	const op = "store.BanditVersions"
	var out []experiment.BanditVersion
	db.banditMu.Lock()
	defer db.banditMu.Unlock()
	created := false
	// A read once version 0 is stored: it leaves DataVersion as it is.
	err := db.outputTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, created, err = banditVersions(ctx, tx, db, key)
		return err
	})
	if err != nil {
		return nil, experiment.E(op, err)
	}
	if created {
		db.writes.Add(1)
	}
	return out, nil
}

// banditVersions reads the versions of key in tx, storing version 0 when
// there is none (created).
func banditVersions(ctx context.Context, tx *sql.Tx, db *DB, key string) (_ []experiment.BanditVersion, created bool, _ error) {
	rows, err := tx.QueryContext(ctx, `SELECT version, CAST(weights AS VARCHAR), CAST(prob_best AS VARCHAR), burn_in, created_at FROM bandit_versions WHERE experiment = ? ORDER BY version`, key)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []experiment.BanditVersion
	for rows.Next() {
		v := experiment.BanditVersion{Experiment: key}
		var w, p string
		if err := rows.Scan(&v.Version, &w, &p, &v.BurnIn, &v.CreatedAt); err != nil {
			return nil, false, err
		}
		if err := json.Unmarshal([]byte(w), &v.Weights); err != nil {
			return nil, false, err
		}
		if err := json.Unmarshal([]byte(p), &v.ProbBest); err != nil {
			return nil, false, err
		}
		v.CreatedAt = v.CreatedAt.UTC()
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(out) > 0 {
		return out, false, nil
	}
	e, err := db.GetExperiment(ctx, key)
	if err != nil {
		return nil, false, err
	}
	if !e.IsBandit() {
		return nil, false, experiment.E(experiment.Invalid, experiment.Field("experiment"), experiment.Errorf("experiment %q is not a bandit (allocation.kind is not \"bandit\")", key))
	}
	w := e.Weights()
	v0 := experiment.BanditVersion{Experiment: key, Version: 0, Weights: w, ProbBest: w, BurnIn: true, CreatedAt: db.now().UTC()}
	if err := insertBanditVersion(ctx, tx, v0); err != nil {
		return nil, false, err
	}
	return []experiment.BanditVersion{v0}, true, nil
}

func insertBanditVersion(ctx context.Context, tx *sql.Tx, v experiment.BanditVersion) error {
	w, err := json.Marshal(v.Weights)
	if err != nil {
		return err
	}
	p, err := json.Marshal(v.ProbBest)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO bandit_versions (experiment, version, weights, prob_best, burn_in, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		v.Experiment, v.Version, string(w), string(p), v.BurnIn, v.CreatedAt)
	return err
}

// AppendBanditVersion stores the next weight version of experiment key (its
// number is one past the last) and returns it. Invalid, naming weights, when
// their number differs from the experiment's variants.
func (db *DB) AppendBanditVersion(ctx context.Context, key string, weights, probBest []float64, burnIn bool) (experiment.BanditVersion, error) {
	const op = "store.AppendBanditVersion"
	var v experiment.BanditVersion
	db.banditMu.Lock()
	defer db.banditMu.Unlock()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		vs, _, err := banditVersions(ctx, tx, db, key)
		if err != nil {
			return err
		}
		if k := len(vs[0].Weights); len(weights) != k || len(probBest) != k {
			return experiment.E(experiment.Invalid, experiment.Field("weights"), experiment.Errorf("need %d weights and probabilities (one per variant), got %d and %d", k, len(weights), len(probBest)))
		}
		v = experiment.BanditVersion{Experiment: key, Version: vs[len(vs)-1].Version + 1, Weights: weights, ProbBest: probBest, BurnIn: burnIn, CreatedAt: db.now().UTC()}
		return insertBanditVersion(ctx, tx, v)
	})
	if err != nil {
		return experiment.BanditVersion{}, experiment.E(op, err)
	}
	return v, nil
}

// EnterBandit records current as each unit's first version unless one is
// stored, in one transaction, and returns every unit's stored first version
// in the order of units. It is the Sticky of analysis/bandit. Writes of bandit
// state are serialized within the process (lift serve is the one writer), so
// two first entries of one unit agree.
func (db *DB) EnterBandit(ctx context.Context, key string, units []string, current int) ([]int, error) {
	const op = "store.EnterBandit"
	out := make([]int, len(units))
	db.banditMu.Lock()
	defer db.banditMu.Unlock()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		got := make(map[string]int, len(units))
		for lo := 0; lo < len(units); lo += upsertChunk {
			chunk := units[lo:min(lo+upsertChunk, len(units))]
			vals := strings.TrimSuffix(strings.Repeat("(?, ?, ?),", len(chunk)), ",")
			marks := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
			args := make([]any, 0, 3*len(chunk))
			in := make([]any, 0, len(chunk)+1)
			in = append(in, key)
			for _, u := range chunk {
				args = append(args, key, u, current)
				in = append(in, u)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO bandit_units (experiment, unit, version) VALUES `+vals+` ON CONFLICT DO NOTHING`, args...); err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, `SELECT unit, version FROM bandit_units WHERE experiment = ? AND unit IN (`+marks+`)`, in...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var u string
				var v int
				if err := rows.Scan(&u, &v); err != nil {
					rows.Close()
					return err
				}
				got[u] = v
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		for i, u := range units {
			v, ok := got[u]
			if !ok {
				return fmt.Errorf("units[%d]: %q not stored", i, u)
			}
			out[i] = v
		}
		return nil
	})
	if err != nil {
		return nil, experiment.E(op, err)
	}
	return out, nil
}

// BanditUnitVersions returns the first version of every unit that entered
// experiment key.
func (db *DB) BanditUnitVersions(ctx context.Context, key string) (map[string]int, error) {
	const op = "store.BanditUnitVersions"
	rows, err := db.db.QueryContext(ctx, `SELECT unit, version FROM bandit_units WHERE experiment = ?`, key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var u string
		var v int
		if err := rows.Scan(&u, &v); err != nil {
			return nil, experiment.E(op, err)
		}
		out[u] = v
	}
	if err := rows.Err(); err != nil {
		return nil, experiment.E(op, err)
	}
	return out, nil
}
