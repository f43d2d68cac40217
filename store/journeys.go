package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/groupcommit"
	duckdb "github.com/marcboeker/go-duckdb/v2"
)

// ---- journey registry ----

// CreateJourney registers a journey after applying its defaults and validating it:
// its experiment must exist, its holdout must be the experiment's holdout (or
// empty), and its control variant (default the experiment's first variant) must be
// one of the experiment's variants. The journey and its audit entry are written in
// one transaction; a journey with the same key is a Conflict.
func (db *DB) CreateJourney(ctx context.Context, actor string, in *experiment.Journey) (*experiment.Journey, error) {
	const op = "store.CreateJourney"
	j := *in
	j.ControlPolicy.Items = append([]string(nil), in.ControlPolicy.Items...)
	j.ApplyDefaults()
	if err := j.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	db.regMu.Lock()
	defer db.regMu.Unlock()
	e, err := getExperiment(ctx, db.db, j.Experiment)
	if experiment.Is(err, experiment.NotFound) {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("experiment"), experiment.Errorf("experiment %q does not exist", j.Experiment))
	}
	if err != nil {
		return nil, internal(op, err)
	}
	if j.Holdout != "" && j.Holdout != e.Holdout {
		if e.Holdout == "" {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("holdout"),
				experiment.Errorf("experiment %q names no holdout; leave holdout empty or register the experiment with holdout %q", e.Key, j.Holdout))
		}
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("holdout"),
			experiment.Errorf("must be the experiment's holdout %q (or empty), got %q", e.Holdout, j.Holdout))
	}
	if j.Holdout == "" {
		j.Holdout = e.Holdout
	}
	if j.Control == "" {
		j.Control = e.Variants[0].Name
	}
	found := false
	for _, v := range e.Variants {
		found = found || v.Name == j.Control
	}
	if !found {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("control"),
			experiment.Errorf("experiment %q has no variant %q", e.Key, j.Control))
	}
	now := db.now()
	j.CreatedAt, j.UpdatedAt = now, now
	doc, err := json.Marshal(&j)
	if err != nil {
		return nil, internal(op, err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM journeys WHERE key = ?`, j.Key).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return experiment.E(experiment.Conflict, experiment.Field("key"), experiment.Errorf("journey %q already exists", j.Key))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO journeys (key, doc, created_at) VALUES (?, ?, ?)`, j.Key, string(doc), now); err != nil {
			return err
		}
		return db.audit(ctx, tx, now, actor, "journey.create", "journey", j.Key, nil, &j)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return &j, nil
}

// GetJourney returns a journey; NotFound when it does not exist.
func (db *DB) GetJourney(ctx context.Context, key string) (*experiment.Journey, error) {
	const op = "store.GetJourney"
	var doc jsonText
	err := db.db.QueryRowContext(ctx, `SELECT doc FROM journeys WHERE key = ?`, key).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(op, experiment.NotFound, experiment.Errorf("journey %q does not exist", key))
	}
	if err != nil {
		return nil, internal(op, err)
	}
	var j experiment.Journey
	if err := json.Unmarshal(doc, &j); err != nil {
		return nil, internal(op, fmt.Errorf("journey %q: %w", key, err))
	}
	return &j, nil
}

// ListJourneys returns every journey, by key.
func (db *DB) ListJourneys(ctx context.Context) ([]*experiment.Journey, error) {
	const op = "store.ListJourneys"
	rows, err := db.db.QueryContext(ctx, `SELECT doc FROM journeys ORDER BY key`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []*experiment.Journey
	for rows.Next() {
		var doc jsonText
		if err := rows.Scan(&doc); err != nil {
			return nil, internal(op, err)
		}
		var j experiment.Journey
		if err := json.Unmarshal(doc, &j); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, &j)
	}
	return out, internal(op, rows.Err())
}

// ---- decisions ----

// Decision is one stored journey decision (a row of journey_decisions).
type Decision struct {
	ID             string
	TS             time.Time
	Journey        string
	Experiment     string
	Unit           string
	Variant        string // "" for holdout and ineligible units
	Policy         string // experiment.PolicyPersonalized, …
	Reason         string // why a fallback or ineligible decision happened
	Items          json.RawMessage
	ModelVersion   string
	LatencyMS      float64
	InHoldout      bool
	HoldoutVersion int
	Provenance     json.RawMessage // JSON object or nil
}

