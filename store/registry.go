package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/liftlab/lift/experiment"
)

// audit writes one audit entry inside tx. before and after are marshalled to JSON
// (nil stays NULL).
func (db *DB) audit(ctx context.Context, tx *sql.Tx, at time.Time, actor, action, entity, key string, before, after any) error {
	if actor == "" {
		actor = "system"
	}
	b, err := jsonOrNil(before)
	if err != nil {
		return err
	}
	a, err := jsonOrNil(after)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (ts, actor, action, entity, key, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		at, actor, action, entity, key, b, a)
	if err != nil {
		return fmt.Errorf("writing audit entry: %w", err)
	}
	return nil
}

func jsonOrNil(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case *experiment.Experiment:
		if x == nil {
			return nil, nil
		}
	case *experiment.Holdout:
		if x == nil {
			return nil, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// jsonText scans a JSON or VARCHAR column into bytes whatever the driver returns.
type jsonText []byte

func (j *jsonText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*j = nil
	case string:
		*j = jsonText(v)
	case []byte:
		*j = append(jsonText(nil), v...)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		*j = b
	}
	return nil
}

// internal wraps an unexpected failure of op.
func internal(op string, err error) error {
	if err == nil {
		return nil
	}
	var le *experiment.Error
	if errors.As(err, &le) {
		return experiment.E(op, err)
	}
	return experiment.E(op, experiment.Internal, err)
}

// queryAll runs query on q and returns every row scanned by scan (an empty, not
// nil, slice when there are none); errors are wrapped with op.
func queryAll[T any](ctx context.Context, q queryer, op string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, internal(op, err)
		}
		out = append(out, v)
	}
	return out, internal(op, rows.Err())
}

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ---- experiments ----

func getExperiment(ctx context.Context, q queryer, key string) (*experiment.Experiment, error) {
	var doc jsonText
	err := q.QueryRowContext(ctx, `SELECT doc FROM experiments WHERE key = ?`, key).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(experiment.NotFound, experiment.Errorf("experiment %q not found", key))
	}
	if err != nil {
		return nil, err
	}
	var e experiment.Experiment
	if err := json.Unmarshal(doc, &e); err != nil {
		return nil, fmt.Errorf("decoding experiment %q: %w", key, err)
	}
	return &e, nil
}

func cloneExperiment(e *experiment.Experiment) *experiment.Experiment {
	b, _ := json.Marshal(e)
	var c experiment.Experiment
	_ = json.Unmarshal(b, &c)
	return &c
}

// checkPlacement checks that e's layer and holdout exist and that its slice of the
// layer overlaps no other non-stopped experiment's slice.
func checkPlacement(ctx context.Context, q queryer, e *experiment.Experiment) error {
	if e.Holdout != "" {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM holdouts WHERE name = ?`, e.Holdout).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return experiment.E(experiment.Invalid, experiment.Field("holdout"), experiment.Errorf("unknown holdout %q: create it first", e.Holdout))
		}
	}
	if e.Layer == "" {
		return nil
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM layers WHERE name = ?`, e.Layer).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return experiment.E(experiment.Invalid, experiment.Field("layer"), experiment.Errorf("unknown layer %q: create it first", e.Layer))
	}
	rows, err := q.QueryContext(ctx, `SELECT key, doc FROM experiments WHERE layer = ? AND status <> 'stopped' AND key <> ? ORDER BY key`, e.Layer, e.Key)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var doc jsonText
		if err := rows.Scan(&key, &doc); err != nil {
			return err
		}
		var o experiment.Experiment
		if err := json.Unmarshal(doc, &o); err != nil {
			return fmt.Errorf("decoding experiment %q: %w", key, err)
		}
		if o.LayerRange != nil && e.LayerRange != nil && e.LayerRange.Overlaps(*o.LayerRange) {
			return experiment.E(experiment.Invalid, experiment.Field("layer_range"), experiment.Errorf(
				"[%g, %g) overlaps experiment %q's slice [%g, %g) of layer %q; experiments of one layer need disjoint slices",
				e.LayerRange.Start, e.LayerRange.End, o.Key, o.LayerRange.Start, o.LayerRange.End, e.Layer))
		}
	}
	return rows.Err()
}

