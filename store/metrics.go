package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// Metric registry. What a metric computes (the per-unit definition, windows,
// caps, CUPED, ratios) is package metric's; the engine over this store's
// exposures and events is metric/duckdb (DB.Engine).

// CreateMetric validates and stores a metric definition with its audit entry in
// one transaction. A ratio metric must name existing non-ratio, non-mean metrics
// and cannot be capped (cap its numerator or denominator instead). Conflict if
// the name is taken.
func (db *DB) CreateMetric(ctx context.Context, actor string, in *experiment.Metric) (*experiment.Metric, error) {
	const op = "store.CreateMetric"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no metric given"))
	}
	m := *in
	if err := m.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	if m.Aggregation == experiment.Ratio {
		if m.Cap != nil {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("cap"),
				experiment.Errorf("a ratio metric cannot be capped: cap its numerator or denominator metric"))
		}
		for _, part := range []struct{ field, name string }{{"numerator", m.Numerator}, {"denominator", m.Denominator}} {
			pm, err := getMetric(ctx, db.db, part.name)
			if experiment.KindOf(err) == experiment.NotFound {
				return nil, experiment.E(op, experiment.Invalid, experiment.Field(part.field),
					experiment.Errorf("metric %q does not exist: create it first", part.name))
			}
			if err != nil {
				return nil, internal(op, err)
			}
			if pm.Aggregation == experiment.Ratio || pm.Aggregation == experiment.Mean {
				return nil, experiment.E(op, experiment.Invalid, experiment.Field(part.field),
					experiment.Errorf("metric %q is a %s metric: a ratio's parts must be sum, count or binary metrics", part.name, pm.Aggregation))
			}
		}
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
		return db.audit(ctx, tx, now, actor, "metric.create", "metric", m.Name, nil, &m)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return &m, nil
}

// GetMetric returns a metric definition; NotFound when there is none.
func (db *DB) GetMetric(ctx context.Context, name string) (*experiment.Metric, error) {
	m, err := getMetric(ctx, db.db, name)
	if err != nil {
		return nil, internal("store.GetMetric", err)
	}
	return m, nil
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
	return &m, nil
}

// ListMetrics returns every metric definition, by name.
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
		ms = append(ms, &m)
	}
	return ms, internal(op, rows.Err())
}

// resolveMetrics loads the named metrics and the parts of ratio metrics.
func (db *DB) resolveMetrics(ctx context.Context, names []string) (metric.Resolved, error) {
	defs := metric.Resolved{}
	var load func(name, field string) error
	load = func(name, field string) error {
		if _, ok := defs[name]; ok {
			return nil
		}
		m, err := getMetric(ctx, db.db, name)
		if experiment.KindOf(err) == experiment.NotFound {
			return experiment.E(experiment.Invalid, experiment.Field(field), experiment.Errorf("metric %q is not defined: POST it to /v1/metrics first", name))
		}
		if err != nil {
			return err
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

const dayMicros = metric.DayMicros

// Engine returns the metric engine over the store's exposures and events.
func (db *DB) Engine() metric.Engine { return db.engine }

// ResolveMetrics loads the named metrics and the parts of ratio metrics. Invalid
// naming metrics[i] for a metric that is not defined.
func (db *DB) ResolveMetrics(ctx context.Context, names []string) (metric.Resolved, error) {
	defs, err := db.resolveMetrics(ctx, names)
	if err != nil {
		return nil, internal("store.ResolveMetrics", err)
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
