package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

// SaveJob creates or replaces a job definition, with an audit entry.
func (db *DB) SaveJob(ctx context.Context, actor string, j *experiment.Job) error {
	const op = "store.SaveJob"
	doc, err := json.Marshal(j)
	if err != nil {
		return internal(op, err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var before jsonText
		err := tx.QueryRowContext(ctx, `SELECT doc FROM jobs WHERE name = ?`, j.Name).Scan(&before)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			before = nil
		case err != nil:
			return err
		default:
			if _, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE name = ?`, j.Name); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (name, doc, created_at) VALUES (?, ?, ?)`, j.Name, string(doc), j.Created); err != nil {
			return err
		}
		var b any
		if before != nil {
			b = json.RawMessage(before)
		}
		return db.audit(ctx, tx, db.now(), actor, "job.save", "job", j.Name, b, j)
	})
	if err != nil {
		return internal(op, err)
	}
	return nil
}

// DeleteJob deletes a job definition (its runs stay), with an audit entry.
func (db *DB) DeleteJob(ctx context.Context, actor, name string) error {
	const op = "store.DeleteJob"
	j, err := db.GetJob(ctx, name)
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE name = ?`, name); err != nil {
			return err
		}
		return db.audit(ctx, tx, db.now(), actor, "job.delete", "job", name, j, nil)
	})
	if err != nil {
		return internal(op, err)
	}
	return nil
}

// GetJob returns a job definition, or NotFound.
func (db *DB) GetJob(ctx context.Context, name string) (*experiment.Job, error) {
	const op = "store.GetJob"
	var doc jsonText
	err := db.db.QueryRowContext(ctx, `SELECT doc FROM jobs WHERE name = ?`, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(op, experiment.NotFound, experiment.Errorf("no job named %q", name))
	}
	if err != nil {
		return nil, internal(op, err)
	}
	var j experiment.Job
	if err := json.Unmarshal(doc, &j); err != nil {
		return nil, internal(op, err)
	}
	return &j, nil
}

// ListJobs returns every job definition by name.
func (db *DB) ListJobs(ctx context.Context) ([]*experiment.Job, error) {
	const op = "store.ListJobs"
	rows, err := db.db.QueryContext(ctx, `SELECT doc FROM jobs ORDER BY name`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*experiment.Job
	for rows.Next() {
		var doc jsonText
		if err := rows.Scan(&doc); err != nil {
			return nil, internal(op, err)
		}
		var j experiment.Job
		if err := json.Unmarshal(doc, &j); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, &j)
	}
	return out, internal(op, rows.Err())
}

// BeginRun records an attempt as running and sets r.ID; it reports skip, recording
// nothing, when the job already succeeded for r.Period.
func (db *DB) BeginRun(ctx context.Context, r *experiment.JobRun) (skip bool, err error) {
	const op = "store.BeginRun"
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM job_periods_done WHERE job = ? AND period = ?`, r.Job, r.Period).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			skip = true
			return nil
		}
		return tx.QueryRowContext(ctx, `INSERT INTO job_runs (job, period, attempt, trigger, start, status) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Job, r.Period, r.Attempt, r.Trigger, r.Start, r.Status).Scan(&r.ID)
	})
	if err != nil {
		return false, internal(op, err)
	}
	return skip, nil
}

// FinishRun records an attempt's end, status, error and output; a succeeded attempt
// marks its period done.
func (db *DB) FinishRun(ctx context.Context, r *experiment.JobRun) error {
	const op = "store.FinishRun"
	var out any
	if len(r.Output) > 0 {
		out = string(r.Output)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE job_runs SET "end" = ?, status = ?, error = ?, output = ? WHERE id = ?`,
			r.End, r.Status, nullString(r.Error), out, r.ID); err != nil {
			return err
		}
		if r.Status != experiment.RunSucceeded {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO job_periods_done (job, period, run_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, r.Job, r.Period, r.ID)
		return err
	})
	return internal(op, err)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ListRuns lists recorded attempts, newest first; job "" lists all jobs.
