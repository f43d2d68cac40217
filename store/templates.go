package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/liftlab/lift/experiment"
)

// Experiment templates: named designs (metrics, guardrails, analysis plan)
// that new experiments start from (CreateExperimentFrom).

func getTemplate(ctx context.Context, q queryer, name string) (*experiment.Template, error) {
	var doc jsonText
	err := q.QueryRowContext(ctx, `SELECT doc FROM experiment_templates WHERE name = ?`, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(experiment.NotFound, experiment.Errorf("template %q not found", name))
	}
	if err != nil {
		return nil, err
	}
	var t experiment.Template
	if err := json.Unmarshal(doc, &t); err != nil {
		return nil, fmt.Errorf("decoding template %q: %w", name, err)
	}
	return &t, nil
}

func listTemplates(ctx context.Context, q queryer) ([]*experiment.Template, error) {
	return queryAll(ctx, q, "store.ListTemplates", func(r interface{ Scan(...any) error }) (*experiment.Template, error) {
		var doc jsonText
		if err := r.Scan(&doc); err != nil {
			return nil, err
		}
		var t experiment.Template
		if err := json.Unmarshal(doc, &t); err != nil {
			return nil, err
		}
		return &t, nil
	}, `SELECT doc FROM experiment_templates ORDER BY name`)
}

// checkTemplateMetrics checks that the template's metrics and guardrails are
// defined and not deprecated (Invalid naming metrics[i] or guardrails[i]).
func checkTemplateMetrics(ctx context.Context, q queryer, t *experiment.Template) error {
	check := func(field, name string) error {
		m, err := getMetric(ctx, q, name)
		if experiment.KindOf(err) == experiment.NotFound {
			return experiment.E(experiment.Invalid, experiment.Field(field), experiment.Errorf("unknown metric %q: define it first (POST /v1/metrics)", name))
		}
		if err != nil {
			return err
		}
		if m.Deprecated {
			return experiment.E(experiment.Invalid, experiment.Field(field),
				experiment.Errorf("metric %q is deprecated: new experiments and templates cannot use it", name))
		}
		return nil
	}
	for i, m := range t.Metrics {
		if err := check("metrics["+strconv.Itoa(i)+"]", m.Name); err != nil {
			return err
		}
	}
	for i, g := range t.Guardrails {
		if err := check("guardrails["+strconv.Itoa(i)+"]", g); err != nil {
			return err
		}
	}
	return nil
}

// PutTemplate validates and stores an experiment template with its audit
// entry in one transaction: create true makes a new one (Conflict when the
// name is taken), false replaces the stored one whole (NotFound when there is
// none). Its metrics and guardrails must be defined and not deprecated
// (Invalid naming the field). Experiments made from the template before are
// not changed.
func (db *DB) PutTemplate(ctx context.Context, actor string, in *experiment.Template, create bool) (*experiment.Template, error) {
	const op = "store.PutTemplate"
	if in == nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Errorf("no template given"))
	}
	t := *in
	if err := t.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		old, err := getTemplate(ctx, tx, t.Name)
		switch {
		case err == nil && create:
			return experiment.E(experiment.Conflict, experiment.Field("name"), experiment.Errorf("template %q already exists", t.Name))
		case err != nil && (!create || experiment.KindOf(err) != experiment.NotFound):
			return err
		}
		if err := checkTemplateMetrics(ctx, tx, &t); err != nil {
			return err
		}
		now := db.now()
		t.CreatedAt, t.UpdatedAt = now, now
		doc, err := json.Marshal(&t)
		if err != nil {
			return err
		}
		if create {
			if _, err := tx.ExecContext(ctx, `INSERT INTO experiment_templates (name, doc, created_at, updated_at) VALUES (?, ?, ?, ?)`,
				t.Name, string(doc), now, now); err != nil {
				return err
			}
			return db.audit(ctx, tx, now, actor, "template.create", "template", t.Name, nil, &t)
		}
		t.CreatedAt = old.CreatedAt
		if doc, err = json.Marshal(&t); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE experiment_templates SET doc = ?, updated_at = ? WHERE name = ?`, string(doc), now, t.Name); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "template.update", "template", t.Name, old, &t)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return &t, nil
}

// GetTemplate returns the template name; NotFound when there is none.
func (db *DB) GetTemplate(ctx context.Context, name string) (*experiment.Template, error) {
	t, err := getTemplate(ctx, db.db, name)
	if err != nil {
		return nil, internal("store.GetTemplate", err)
	}
	return t, nil
}

// ListTemplates returns every template, by name.
func (db *DB) ListTemplates(ctx context.Context) ([]*experiment.Template, error) {
	return listTemplates(ctx, db.db)
}

// DeleteTemplate deletes template name with its audit entry; NotFound when
// there is none. Experiments made from it keep their design (and the name,
// as a record).
func (db *DB) DeleteTemplate(ctx context.Context, actor, name string) error {
	const op = "store.DeleteTemplate"
	db.regMu.Lock()
	defer db.regMu.Unlock()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		old, err := getTemplate(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM experiment_templates WHERE name = ?`, name); err != nil {
			return err
		}
		return db.audit(ctx, tx, db.now(), actor, "template.delete", "template", name, old, nil)
	})
	return internal(op, err)
}