func putExperiment(ctx context.Context, tx *sql.Tx, e *experiment.Experiment, insert bool) error {
	doc, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var layer, holdout any
	if e.Layer != "" {
		layer = e.Layer
	}
	if e.Holdout != "" {
		holdout = e.Holdout
	}
	if insert {
		_, err = tx.ExecContext(ctx, `INSERT INTO experiments (key, doc, status, layer, holdout, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			e.Key, string(doc), string(e.Status), layer, holdout, e.CreatedAt, e.UpdatedAt)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE experiments SET doc = ?, status = ?, layer = ?, holdout = ?, updated_at = ? WHERE key = ?`,
			string(doc), string(e.Status), layer, holdout, e.UpdatedAt, e.Key)
	}
	return err
}

// CreateExperiment registers a new draft experiment: it applies the defaults,
// validates the design, checks that its layer and holdout exist, that its layer
// slice overlaps no non-stopped experiment of the layer and that none of its
// metrics is deprecated (Invalid naming metrics[i]), and stores it with its
// audit entry. A taken key is a Conflict; nothing is stored on error.
func (db *DB) CreateExperiment(ctx context.Context, actor string, in *experiment.Experiment) (*experiment.Experiment, error) {
	if in == nil {
		return nil, experiment.E("store.CreateExperiment", experiment.Invalid, experiment.Errorf("no experiment given"))
	}
	return db.CreateExperimentFrom(ctx, actor, in, "", experiment.TemplateFields{Metrics: &in.Metrics, Analysis: &in.Analysis})
}