func (db *DB) ListRuns(ctx context.Context, job string, limit int) ([]*experiment.JobRun, error) {
	const op = "store.ListRuns"
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.db.QueryContext(ctx, `SELECT id, job, period, attempt, trigger, start, "end", status, coalesce(error, ''), output
		FROM job_runs WHERE (? = '' OR job = ?) ORDER BY id DESC LIMIT ?`, job, job, limit)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*experiment.JobRun
	for rows.Next() {
		var r experiment.JobRun
		var end sql.NullTime
		var output jsonText
		if err := rows.Scan(&r.ID, &r.Job, &r.Period, &r.Attempt, &r.Trigger, &r.Start, &end, &r.Status, &r.Error, &output); err != nil {
			return nil, internal(op, err)
		}
		if end.Valid {
			t := end.Time.UTC()
			r.End = &t
		}
		r.Period, r.Start = r.Period.UTC(), r.Start.UTC()
		if len(output) > 0 {
			r.Output = json.RawMessage(output)
		}
		out = append(out, &r)
	}
	return out, internal(op, rows.Err())
}

// AddAlert appends an alert to the log and sets its ID. The same finding (job,
// period, kind, target) is logged once: a repeat reports created false and fills
// a's ID, Delivered and Attempts from the stored alert.
func (db *DB) AddAlert(ctx context.Context, a *experiment.Alert) (created bool, err error) {
	const op = "store.AddAlert"
	err = db.db.QueryRowContext(ctx, `INSERT INTO alerts (ts, job, period, kind, target, severity, message, delivered)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
		a.At, a.Job, a.Period, a.Kind, a.Target, a.Severity, a.Message, a.Delivered).Scan(&a.ID)
	if errors.Is(err, sql.ErrNoRows) {
		err = db.db.QueryRowContext(ctx, `SELECT a.id, a.delivered, coalesce(d.attempts, 0) FROM alerts a
			LEFT JOIN alert_deliveries d ON d.alert_id = a.id WHERE a.job = ? AND a.period = ? AND a.kind = ? AND a.target = ?`,
			a.Job, a.Period, a.Kind, a.Target).Scan(&a.ID, &a.Delivered, &a.Attempts)
		return false, internal(op, err)
	}
	if err != nil {
		return false, internal(op, err)
	}
	return true, nil
}

// RecordDelivery counts one webhook delivery attempt of an alert and, when it
// succeeded, marks the alert delivered, in one transaction. It returns the
// attempts made so far.
func (db *DB) RecordDelivery(ctx context.Context, id int64, delivered bool) (attempts int, err error) {
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO alert_deliveries (alert_id, attempts) VALUES (?, 1)
			ON CONFLICT (alert_id) DO UPDATE SET attempts = alert_deliveries.attempts + 1 RETURNING attempts`, id).Scan(&attempts); err != nil {
			return err
		}
		if delivered {
			_, err := tx.ExecContext(ctx, `UPDATE alerts SET delivered = true WHERE id = ?`, id)
			return err
		}
		return nil
	})
	return attempts, internal("store.RecordDelivery", err)
}

// MarkAlertDelivered records that an alert reached its webhook (one attempt).
func (db *DB) MarkAlertDelivered(ctx context.Context, id int64) error {
	_, err := db.RecordDelivery(ctx, id, true)
	return err
}

const alertColumns = `a.id, a.ts, a.job, a.period, a.kind, a.target, a.severity, a.message, a.delivered, coalesce(d.attempts, 0)`

const alertsFrom = ` FROM alerts a LEFT JOIN alert_deliveries d ON d.alert_id = a.id`

func scanAlert(s interface{ Scan(...any) error }) (*experiment.Alert, error) {
	var a experiment.Alert
	if err := s.Scan(&a.ID, &a.At, &a.Job, &a.Period, &a.Kind, &a.Target, &a.Severity, &a.Message, &a.Delivered, &a.Attempts); err != nil {
		return nil, err
	}
	a.At, a.Period = a.At.UTC(), a.Period.UTC()
	return &a, nil
}

// ListAlerts lists the alert log, newest first.
func (db *DB) ListAlerts(ctx context.Context, limit int) ([]*experiment.Alert, error) {
	if limit <= 0 {
		limit = 100
	}
	return db.ListAlertsPage(ctx, 0, limit)
}