const decisionCols = 14

// decisionRowsPerInsert bounds the parameters of one INSERT statement.
const decisionRowsPerInsert = 256

// LogDecisions stores decisions in one transaction (all or none). Rows need an
// ID, a journey, an experiment, a unit and a policy; Items must be a JSON array.
func (db *DB) LogDecisions(ctx context.Context, ds []Decision) error {
	const op = "store.LogDecisions"
	for i := range ds {
		if err := checkDecision(i, &ds[i]); err != nil {
			return err
		}
	}
	if len(ds) == 0 {
		return nil
	}
	now := db.now()
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(ds); start += decisionRowsPerInsert {
			chunk := ds[start:min(start+decisionRowsPerInsert, len(ds))]
			var q strings.Builder
			q.WriteString(`INSERT INTO journey_decisions (decision_id, ts, journey, experiment, unit, variant, policy, reason, items, model_version, latency_ms, in_holdout, holdout_version, provenance) VALUES `)
			args := make([]any, 0, len(chunk)*decisionCols)
			for i := range chunk {
				d := &chunk[i]
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				ts := d.TS
				if ts.IsZero() {
					ts = now
				}
				items := string(d.Items)
				if items == "" {
					items = "[]"
				}
				var hv any
				if d.HoldoutVersion > 0 {
					hv = d.HoldoutVersion
				}
				args = append(args, d.ID, ts.UTC(), d.Journey, d.Experiment, d.Unit, nullString(d.Variant), d.Policy,
					nullString(d.Reason), items, nullString(d.ModelVersion), d.LatencyMS, d.InHoldout, hv, nullString(string(d.Provenance)))
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				if isDuplicate(err) {
					return experiment.E(experiment.Conflict, experiment.Field("decision_id"), experiment.Errorf("a decision id is already stored: %v", err))
				}
				return err
			}
		}
		return nil
	})
	return internal(op, err)
}

// checkDecision returns an Invalid error naming decisions[i].field for a bad row.
func checkDecision(i int, d *Decision) error {
	const op = "store.LogDecisions"
	field := func(name string) experiment.Field { return experiment.Field(fmt.Sprintf("decisions[%d].%s", i, name)) }
	switch {
	case d.ID == "":
		return experiment.E(op, experiment.Invalid, field("id"), experiment.Errorf("must not be empty"))
	case d.Journey == "":
		return experiment.E(op, experiment.Invalid, field("journey"), experiment.Errorf("must not be empty"))
	case d.Experiment == "":
		return experiment.E(op, experiment.Invalid, field("experiment"), experiment.Errorf("must not be empty"))
	case d.Unit == "":
		return experiment.E(op, experiment.Invalid, field("unit"), experiment.Errorf("must not be empty"))
	case d.Policy == "":
		return experiment.E(op, experiment.Invalid, field("policy"), experiment.Errorf("must not be empty"))
	case len(d.Items) > 0 && !json.Valid(d.Items):
		return experiment.E(op, experiment.Invalid, field("items"), experiment.Errorf("not valid JSON"))
	case len(d.Provenance) > 0 && !json.Valid(d.Provenance):
		return experiment.E(op, experiment.Invalid, field("provenance"), experiment.Errorf("not valid JSON"))
	}
	return nil
}

// DecisionLogOptions configures a DecisionLog.
type DecisionLogOptions struct {
	MaxBatch int // most decisions per transaction, default 1024
	// MaxWait is how long the first decision of a group waits for others (default
	// 5 ms; negative: no wait, a group is what queued during the previous commit).
	// Each group is one commit to a table with a primary key; without a window, at
	// 500 decisions/s on 2 cores, groups of one or two rows made hundreds of commits
	// a second that took the CPU the scorer needed (journey benchmark: p99 77 →
	// 155 ms).
	MaxWait time.Duration
	Queue   int // decisions that may wait, default 8192
}