// CreateExperimentFrom is CreateExperiment for an experiment drawn from
// template (none when ""): in gives the rest of the design, f the fields given
// explicitly, which override the template's (experiment.Template.Apply). The
// template is read in the transaction that stores the experiment; an unknown
// one is Invalid naming template.
func (db *DB) CreateExperimentFrom(ctx context.Context, actor string, in *experiment.Experiment, template string, f experiment.TemplateFields) (*experiment.Experiment, error) {
	const op = "store.CreateExperiment"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no experiment given"))
	}
	e := cloneExperiment(in)
	if e.Status != "" && e.Status != experiment.Draft {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("status"),
			experiment.Errorf("a new experiment starts as draft, got %q; start it with the start action", e.Status))
	}
	now := db.now()
	db.regMu.Lock()
	defer db.regMu.Unlock()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var t *experiment.Template
		if template != "" {
			var err error
			if t, err = getTemplate(ctx, tx, template); experiment.KindOf(err) == experiment.NotFound {
				return experiment.E(experiment.Invalid, experiment.Field("template"), experiment.Errorf("unknown template %q: create it first (POST /v1/templates)", template))
			} else if err != nil {
				return err
			}
		}
		t.Apply(e, f)
		e.MetricVersions = nil // pinned when it starts
		e.ApplyDefaults()
		if err := e.Validate(); err != nil {
			return err
		}
		e.CreatedAt, e.UpdatedAt, e.StartedAt, e.StoppedAt = now, now, nil, nil
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM experiments WHERE key = ?`, e.Key).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return experiment.E(experiment.Conflict, experiment.Field("key"), experiment.Errorf("experiment %q already exists", e.Key))
		}
		if err := checkPlacement(ctx, tx, e); err != nil {
			return err
		}
		if err := checkUsable(ctx, tx, e.Metrics, nil, "metrics"); err != nil {
			return err
		}
		if err := putExperiment(ctx, tx, e, true); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "experiment.create", "experiment", e.Key, nil, e)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	db.forgetExperiment(e.Key)
	return e, nil
}

// GetExperiment returns the experiment with the key, or a NotFound error.
func (db *DB) GetExperiment(ctx context.Context, key string) (*experiment.Experiment, error) {
	e, err := getExperiment(ctx, db.db, key)
	if err != nil {
		return nil, internal("store.GetExperiment", err)
	}
	return e, nil
}

// ListExperiments returns every experiment, oldest first.
func (db *DB) ListExperiments(ctx context.Context) ([]*experiment.Experiment, error) {
	const op = "store.ListExperiments"
	rows, err := db.db.QueryContext(ctx, `SELECT doc FROM experiments ORDER BY created_at, key`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []*experiment.Experiment{}
	for rows.Next() {
		var doc jsonText
		if err := rows.Scan(&doc); err != nil {
			return nil, internal(op, err)
		}
		var e experiment.Experiment
		if err := json.Unmarshal(doc, &e); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, &e)
	}
	return out, internal(op, rows.Err())
}

// UpdateExperiment replaces the stored experiment with the same key. A draft may
// change anything but its key (the result is validated and placed like a new one).
// A running or stopped experiment may change only its name and description: its
// design was locked when it started (pre-registration), and any other change is a
// Conflict. Status and timestamps are kept from the stored experiment.
func (db *DB) UpdateExperiment(ctx context.Context, actor string, in *experiment.Experiment) (*experiment.Experiment, error) {
	const op = "store.UpdateExperiment"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no experiment given"))
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	var out *experiment.Experiment
	err := db.tx(ctx, func(tx *sql.Tx) error {
		old, err := getExperiment(ctx, tx, in.Key)
		if err != nil {
			return err
		}
		e := cloneExperiment(in)
		e.Status, e.CreatedAt, e.StartedAt, e.StoppedAt = old.Status, old.CreatedAt, old.StartedAt, old.StoppedAt
		e.MetricVersions, e.Template = old.MetricVersions, old.Template // pinned at the start; a record
		e.ApplyDefaults()
		if err := e.Validate(); err != nil {
			return err
		}
		if old.Status != experiment.Draft {
			old.ApplyDefaults() // as stored before the primary metric had one record
			if !experiment.SameDesign(old, e) {
				return experiment.E(experiment.Conflict, experiment.Errorf(
					"experiment %s is %s: variants, weights, metrics and the analysis plan were locked when it started (pre-registration); "+
						"only name and description may change — register a new experiment to test a different design", e.Key, old.Status))
			}
		} else if err := checkPlacement(ctx, tx, e); err != nil {
			return err
		} else if err := checkUsable(ctx, tx, e.Metrics, old.Metrics, "metrics"); err != nil {
			return err
		}
		now := db.now()
		e.UpdatedAt = now
		if err := putExperiment(ctx, tx, e, false); err != nil {
			return err
		}
		out = e
		return db.audit(ctx, tx, now, actor, "experiment.update", "experiment", e.Key, old, e)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	db.forgetExperiment(out.Key)
	return out, nil
}

// StartExperiment moves a draft to running, which locks its design. Any other
// state is a Conflict.
func (db *DB) StartExperiment(ctx context.Context, actor, key string) (*experiment.Experiment, error) {
	return db.StartExperimentAt(ctx, actor, key, time.Time{})
}

// StartExperimentAt is StartExperiment with the start time given, for a
// backfill: an experiment whose exposures happened before it was registered
// (a replay of past data, a notebook, an import from another system) is
// started when they began, and exposures are then accepted from that time on
// (the API refuses those stamped before an experiment's start). The zero time
// means now. at must not be after the clock nor before Options.MinTime
// (Invalid, field started_at). The audit entry records the start time given;
// its own time is the clock's.
func (db *DB) StartExperimentAt(ctx context.Context, actor, key string, at time.Time) (*experiment.Experiment, error) {
	const op = "store.StartExperiment"
	if !at.IsZero() {
		at = at.UTC().Truncate(time.Microsecond)
		if now := db.now(); at.After(now) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("started_at"), experiment.Errorf(
				"must not be after the server's clock (%s), got %s: an experiment starts now or, for a backfill, in the past",
				now.Format(time.RFC3339), at.Format(time.RFC3339Nano)))
		}
		if at.Before(db.opt.MinTime) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("started_at"), experiment.Errorf(
				"must not be before %s, got %s", db.opt.MinTime.UTC().Format(time.RFC3339), at.Format(time.RFC3339Nano)))
		}
	}
	return db.transition(ctx, op, actor, key, experiment.Draft, experiment.Running, at)
}

// StopExperiment moves a running experiment to stopped. Any other state is a Conflict.
func (db *DB) StopExperiment(ctx context.Context, actor, key string) (*experiment.Experiment, error) {
	return db.transition(ctx, "store.StopExperiment", actor, key, experiment.Running, experiment.Stopped, time.Time{})
}

// transition moves experiment key from status from to status to, at the time
// at (zero: now).
func (db *DB) transition(ctx context.Context, op, actor, key string, from, to experiment.Status, at time.Time) (*experiment.Experiment, error) {
	db.regMu.Lock()
	defer db.regMu.Unlock()
	var out *experiment.Experiment
	err := db.tx(ctx, func(tx *sql.Tx) error {
		old, err := getExperiment(ctx, tx, key)
		if err != nil {
			return err
		}
		if old.Status != from {
			verb := "started"
			if to == experiment.Stopped {
				verb = "stopped"
			}
			return experiment.E(experiment.Conflict, experiment.Errorf(
				"experiment %s is %s: only a %s experiment can be %s", key, old.Status, from, verb))
		}
		e := cloneExperiment(old)
		now := db.now()
		e.Status, e.UpdatedAt = to, now
		if at.IsZero() {
			at = now
		}
		action := "experiment.start"
		if to == experiment.Running {
			e.StartedAt = &at
			names := make([]string, len(e.Metrics))
			for i, m := range e.Metrics {
				names[i] = m.Name
			}
			if e.MetricVersions, err = pinVersions(ctx, tx, names); err != nil { // pre-registration
				return err
			}
		} else {
			e.StoppedAt = &at
			action = "experiment.stop"
		}
		if err := putExperiment(ctx, tx, e, false); err != nil {
			return err
		}
		out = e
		return db.audit(ctx, tx, now, actor, action, "experiment", key, old, e)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// ---- layers ----

// CreateLayer registers a mutual-exclusion layer. A taken name is a Conflict.
func (db *DB) CreateLayer(ctx context.Context, actor string, in *experiment.Layer) (*experiment.Layer, error) {
	const op = "store.CreateLayer"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no layer given"))
	}
	l := *in
	if err := l.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	now := db.now()
	l.CreatedAt = now
	db.regMu.Lock()
	defer db.regMu.Unlock()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM layers WHERE name = ?`, l.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return experiment.E(experiment.Conflict, experiment.Field("name"), experiment.Errorf("layer %q already exists", l.Name))
		}
		doc, err := json.Marshal(&l)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO layers (name, doc, created_at) VALUES (?, ?, ?)`, l.Name, string(doc), now); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "layer.create", "layer", l.Name, nil, &l)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return &l, nil
}

// GetLayer returns the named layer, or a NotFound error.
func (db *DB) GetLayer(ctx context.Context, name string) (*experiment.Layer, error) {
	var doc jsonText
	err := db.db.QueryRowContext(ctx, `SELECT doc FROM layers WHERE name = ?`, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E("store.GetLayer", experiment.NotFound, experiment.Errorf("layer %q not found", name))
	}
	if err != nil {
		return nil, internal("store.GetLayer", err)
	}
	var l experiment.Layer
	if err := json.Unmarshal(doc, &l); err != nil {
		return nil, internal("store.GetLayer", err)
	}
	return &l, nil
}

// ListLayers returns every layer, ordered by name.
func (db *DB) ListLayers(ctx context.Context) ([]*experiment.Layer, error) {
	const op = "store.ListLayers"
	rows, err := db.db.QueryContext(ctx, `SELECT doc FROM layers ORDER BY name`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []*experiment.Layer{}
	for rows.Next() {
		var doc jsonText
		if err := rows.Scan(&doc); err != nil {
			return nil, internal(op, err)
		}
		var l experiment.Layer
		if err := json.Unmarshal(doc, &l); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, &l)
	}
	return out, internal(op, rows.Err())
}

// ---- holdouts ----

func holdoutSalt(name string, version int) string { return fmt.Sprintf("%s/v%d", name, version) }

// CreateHoldout registers a permanent holdout at version 1. Its salt defaults to
// name+"/v1". A taken name is a Conflict.
func (db *DB) CreateHoldout(ctx context.Context, actor string, in *experiment.Holdout) (*experiment.Holdout, error) {
	const op = "store.CreateHoldout"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no holdout given"))
	}
	h := *in
	if err := h.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	now := db.now()
	h.Version = 1
	if h.Salt == "" {
		h.Salt = holdoutSalt(h.Name, 1)
	}
	h.CreatedAt, h.RotatedAt = now, now
	h.Versions = []experiment.HoldoutVersion{{Version: 1, Salt: h.Salt, Start: now}}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM holdouts WHERE name = ?`, h.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return experiment.E(experiment.Conflict, experiment.Field("name"), experiment.Errorf("holdout %q already exists", h.Name))
		}
		if err := putHoldout(ctx, tx, &h, true); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO holdout_versions (holdout, version, salt, start_at) VALUES (?, 1, ?, ?)`, h.Name, h.Salt, now); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "holdout.create", "holdout", h.Name, nil, &h)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	db.setHoldoutVersion(h.Name, 1)
	return &h, nil
}

func putHoldout(ctx context.Context, tx *sql.Tx, h *experiment.Holdout, insert bool) error {
	c := *h
	c.Versions = nil // kept in holdout_versions
	doc, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	if insert {
		_, err = tx.ExecContext(ctx, `INSERT INTO holdouts (name, doc, version, created_at, rotated_at) VALUES (?, ?, ?, ?, ?)`,
			h.Name, string(doc), h.Version, h.CreatedAt, h.RotatedAt)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE holdouts SET doc = ?, version = ?, rotated_at = ? WHERE name = ?`,
			string(doc), h.Version, h.RotatedAt, h.Name)
	}
	return err
}