// ListAlertsPage returns at most limit alerts, newest first, after skipping
// the first offset: the pages of the alert log.
func (db *DB) ListAlertsPage(ctx context.Context, offset, limit int) ([]*experiment.Alert, error) {
	if limit <= 0 {
		limit = 100
	}
	return queryAll(ctx, db.db, "store.ListAlertsPage", scanAlert, `SELECT `+alertColumns+alertsFrom+` ORDER BY a.id DESC LIMIT ? OFFSET ?`, limit, max(offset, 0))
}

// UndeliveredAlerts lists the alerts of a job's period that no webhook has
// acknowledged yet, oldest first.
func (db *DB) UndeliveredAlerts(ctx context.Context, job string, period time.Time) ([]*experiment.Alert, error) {
	return queryAll(ctx, db.db, "store.UndeliveredAlerts", scanAlert,
		`SELECT `+alertColumns+alertsFrom+` WHERE a.job = ? AND a.period = ? AND NOT a.delivered ORDER BY a.id`, job, period)
}

// DigestID is the stable identifier of a job's digest for a period and target.
func DigestID(job string, period time.Time, target string) string {
	id := job + "-" + period.UTC().Format("20060102T1504Z")
	if target != "" {
		id += "-" + target
	}
	return strings.ReplaceAll(id, "/", "_")
}

// PublishDigest stores a digest once: a second publication with the same ID reports
// created false and changes nothing.
func (db *DB) PublishDigest(ctx context.Context, d *experiment.Digest) (created bool, err error) {
	const op = "store.PublishDigest"
	res, err := db.db.ExecContext(ctx, `INSERT INTO digests (id, job, period, target, title, verdict, published_at, summary, html, pdf)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		d.ID, d.Job, d.Period, d.Target, d.Title, d.Verdict, d.At, string(d.JSON), d.HTML, d.PDF)
	if err != nil {
		return false, internal(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, internal(op, err)
	}
	return n == 1, nil
}

// GetDigest returns a digest with its HTML and PDF, or NotFound.
func (db *DB) GetDigest(ctx context.Context, id string) (*experiment.Digest, error) {
	const op = "store.GetDigest"
	ds, err := db.digests(ctx, `WHERE id = ?`, true, id)
	if err != nil {
		return nil, internal(op, err)
	}
	if len(ds) == 0 {
		return nil, experiment.E(op, experiment.NotFound, experiment.Errorf("no digest %q", id))
	}
	return ds[0], nil
}

// ListDigests lists published digests, newest period first, without HTML and PDF.
func (db *DB) ListDigests(ctx context.Context, limit int) ([]*experiment.Digest, error) {
	if limit <= 0 {
		limit = 100
	}
	ds, err := db.digests(ctx, `ORDER BY period DESC, id LIMIT ?`, false, limit)
	return ds, internal("store.ListDigests", err)
}

// ListDigestsPage returns at most limit digests without their HTML and PDF,
// newest period first, after skipping the first offset: the pages of a list.
func (db *DB) ListDigestsPage(ctx context.Context, offset, limit int) ([]*experiment.Digest, error) {
	if limit <= 0 {
		limit = 100
	}
	ds, err := db.digests(ctx, `ORDER BY period DESC, id LIMIT ? OFFSET ?`, false, limit, max(offset, 0))
	return ds, internal("store.ListDigestsPage", err)
}

func (db *DB) digests(ctx context.Context, where string, blobs bool, args ...any) ([]*experiment.Digest, error) {
	cols := `id, job, period, target, title, verdict, published_at, summary`
	if blobs {
		cols += `, html, pdf`
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+cols+` FROM digests `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*experiment.Digest
	for rows.Next() {
		var d experiment.Digest
		var summary jsonText
		dst := []any{&d.ID, &d.Job, &d.Period, &d.Target, &d.Title, &d.Verdict, &d.At, &summary}
		if blobs {
			dst = append(dst, &d.HTML, &d.PDF)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		d.Period, d.At = d.Period.UTC(), d.At.UTC()
		d.JSON = json.RawMessage(summary)
		out = append(out, &d)
	}
	return out, rows.Err()
}