// DecisionLog batches decisions from concurrent callers into few transactions
// (group commit, internal/groupcommit): Log returns once the decision's
// transaction committed, so an acknowledged decision is stored. When a group fails
// (a repeated decision id), its decisions are committed again one by one, so only
// the bad one fails.
type DecisionLog struct {
	db *DB
	gc *groupcommit.Loop[Decision]
	w  *decisionAppender // used by the loop's one lane only; nil until first use and after a failure
}

// NewDecisionLog starts a batching writer of decisions over db. Close it before
// closing db.
func (db *DB) NewDecisionLog(opt DecisionLogOptions) *DecisionLog {
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 1024
	}
	if opt.Queue <= 0 {
		opt.Queue = 8192
	}
	if opt.MaxWait == 0 {
		opt.MaxWait = 5 * time.Millisecond
	}
	l := &DecisionLog{db: db}
	l.gc = groupcommit.New(groupcommit.Options{
		Queue:    opt.Queue,
		MaxGroup: opt.MaxBatch,
		Window:   opt.MaxWait, // negative: none
		Lanes:    1,
		Logger:   db.log.With("log", "journey decisions"),
	}, func(_ int, group []Decision) error { return l.commit(group) }, nil)
	return l
}

// commit writes one group on the log's appender, made on first use and again
// after a failure.
func (l *DecisionLog) commit(group []Decision) error {
	var err error
	if l.w == nil {
		l.w, err = l.db.newDecisionAppender()
	}
	if err == nil {
		if err = l.w.commit(group); err != nil {
			l.w.close()
			l.w = nil
		}
	}
	if err != nil {
		return internal("store.DecisionLog", err)
	}
	return nil
}

// queueError turns the group-commit loop's errors into Unavailable errors of op.
func queueError(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, groupcommit.ErrClosed):
		return experiment.E(op, experiment.Unavailable, experiment.Errorf("decision log is closed"))
	case errors.Is(err, groupcommit.ErrQueueFull):
		return experiment.E(op, experiment.Unavailable, experiment.Errorf("decision queue full: %v", ctx.Err()))
	case errors.Is(err, groupcommit.ErrNotAnswered):
		// The decision stays queued and will be written; the caller stops waiting.
		return experiment.E(op, experiment.Unavailable, experiment.Errorf("waiting for the decision to commit: %v", ctx.Err()))
	}
	return err
}

// Log stores one decision and returns after its transaction committed. A bad
// decision is an Invalid error and is not queued. When the queue stays full until
// ctx ends it returns an Unavailable error.
func (l *DecisionLog) Log(ctx context.Context, d Decision) error {
	if err := checkDecision(0, &d); err != nil {
		return err
	}
	return queueError(ctx, "store.DecisionLog.Log", l.gc.Submit(ctx, d))
}

// Enqueue queues one decision and returns without waiting for its commit (it is
// written with the next group, within MaxWait). A failed write is logged. When the
// queue stays full until ctx ends it returns an Unavailable error.
func (l *DecisionLog) Enqueue(ctx context.Context, d Decision) error {
	if err := checkDecision(0, &d); err != nil {
		return err
	}
	return queueError(ctx, "store.DecisionLog.Enqueue", l.gc.Enqueue(ctx, d))
}

// Flush returns once every decision queued before the call is written.
func (l *DecisionLog) Flush(ctx context.Context) error {
	return queueError(ctx, "store.DecisionLog.Flush", l.gc.Flush(ctx))
}

// Close writes what is queued and stops the writer.
func (l *DecisionLog) Close() error {
	l.gc.Close()
	if l.w != nil {
		l.w.close()
		l.w = nil
	}
	return nil
}

// decisionAppender appends decisions on its own connection, one transaction per group.
type decisionAppender struct {
	db   *DB
	conn *sql.Conn
	app  *duckdb.Appender
}

func (db *DB) newDecisionAppender() (*decisionAppender, error) {
	ctx := context.Background()
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("decision log connection: %w", err)
	}
	w := &decisionAppender{db: db, conn: conn}
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "journey_decisions")
		w.app = a
		return err
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("decision appender: %w", err)
	}
	return w, nil
}