func getHoldout(ctx context.Context, q queryer, name string) (*experiment.Holdout, error) {
	var doc jsonText
	err := q.QueryRowContext(ctx, `SELECT doc FROM holdouts WHERE name = ?`, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(experiment.NotFound, experiment.Errorf("holdout %q not found", name))
	}
	if err != nil {
		return nil, err
	}
	var h experiment.Holdout
	if err := json.Unmarshal(doc, &h); err != nil {
		return nil, fmt.Errorf("decoding holdout %q: %w", name, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT version, salt, start_at, end_at FROM holdout_versions WHERE holdout = ? ORDER BY version`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v experiment.HoldoutVersion
		var end sql.NullTime
		if err := rows.Scan(&v.Version, &v.Salt, &v.Start, &end); err != nil {
			return nil, err
		}
		v.Start = v.Start.UTC()
		if end.Valid {
			t := end.Time.UTC()
			v.End = &t
		}
		h.Versions = append(h.Versions, v)
	}
	return &h, rows.Err()
}

// GetHoldout returns the named holdout with all its versions, or a NotFound error.
func (db *DB) GetHoldout(ctx context.Context, name string) (*experiment.Holdout, error) {
	h, err := getHoldout(ctx, db.db, name)
	if err != nil {
		return nil, internal("store.GetHoldout", err)
	}
	return h, nil
}

// ListHoldouts returns every holdout with its versions, ordered by name.
func (db *DB) ListHoldouts(ctx context.Context) ([]*experiment.Holdout, error) {
	const op = "store.ListHoldouts"
	names, err := db.holdoutNames(ctx)
	if err != nil {
		return nil, internal(op, err)
	}
	out := []*experiment.Holdout{}
	for _, n := range names {
		h, err := getHoldout(ctx, db.db, n)
		if err != nil {
			return nil, internal(op, err)
		}
		out = append(out, h)
	}
	return out, nil
}

func (db *DB) holdoutNames(ctx context.Context) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT name FROM holdouts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// RotateHoldout starts version N+1 of the holdout with salt name+"/vN+1" and
// closes version N. Units are re-drawn under the new salt; exposures record the
// version they were made under, so each cohort stays analyzable.
func (db *DB) RotateHoldout(ctx context.Context, actor, name string) (*experiment.Holdout, error) {
	db.regMu.Lock()
	defer db.regMu.Unlock()
	h, err := db.rotate(ctx, actor, name)
	if err != nil {
		return nil, internal("store.RotateHoldout", err)
	}
	return h, nil
}

// rotate does RotateHoldout's work; the caller holds regMu.
func (db *DB) rotate(ctx context.Context, actor, name string) (*experiment.Holdout, error) {
	var out *experiment.Holdout
	err := db.tx(ctx, func(tx *sql.Tx) error {
		old, err := getHoldout(ctx, tx, name)
		if err != nil {
			return err
		}
		now := db.now()
		h := *old
		h.Versions = append([]experiment.HoldoutVersion(nil), old.Versions...)
		h.Version = old.Version + 1
		h.Salt = holdoutSalt(name, h.Version)
		h.RotatedAt = now
		for i := range h.Versions {
			if h.Versions[i].Version == old.Version {
				h.Versions[i].End = &now
			}
		}
		h.Versions = append(h.Versions, experiment.HoldoutVersion{Version: h.Version, Salt: h.Salt, Start: now})
		if _, err := tx.ExecContext(ctx, `UPDATE holdout_versions SET end_at = ? WHERE holdout = ? AND version = ?`, now, name, old.Version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO holdout_versions (holdout, version, salt, start_at) VALUES (?, ?, ?, ?)`, name, h.Version, h.Salt, now); err != nil {
			return err
		}
		if err := putHoldout(ctx, tx, &h, false); err != nil {
			return err
		}
		out = &h
		return db.audit(ctx, tx, now, actor, "holdout.rotate", "holdout", name, old, &h)
	})
	if err != nil {
		return nil, err
	}
	db.setHoldoutVersion(name, out.Version)
	return out, nil
}

