package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// Metric registry. What a metric computes (the per-unit definition, windows,
// caps, CUPED, ratios) is package metric's; the engine over this store's
// exposures and events is metric/duckdb (DB.Engine).

// CreateMetric validates and stores a metric definition as its version 1,
// with its audit entry, in one transaction. A ratio metric must name existing
// non-ratio, non-mean metrics and cannot be capped (cap its numerator or
// denominator instead). Conflict if the name is taken.
func (db *DB) CreateMetric(ctx context.Context, actor string, in *experiment.Metric) (*experiment.Metric, error) {
	const op = "store.CreateMetric"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no metric given"))
	}
	m := *in
	m.Version, m.Deprecated = 1, false
	if err := m.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	if err := checkRatioParts(ctx, db.db, &m); err != nil {
		return nil, internal(op, err)
	}
	if _, err := getMetric(ctx, db.db, m.Name); err == nil {
		return nil, experiment.E(op, experiment.Conflict, experiment.Field("name"), experiment.Errorf("metric %q already exists", m.Name))
	} else if experiment.KindOf(err) != experiment.NotFound {
		return nil, internal(op, err)
	}
	now := db.now()
	doc, err := json.Marshal(&m)
	if err != nil {
		return nil, internal(op, err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO metrics (name, doc, created_at) VALUES (?, ?, ?)`, m.Name, string(doc), now); err != nil {
			return err
		}
		if err := insertMetricVersion(ctx, tx, &m, now, actor); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "metric.create", "metric", m.Name, nil, &m)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return &m, nil
}

// checkRatioParts checks that a ratio metric is not capped and that its parts
// exist and are sum, count or binary metrics (Invalid naming the field).
func checkRatioParts(ctx context.Context, q queryer, m *experiment.Metric) error {
	if m.Aggregation != experiment.Ratio {
		return nil
	}
	if m.Cap != nil {
		return experiment.E(experiment.Invalid, experiment.Field("cap"),
			experiment.Errorf("a ratio metric cannot be capped: cap its numerator or denominator metric"))
	}
	for _, part := range []struct{ field, name string }{{"numerator", m.Numerator}, {"denominator", m.Denominator}} {
		pm, err := getMetric(ctx, q, part.name)
		if experiment.KindOf(err) == experiment.NotFound {
			return experiment.E(experiment.Invalid, experiment.Field(part.field),
				experiment.Errorf("metric %q does not exist: create it first", part.name))
		}
		if err != nil {
			return err
		}
		if pm.Aggregation == experiment.Ratio || pm.Aggregation == experiment.Mean {
			return experiment.E(experiment.Invalid, experiment.Field(part.field),
				experiment.Errorf("metric %q is a %s metric: a ratio's parts must be sum, count or binary metrics", part.name, pm.Aggregation))
		}
	}
	return nil
}

func insertMetricVersion(ctx context.Context, tx *sql.Tx, m *experiment.Metric, at time.Time, actor string) error {
	if actor == "" {
		actor = "system"
	}
	v := *m
	v.Deprecated = false // a flag of the metric, not of the version
	doc, err := json.Marshal(&v)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO metric_versions (name, version, doc, created_at, actor) VALUES (?, ?, ?, ?, ?)`,
		v.Name, v.Version, string(doc), at, actor)
	return err
}