func (w *decisionAppender) close() {
	if w.app != nil {
		w.app.Close()
	}
	w.conn.Close()
}

// commit appends the group in one transaction: all rows or none.
func (w *decisionAppender) commit(group []Decision) error {
	ctx := context.Background()
	if _, err := w.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	now := w.db.now()
	err := func() error {
		for i := range group {
			d := &group[i]
			ts := d.TS
			if ts.IsZero() {
				ts = now
			}
			items := string(d.Items)
			if items == "" {
				items = "[]"
			}
			var hv driver.Value
			if d.HoldoutVersion > 0 {
				hv = int32(d.HoldoutVersion)
			}
			if err := w.app.AppendRow(d.ID, ts.UTC(), d.Journey, d.Experiment, d.Unit, nullValue(d.Variant), d.Policy,
				nullValue(d.Reason), items, nullValue(d.ModelVersion), d.LatencyMS, d.InHoldout, hv, nullValue(string(d.Provenance))); err != nil {
				return fmt.Errorf("append: %w", err)
			}
		}
		return w.app.Flush()
	}()
	if err == nil {
		if _, err = w.conn.ExecContext(ctx, "COMMIT"); err == nil {
			w.db.writes.Add(1) // a change of the data (DataVersion): roll-ups read decisions
			return nil
		}
	}
	w.conn.ExecContext(ctx, "ROLLBACK")
	if isDuplicate(err) {
		return experiment.E(experiment.Conflict, experiment.Field("decision_id"), experiment.Errorf("a decision id is already stored: %v", err))
	}
	return err
}

func nullValue(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}

func isDuplicate(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "PRIMARY KEY") || strings.Contains(err.Error(), "Duplicate key") || strings.Contains(err.Error(), "duplicate key"))
}

// GetDecision returns decision id of journey key, with its provenance; NotFound
// when there is none.
func (db *DB) GetDecision(ctx context.Context, key, id string) (*DecisionRecord, error) {
	const op = "store.GetDecision"
	var d DecisionRecord
	var items string
	var prov sql.NullString
	err := db.db.QueryRowContext(ctx, `SELECT decision_id, ts, journey, experiment, unit, coalesce(variant, ''), policy, coalesce(reason, ''), items,
  coalesce(model_version, ''), provenance FROM journey_decisions WHERE journey = ? AND decision_id = ?`, key, id).Scan(
		&d.ID, &d.TS, &d.Journey, &d.Experiment, &d.Unit, &d.Variant, &d.Policy, &d.Reason, &items, &d.ModelVersion, &prov)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, experiment.E(op, experiment.NotFound, experiment.Errorf("journey %q has no decision %q", key, id))
	}
	if err != nil {
		return nil, internal(op, err)
	}
	d.TS, d.Items = d.TS.UTC(), json.RawMessage(items)
	if prov.Valid {
		d.Provenance = json.RawMessage(prov.String)
	}
	return &d, nil
}

// ---- control policy and training data ----

// ItemCount is an item and how many events named it.
type ItemCount struct {
	Item  string
	Count int64
}

// PopularItems returns the k items named most often by events of type eventType
// at or after since (the item is the "item" property of the event's properties
// JSON), most frequent first, ties by item id.
func (db *DB) PopularItems(ctx context.Context, eventType string, since time.Time, k int) ([]ItemCount, error) {
	const op = "store.PopularItems"
	rows, err := db.db.QueryContext(ctx, `
SELECT item, count(*) AS n FROM (
  SELECT json_extract_string(properties, '$.item') AS item FROM events WHERE type = ? AND ts >= ?
) WHERE item IS NOT NULL AND item <> ''
GROUP BY item ORDER BY n DESC, item LIMIT ?`, eventType, since.UTC(), k)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []ItemCount
	for rows.Next() {
		var c ItemCount
		if err := rows.Scan(&c.Item, &c.Count); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, c)
	}
	return out, internal(op, rows.Err())
}

// ItemEvent is one interaction of a unit with an item.
type ItemEvent struct {
	Unit  string
	Item  string
	Type  string
	Value float64
	TS    time.Time
	// Category is the event's "category" property ("" when it has none): the
	// item's category, which lift model train writes into the model.
	Category string
}