// RotateDueHoldouts rotates, once each, the holdouts with a RotationPeriod that has
// elapsed since their current version started, and returns them after rotation.
// Periods shorter than experiment.MinRotationPeriod are ignored.
func (db *DB) RotateDueHoldouts(ctx context.Context, actor string) ([]*experiment.Holdout, error) {
	const op = "store.RotateDueHoldouts"
	db.regMu.Lock()
	defer db.regMu.Unlock()
	names, err := db.holdoutNames(ctx)
	if err != nil {
		return nil, internal(op, err)
	}
	now := db.now()
	out := []*experiment.Holdout{}
	for _, n := range names {
		h, err := getHoldout(ctx, db.db, n)
		if err != nil {
			return out, internal(op, err)
		}
		// A period below the minimum (stored before it was enforced) is not
		// followed: the holdout rotates by hand only until it is recreated.
		if time.Duration(h.RotationPeriod) < experiment.MinRotationPeriod || now.Sub(h.RotatedAt) < time.Duration(h.RotationPeriod) {
			continue
		}
		r, err := db.rotate(ctx, actor, n)
		if err != nil {
			return out, internal(op, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ---- audit ----

// RecordAudit writes one audit entry on its own, for an action that changes no
// stored state (e.g. a model reload: the model lives in a file, and the entry
// is the record of who swapped it). It is committed when RecordAudit returns.
func (db *DB) RecordAudit(ctx context.Context, actor, action, entity, key string, before, after any) error {
	const op = "store.RecordAudit"
	if action == "" || entity == "" || key == "" {
		return experiment.E(op, experiment.Invalid, experiment.Errorf("an audit entry needs an action, an entity and a key (got %q, %q, %q)", action, entity, key))
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		return db.audit(ctx, tx, db.now(), actor, action, entity, key, before, after)
	})
	return internal(op, err)
}

// Audit returns audit entries, newest first, for one entity kind ("experiment",
// "holdout", "layer", "key", ...) and key; "" matches all. limit <= 0 means no limit.
func (db *DB) Audit(ctx context.Context, entity, key string, limit int) ([]experiment.AuditEntry, error) {
	const op = "store.Audit"
	q := `SELECT id, ts, actor, action, entity, key, before, after FROM audit
		WHERE (? = '' OR entity = ?) AND (? = '' OR key = ?) ORDER BY id DESC`
	args := []any{entity, entity, key, key}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []experiment.AuditEntry{}
	for rows.Next() {
		var a experiment.AuditEntry
		var before, after jsonText
		if err := rows.Scan(&a.ID, &a.At, &a.Actor, &a.Action, &a.Entity, &a.Key, &before, &after); err != nil {
			return nil, internal(op, err)
		}
		a.At = a.At.UTC()
		if before != nil {
			a.Before = json.RawMessage(before)
		}
		if after != nil {
			a.After = json.RawMessage(after)
		}
		out = append(out, a)
	}
	return out, internal(op, rows.Err())
}