// PutMetric makes in the new version of the existing metric name (NotFound
// when there is none; POST creates it): the version after the current one,
// validated like a new metric, stored with its audit entry in one
// transaction. Earlier versions stay, unchanged, for the experiments pinned
// to them and their snapshots. A definition equal to the current one changes
// nothing and returns the current version. A metric that is the numerator or
// denominator of a ratio metric stays a sum, count or binary metric (Invalid
// naming aggregation). The deprecation flag is kept.
func (db *DB) PutMetric(ctx context.Context, actor, name string, in *experiment.Metric) (*experiment.Metric, error) {
	const op = "store.PutMetric"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no metric given"))
	}
	m := *in
	if m.Name == "" {
		m.Name = name
	}
	if m.Name != name {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("name"),
			experiment.Errorf("the body names metric %q but the path %q: a metric cannot be renamed", m.Name, name))
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	cur, err := getMetric(ctx, db.db, name)
	if err != nil {
		return nil, internal(op, err)
	}
	m.Version, m.Deprecated = cur.Version, cur.Deprecated
	if err := m.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	if err := checkRatioParts(ctx, db.db, &m); err != nil {
		return nil, internal(op, err)
	}
	if sameJSON(&m, cur) {
		return cur, nil
	}
	if m.Aggregation == experiment.Ratio || m.Aggregation == experiment.Mean {
		users, err := metricUsers(ctx, db.db, name)
		if err != nil {
			return nil, internal(op, err)
		}
		for _, u := range users {
			if u.kind == "ratio metric" {
				return nil, experiment.E(op, experiment.Invalid, experiment.Field("aggregation"), experiment.Errorf(
					"metric %q is a part of ratio metric %q: it must stay a sum, count or binary metric, got %q", name, u.name, m.Aggregation))
			}
		}
	}
	m.Version = cur.Version + 1
	now := db.now()
	doc, err := json.Marshal(&m)
	if err != nil {
		return nil, internal(op, err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE metrics SET doc = ? WHERE name = ?`, string(doc), name); err != nil {
			return err
		}
		if err := insertMetricVersion(ctx, tx, &m, now, actor); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "metric.update", "metric", name, cur, &m)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return &m, nil
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// DeprecateMetric sets (deprecated true) or clears the deprecation of metric
// name, with its audit entry. A deprecated metric keeps serving the
// experiments, templates and snapshots that use it; new experiments and
// templates cannot name it. No new version is made.
func (db *DB) DeprecateMetric(ctx context.Context, actor, name string, deprecated bool) (*experiment.Metric, error) {
	const op = "store.DeprecateMetric"
	db.regMu.Lock()
	defer db.regMu.Unlock()
	cur, err := getMetric(ctx, db.db, name)
	if err != nil {
		return nil, internal(op, err)
	}
	if cur.Deprecated == deprecated {
		return cur, nil
	}
	m := *cur
	m.Deprecated = deprecated
	action := "metric.deprecate"
	if !deprecated {
		action = "metric.restore"
	}
	now := db.now()
	doc, err := json.Marshal(&m)
	if err != nil {
		return nil, internal(op, err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE metrics SET doc = ? WHERE name = ?`, string(doc), name); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, action, "metric", name, cur, &m)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return &m, nil
}

// metricUser is something that reads a metric.
type metricUser struct{ kind, name string }

func (u metricUser) String() string { return fmt.Sprintf("%s %q", u.kind, u.name) }

// metricUsers lists what reads metric name: experiments (any status) that
// list it or pinned it (as a part of a ratio), ratio metrics whose current
// or earlier definition has it as numerator or denominator, and templates
// that list it.
func metricUsers(ctx context.Context, q queryer, name string) ([]metricUser, error) {
	var out []metricUser
	exps, err := queryAll(ctx, q, "store.metricUsers", scanExperimentDoc, `SELECT doc FROM experiments ORDER BY key`)
	if err != nil {
		return nil, err
	}
	for _, e := range exps {
		_, pinned := e.MetricVersions[name]
		for _, m := range e.Metrics {
			pinned = pinned || m.Name == name
		}
		if pinned {
			out = append(out, metricUser{"experiment", e.Key})
		}
	}
	ratios, err := queryAll(ctx, q, "store.metricUsers", func(r interface{ Scan(...any) error }) (string, error) {
		var n string
		err := r.Scan(&n)
		return n, err
	}, `SELECT DISTINCT name FROM metric_versions
		WHERE name <> ? AND (json_extract_string(doc, '$.numerator') = ? OR json_extract_string(doc, '$.denominator') = ?) ORDER BY name`, name, name, name)
	if err != nil {
		return nil, err
	}
	for _, r := range ratios {
		out = append(out, metricUser{"ratio metric", r})
	}
	ts, err := listTemplates(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		used := false
		for _, m := range t.Metrics {
			used = used || m.Name == name
		}
		for _, g := range t.Guardrails {
			used = used || g == name
		}
		if used {
			out = append(out, metricUser{"template", t.Name})
		}
	}
	return out, nil
}