// ItemEvents calls fn for every event of the given types (none: every type) in
// [from, to) (zero times: unbounded) whose properties JSON has a non-empty "item",
// ordered by time, then unit. These are the interactions models are trained on.
func (db *DB) ItemEvents(ctx context.Context, types []string, from, to time.Time, fn func(ItemEvent) error) (int64, error) {
	const op = "store.ItemEvents"
	q := `SELECT unit, json_extract_string(properties, '$.item') AS item, type, value, ts,
		coalesce(json_extract_string(properties, '$.category'), '') FROM events WHERE item IS NOT NULL AND item <> ''`
	var args []any
	if len(types) > 0 {
		q += ` AND type IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(types)), ", ") + `)`
		for _, t := range types {
			args = append(args, t)
		}
	}
	if !from.IsZero() {
		q += ` AND ts >= ?`
		args = append(args, from.UTC())
	}
	if !to.IsZero() {
		q += ` AND ts < ?`
		args = append(args, to.UTC())
	}
	q += ` ORDER BY ts, unit, event_id`
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, internal(op, err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var ev ItemEvent
		if err := rows.Scan(&ev.Unit, &ev.Item, &ev.Type, &ev.Value, &ev.TS, &ev.Category); err != nil {
			return n, internal(op, err)
		}
		if err := fn(ev); err != nil {
			return n, err
		}
		n++
	}
	return n, internal(op, rows.Err())
}

// ---- guardrails per day ----

// JourneyDay is a journey's guardrails for one UTC day.
type JourneyDay struct {
	Journey         string    `json:"journey"`
	Day             time.Time `json:"day"` // midnight UTC
	Decisions       int64     `json:"decisions"`
	Personalized    int64     `json:"personalized"`
	Control         int64     `json:"control"`
	Holdout         int64     `json:"holdout"`
	Fallback        int64     `json:"fallback"`
	Ineligible      int64     `json:"ineligible"`
	FallbackRate    float64   `json:"fallback_rate"`    // fallback / (personalized + fallback)
	IneligibleShare float64   `json:"ineligible_share"` // ineligible / decisions
	LatencyP50      float64   `json:"latency_p50_ms"`
	LatencyP95      float64   `json:"latency_p95_ms"`
	LatencyP99      float64   `json:"latency_p99_ms"`
	ItemsShown      int64     `json:"items_shown"`
	DistinctItems   int64     `json:"distinct_items"`
	Gini            float64   `json:"gini"`
	// ItemCounts are the exposure counts of the items shown that day (not stored;
	// the caller computes Gini from them and the catalog size).
	ItemCounts []int64 `json:"-"`
}

// JourneyDays computes, from the stored decisions, the guardrails of journey key
// for each UTC day in [from, to) that has decisions: counts per policy, the
// fallback rate, the share of ineligible units, latency quantiles (linear
// interpolation, quantile_cont) and the exposure count of each item shown. Gini
// is left 0 for the caller (see ItemCounts).
func (db *DB) JourneyDays(ctx context.Context, key string, from, to time.Time) ([]JourneyDay, error) {
	const op = "store.JourneyDays"
	rows, err := db.db.QueryContext(ctx, `
SELECT CAST(ts AT TIME ZONE 'UTC' AS DATE) AS day, count(*),
  count(*) FILTER (WHERE policy = 'personalized'), count(*) FILTER (WHERE policy = 'control'),
  count(*) FILTER (WHERE policy = 'holdout'), count(*) FILTER (WHERE policy = 'fallback'),
  count(*) FILTER (WHERE policy = 'ineligible'),
  quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.95), quantile_cont(latency_ms, 0.99)