func scanExperimentDoc(r interface{ Scan(...any) error }) (*experiment.Experiment, error) {
	var doc jsonText
	if err := r.Scan(&doc); err != nil {
		return nil, err
	}
	var e experiment.Experiment
	if err := json.Unmarshal(doc, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// DeleteMetric deletes metric name and all its versions, with the audit
// entry, in one transaction. A metric in use is a Conflict naming its users:
// the experiments (of any status: a stopped experiment's results are still
// read) that list it or pin it, the ratio metrics built on it and the
// templates that list it. Snapshots keep their documents.
func (db *DB) DeleteMetric(ctx context.Context, actor, name string) error {
	const op = "store.DeleteMetric"
	db.regMu.Lock()
	defer db.regMu.Unlock()
	cur, err := getMetric(ctx, db.db, name)
	if err != nil {
		return internal(op, err)
	}
	users, err := metricUsers(ctx, db.db, name)
	if err != nil {
		return internal(op, err)
	}
	if len(users) > 0 {
		names := make([]string, len(users))
		for i, u := range users {
			names[i] = u.String()
		}
		return experiment.E(op, experiment.Conflict, experiment.Errorf(
			"metric %q is in use by %s: only an unused metric can be deleted (deprecate it to keep it off new experiments)", name, strings.Join(names, ", ")))
	}
	now := db.now()
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM metric_versions WHERE name = ?`, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM metrics WHERE name = ?`, name); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "metric.delete", "metric", name, cur, nil)
	})
	return internal(op, err)
}

// GetMetric returns a metric's current definition; NotFound when there is none.
func (db *DB) GetMetric(ctx context.Context, name string) (*experiment.Metric, error) {
	m, err := getMetric(ctx, db.db, name)
	if err != nil {
		return nil, internal("store.GetMetric", err)
	}
	return m, nil
}

// MetricVersions returns every version of metric name, oldest first;
// NotFound when there is no such metric.
func (db *DB) MetricVersions(ctx context.Context, name string) ([]experiment.MetricVersion, error) {
	const op = "store.MetricVersions"
	if _, err := getMetric(ctx, db.db, name); err != nil {
		return nil, internal(op, err)
	}
	return queryAll(ctx, db.db, op, func(r interface{ Scan(...any) error }) (experiment.MetricVersion, error) {
		var v experiment.MetricVersion
		var doc jsonText
		if err := r.Scan(&v.Version, &v.CreatedAt, &v.Actor, &doc); err != nil {
			return v, err
		}
		v.CreatedAt = v.CreatedAt.UTC()
		v.Definition = new(experiment.Metric)
		if err := json.Unmarshal(doc, v.Definition); err != nil {
			return v, err
		}
		v.Definition.Version = v.Version
		return v, nil
	}, `SELECT version, created_at, actor, doc FROM metric_versions WHERE name = ? ORDER BY version`, name)
}

// GetMetricVersion returns version v of metric name (0: the current
// definition); NotFound (naming version) when there is none.
func (db *DB) GetMetricVersion(ctx context.Context, name string, v int) (*experiment.Metric, error) {
	if v == 0 {
		return db.GetMetric(ctx, name)
	}
	m, err := getMetricVersion(ctx, db.db, name, v)
	if err != nil {
		return nil, internal("store.GetMetricVersion", err)
	}
	return m, nil
}

func getMetricVersion(ctx context.Context, q queryer, name string, v int) (*experiment.Metric, error) {
	var doc jsonText
	err := q.QueryRowContext(ctx, `SELECT doc FROM metric_versions WHERE name = ? AND version = ?`, name, v).Scan(&doc)
	if err == sql.ErrNoRows {
		return nil, experiment.E(experiment.NotFound, experiment.Field("version"), experiment.Errorf("metric %q has no version %d", name, v))
	}
	if err != nil {
		return nil, err
	}
	var m experiment.Metric
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("metric %q version %d: %w", name, v, err)
	}
	m.Version, m.Deprecated = v, false
	return &m, nil
}

// versionAt is the version of metric name current at t: the latest written
// at or before t, or the first when the metric was defined after t.
func versionAt(ctx context.Context, q queryer, name string, t time.Time) (int, error) {
	var v sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(version) FILTER (WHERE created_at <= ?), min(version)) FROM metric_versions WHERE name = ?`, t, name).Scan(&v)
	if err != nil {
		return 0, err
	}
	if !v.Valid {
		return 0, experiment.E(experiment.NotFound, experiment.Errorf("metric %q not found", name))
	}
	return int(v.Int64), nil
}

func getMetric(ctx context.Context, q queryer, name string) (*experiment.Metric, error) {
	var doc jsonText
	err := q.QueryRowContext(ctx, `SELECT doc FROM metrics WHERE name = ?`, name).Scan(&doc)
	if err == sql.ErrNoRows {
		return nil, experiment.E(experiment.NotFound, experiment.Errorf("metric %q not found", name))
	}
	if err != nil {
		return nil, err
	}
	var m experiment.Metric
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("metric %q: %w", name, err)
	}
	if m.Version == 0 {
		m.Version = 1 // defined before versions existed
	}
	return &m, nil
}

// ListMetrics returns every metric's current definition, by name.
func (db *DB) ListMetrics(ctx context.Context) ([]*experiment.Metric, error) {
	const op = "store.ListMetrics"
	rows, err := db.db.QueryContext(ctx, `SELECT doc FROM metrics ORDER BY name`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var ms []*experiment.Metric
	for rows.Next() {
		var doc jsonText
		if err := rows.Scan(&doc); err != nil {
			return nil, internal(op, err)
		}
		var m experiment.Metric
		if err := json.Unmarshal(doc, &m); err != nil {
			return nil, internal(op, err)
		}
		if m.Version == 0 {
			m.Version = 1
		}
		ms = append(ms, &m)
	}
	return ms, internal(op, rows.Err())
}

// resolveMetrics loads the named metrics and the parts of ratio metrics:
// their current versions, or for an experiment those it pinned (see
// experimentVersion).
func (db *DB) resolveMetrics(ctx context.Context, q queryer, e *experiment.Experiment, names []string) (metric.Resolved, error) {
	defs := metric.Resolved{}
	var load func(name, field string) error
	load = func(name, field string) error {
		if _, ok := defs[name]; ok {
			return nil
		}
		m, err := getMetric(ctx, q, name)
		if experiment.KindOf(err) == experiment.NotFound {
			return experiment.E(experiment.Invalid, experiment.Field(field), experiment.Errorf("metric %q is not defined: POST it to /v1/metrics first", name))
		}
		if err != nil {
			return err
		}
		if v, err := experimentVersion(ctx, q, e, name); err != nil {
			return err
		} else if v != 0 {
			if m, err = getMetricVersion(ctx, q, name, v); err != nil {
				return err
			}
		} else {
			m.Deprecated = false // a flag of the metric, not of its definition
		}
		defs[name] = m
		if m.Aggregation == experiment.Ratio {
			if err := load(m.Numerator, field); err != nil {
				return err
			}
			return load(m.Denominator, field)
		}
		return nil
	}
	for i, n := range names {
		if err := load(n, fmt.Sprintf("metrics[%d]", i)); err != nil {
			return nil, err
		}
	}
	return defs, nil
}

// experimentVersion is the version of metric name that experiment e reads:
// the one it pinned when it started; for an experiment started before
// versions existed, the version current at its start; 0 (the current one)
// for drafts and for no experiment.
func experimentVersion(ctx context.Context, q queryer, e *experiment.Experiment, name string) (int, error) {
	if e == nil || e.Status == experiment.Draft || e.Status == "" {
		return 0, nil
	}
	if v, ok := e.MetricVersions[name]; ok {
		return v, nil
	}
	if e.StartedAt == nil {
		return 0, nil
	}
	return versionAt(ctx, q, name, *e.StartedAt)
}

// pinVersions returns the current versions of the named metrics and the
// parts of their ratio metrics; metrics that are not defined are left out.
func pinVersions(ctx context.Context, q queryer, names []string) (map[string]int, error) {
	pins := map[string]int{}
	var load func(name string) error
	load = func(name string) error {
		if _, ok := pins[name]; ok {
			return nil
		}
		m, err := getMetric(ctx, q, name)
		if experiment.KindOf(err) == experiment.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		pins[name] = m.Version
		if m.Aggregation == experiment.Ratio {
			if err := load(m.Numerator); err != nil {
				return err
			}
			return load(m.Denominator)
		}
		return nil
	}
	for _, n := range names {
		if err := load(n); err != nil {
			return nil, err
		}
	}
	if len(pins) == 0 {
		return nil, nil
	}
	return pins, nil
}

// checkUsable refuses deprecated metrics among ms (Invalid naming
// metrics[i]), except those in keep (an edited draft may keep the metrics it
// had).
func checkUsable(ctx context.Context, q queryer, ms []experiment.MetricRef, keep []experiment.MetricRef, field string) error {
	for i, ref := range ms {
		kept := false
		for _, k := range keep {
			kept = kept || k.Name == ref.Name
		}
		if kept {
			continue
		}
		m, err := getMetric(ctx, q, ref.Name)
		if experiment.KindOf(err) == experiment.NotFound {
			continue // the API refuses unknown metrics; the store has drafts that name them
		}
		if err != nil {
			return err
		}
		if m.Deprecated {
			return experiment.E(experiment.Invalid, experiment.Field(fmt.Sprintf("%s[%d]", field, i)),
				experiment.Errorf("metric %q is deprecated: new experiments and templates cannot use it", ref.Name))
		}
	}
	return nil
}

const dayMicros = metric.DayMicros

// Engine returns the metric engine over the store's exposures and events.
func (db *DB) Engine() metric.Engine { return db.engine }

// ResolveMetrics loads the named metrics and the parts of ratio metrics. Invalid
// naming metrics[i] for a metric that is not defined.
func (db *DB) ResolveMetrics(ctx context.Context, names []string) (metric.Resolved, error) {
	defs, err := db.resolveMetrics(ctx, db.db, nil, names)
	if err != nil {
		return nil, internal("store.ResolveMetrics", err)
	}
	return defs, nil
}

// ResolveExperimentMetrics is ResolveMetrics at the versions experiment e
// reads: those pinned when it started (Experiment.MetricVersions; for an
// experiment started before versions existed, those current at its start),
// the current ones for a draft.
func (db *DB) ResolveExperimentMetrics(ctx context.Context, e *experiment.Experiment, names []string) (metric.Resolved, error) {
	defs, err := db.resolveMetrics(ctx, db.db, e, names)
	if err != nil {
		return nil, internal("store.ResolveExperimentMetrics", err)
	}
	return defs, nil
}

// HoldoutPopulation is metric.HoldoutPopulation with the experiments naming h
// read from the registry.
func (db *DB) HoldoutPopulation(ctx context.Context, h *experiment.Holdout, version int) (metric.Population, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT key FROM experiments WHERE holdout = ? ORDER BY key`, h.Name)
	if err != nil {
		return metric.Population{}, internal("store.HoldoutPopulation", err)
	}
	defer rows.Close()
	keys := []string{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return metric.Population{}, internal("store.HoldoutPopulation", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return metric.Population{}, internal("store.HoldoutPopulation", err)
	}
	return metric.HoldoutPopulation(h, version, keys), nil
}