FROM journey_decisions WHERE journey = ? AND ts >= ? AND ts < ?
GROUP BY day ORDER BY day`, key, from.UTC(), to.UTC())
	if err != nil {
		return nil, internal(op, err)
	}
	var days []JourneyDay
	idx := map[string]int{}
	for rows.Next() {
		var d JourneyDay
		if err := rows.Scan(&d.Day, &d.Decisions, &d.Personalized, &d.Control, &d.Holdout, &d.Fallback, &d.Ineligible,
			&d.LatencyP50, &d.LatencyP95, &d.LatencyP99); err != nil {
			rows.Close()
			return nil, internal(op, err)
		}
		d.Journey = key
		d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
		if n := d.Personalized + d.Fallback; n > 0 {
			d.FallbackRate = float64(d.Fallback) / float64(n)
		}
		if d.Decisions > 0 {
			d.IneligibleShare = float64(d.Ineligible) / float64(d.Decisions)
		}
		idx[d.Day.Format(time.DateOnly)] = len(days)
		days = append(days, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	items, err := db.db.QueryContext(ctx, `
SELECT day, count(*) FROM (
  SELECT CAST(ts AT TIME ZONE 'UTC' AS DATE) AS day, unnest(json_extract_string(items, '$[*].id')) AS item
  FROM journey_decisions WHERE journey = ? AND ts >= ? AND ts < ?
) GROUP BY day, item ORDER BY day, item`, key, from.UTC(), to.UTC())
	if err != nil {
		return nil, internal(op, err)
	}
	defer items.Close()
	for items.Next() {
		var day time.Time
		var n int64
		if err := items.Scan(&day, &n); err != nil {
			return nil, internal(op, err)
		}
		i, ok := idx[day.Format(time.DateOnly)]
		if !ok {
			continue
		}
		d := &days[i]
		d.ItemCounts = append(d.ItemCounts, n)
		d.ItemsShown += n
		d.DistinctItems++
	}
	return days, internal(op, items.Err())
}

// SaveJourneyDays stores (replacing) the guardrails of the given days in one
// transaction; roll-ups stored at once are written one after the other.
func (db *DB) SaveJourneyDays(ctx context.Context, days []JourneyDay) error {
	const op = "store.SaveJourneyDays"
	now := db.now()
	db.rollupMu.Lock()
	defer db.rollupMu.Unlock()
	err := db.outputTx(ctx, func(tx *sql.Tx) error {
		for _, d := range days {
			day := d.Day.UTC().Format(time.DateOnly)
			if _, err := tx.ExecContext(ctx, `DELETE FROM journey_daily WHERE journey = ? AND day = CAST(? AS DATE)`, d.Journey, day); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO journey_daily VALUES (?, CAST(? AS DATE), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				d.Journey, day, d.Decisions, d.Personalized, d.Control, d.Holdout, d.Fallback, d.Ineligible,
				d.FallbackRate, d.IneligibleShare, d.LatencyP50, d.LatencyP95, d.LatencyP99,
				d.ItemsShown, d.DistinctItems, d.Gini, now); err != nil {
				return err
			}
		}
		return nil
	})
	return internal(op, err)
}

// SavedJourneyDays reads the stored guardrails of journey key for days in [from, to).
func (db *DB) SavedJourneyDays(ctx context.Context, key string, from, to time.Time) ([]JourneyDay, error) {
	const op = "store.SavedJourneyDays"
	rows, err := db.db.QueryContext(ctx, `
SELECT day, decisions, personalized, control, holdout, fallback, ineligible, fallback_rate, ineligible_share,
  latency_p50_ms, latency_p95_ms, latency_p99_ms, items_shown, distinct_items, gini
FROM journey_daily WHERE journey = ? AND day >= CAST(? AS DATE) AND day < CAST(? AS DATE) ORDER BY day`,
		key, from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []JourneyDay
	for rows.Next() {
		d := JourneyDay{Journey: key}
		var fr, is, p50, p95, p99, g sql.NullFloat64
		if err := rows.Scan(&d.Day, &d.Decisions, &d.Personalized, &d.Control, &d.Holdout, &d.Fallback, &d.Ineligible,
			&fr, &is, &p50, &p95, &p99, &d.ItemsShown, &d.DistinctItems, &g); err != nil {
			return nil, internal(op, err)
		}
		d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
		d.FallbackRate, d.IneligibleShare, d.LatencyP50, d.LatencyP95, d.LatencyP99, d.Gini = fr.Float64, is.Float64, p50.Float64, p95.Float64, p99.Float64, g.Float64
		out = append(out, d)
	}
	return out, internal(op, rows.Err())
}
