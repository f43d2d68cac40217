package store

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	duckdb "github.com/marcboeker/go-duckdb/v2"
)

// Event ingest.
//
// Every load, a batch from the API or a whole file, can take the same two steps
// (the staged path):
//
//  1. The rows are validated and written to a per-connection TEMP table
//     (event_stage): by a DuckDB appender for batches and NDJSON, by DuckDB's own
//     CSV and Parquet readers for files. Nothing durable is touched yet, and a bad
//     row stops the load with its line (or row) number.
//  2. One transaction copies the staged rows that are new into events: those
//     already stored are dropped by an anti-join on event_id, and when the load
//     repeats an event_id (checked cheaply: count(DISTINCT hash(event_id))), only
//     the first staged row of each is kept. The number of rows inserted is the
//     number accepted; the rest are duplicates.
//
// CSV and Parquet files first try the direct path (ingestDirect), which reads
// the file straight into events inside the transaction, checking the rows on
// the way, and gives up (rolls back) when the file has a bad row or repeats an
// event_id; the staged path then names the bad rows or removes the repeats.
//
// Every transaction that inserts events first updates the single row of
// event_ingest_lock, so two concurrent loads cannot both insert the same
// event_id: the second one conflicts, rolls back and retries. A load is
// therefore committed whole or not at all, and DuckDB's write-ahead log makes
// the commit durable before IngestEvents or IngestFile returns.

// FileFormat is the format of an event file.
type FileFormat string

// The event file formats.
const (
	CSV     FileFormat = "csv"
	Parquet FileFormat = "parquet"
	NDJSON  FileFormat = "ndjson"
)

// FormatOf guesses a file's format from its extension (.csv, .parquet, .ndjson,
// .jsonl, .json); it returns "" when the extension is unknown.
func FormatOf(path string) FileFormat {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv", ".tsv":
		return CSV
	case ".parquet", ".pq":
		return Parquet
	case ".ndjson", ".jsonl", ".json":
		return NDJSON
	}
	return ""
}

// maxReportedRows bounds how many bad rows an error lists.
const maxReportedRows = 10

// eventColumns are the columns of an event file, in order; the first four are required.
var eventColumns = [...]string{"event_id", "unit", "type", "ts", "value", "properties"}

// IngestEvents stores a batch of events in one transaction and reports how many
// were new and how many were duplicates (an event_id already stored, or repeated
// in the batch). Every row is checked first: a missing event_id, unit or type, a
// zero timestamp, a value that is not a finite number or properties that are not
// a JSON object give an Invalid error naming events[i].field, and nothing is stored.
func (db *DB) IngestEvents(ctx context.Context, events []experiment.Event) (accepted, duplicates int, err error) {
	const op = "store.IngestEvents"
	tb := db.bounds()
	for i := range events {
		if field, msg := checkEvent(&events[i], tb); field != "" {
			return 0, 0, experiment.E(op, experiment.Invalid,
				experiment.Field(fmt.Sprintf("events[%d].%s", i, field)), experiment.Errorf("%s", msg))
		}
	}
	if len(events) == 0 {
		return 0, 0, nil
	}
	conn, err := db.stageConn(ctx)
	if err != nil {
		return 0, 0, experiment.E(op, experiment.Internal, err)
	}
	defer db.releaseStage(conn)
	err = appendStage(ctx, conn, func(a *duckdb.Appender) error {
		for i := range events {
			if err := a.AppendRow(stageRow(&events[i])...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, experiment.E(op, experiment.Internal, fmt.Errorf("staging events: %w", err))
	}
	ids := make(map[string]struct{}, len(events))
	for i := range events {
		ids[events[i].EventID] = struct{}{}
	}
	n, err := db.commitStage(ctx, conn, len(ids) == len(events))
	if err != nil {
		return 0, 0, experiment.E(op, err)
	}
	return int(n), len(events) - int(n), nil
}

// checkEvent returns the first bad field of e and why, or "" when e is valid:
// identifiers with control characters and timestamps outside tb are bad.
func checkEvent(e *experiment.Event, tb tsBounds) (field, msg string) {
	for _, f := range [...]struct{ name, v string }{{"event_id", e.EventID}, {"unit", e.Unit}, {"type", e.Type}} {
		if p := experiment.IdentProblem(f.v); p != "" {
			return f.name, p
		}
	}
	if !e.TS.IsZero() {
		if p := tb.problem(e.TS); p != "" {
			return "ts", p
		}
	}
	switch {
	case e.EventID == "":
		return "event_id", "is required (it makes ingest idempotent)"
	case e.Unit == "":
		return "unit", "is required"
	case e.Type == "":
		return "type", "is required"
	case e.TS.IsZero():
		return "ts", "is required (an RFC 3339 timestamp)"
	case math.IsNaN(e.Value) || math.IsInf(e.Value, 0):
		return "value", fmt.Sprintf("must be a finite number, got %g", e.Value)
	}
	if len(e.Properties) > 0 && string(e.Properties) != "null" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(e.Properties, &obj); err != nil {
			return "properties", "must be a JSON object"
		}
	}
	return "", ""
}

func stageRow(e *experiment.Event) []driver.Value {
	var props any
	if len(e.Properties) > 0 && string(e.Properties) != "null" {
		props = string(e.Properties)
	}
	return []driver.Value{e.EventID, e.Unit, e.Type, e.TS.UTC(), e.Value, props}
}

// stageConn returns a connection of its own (temp tables belong to a connection)
// whose session time zone is UTC, so that timestamps without an offset read as UTC.
func (db *DB) stageConn(ctx context.Context) (*sql.Conn, error) {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SET TimeZone = 'UTC'`); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// releaseStage drops the staging table (it may hold millions of rows) and returns
// the connection to the pool.
func (db *DB) releaseStage(conn *sql.Conn) {
	if _, err := conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS temp.event_stage`); err != nil {
		db.log.Warn("dropping event stage", "err", err)
	}
	conn.Close()
}

const createStage = `CREATE OR REPLACE TEMP TABLE event_stage (
	event_id VARCHAR, unit VARCHAR, type VARCHAR, ts TIMESTAMPTZ, value DOUBLE, properties VARCHAR)`

// appendStage creates an empty staging table on conn and fills it through an appender.
func appendStage(ctx context.Context, conn *sql.Conn, fill func(a *duckdb.Appender) error) error {
	if _, err := conn.ExecContext(ctx, createStage); err != nil {
		return err
	}
	return conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppender(dc.(driver.Conn), "temp", "main", "event_stage")
		if err != nil {
			return err
		}
		if err := fill(a); err != nil {
			a.Close()
			return err
		}
		return a.Close()
	})
}

// insertStaged copies the new staged events into events; see the comment at the
// top. insertUnique is the same when the staged event_ids are known to be
// distinct: removing duplicates inside a load costs a hash aggregation of the
// whole load, so it is done only when the load has some.
//
// Both number the rows they insert from seq0 + 1 (events.seq).
func insertStaged(seq0 int64) string {
	return `INSERT INTO events (event_id, unit, type, ts, value, properties, seq)
SELECT s.event_id, s.unit, s.type, s.ts, s.value, s.properties, ` + strconv.FormatInt(seq0, 10) + ` + row_number() OVER ()
FROM temp.event_stage s SEMI JOIN (SELECT min(rowid) AS r FROM temp.event_stage GROUP BY event_id) k ON s.rowid = k.r
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = s.event_id)`
}

func insertUnique(seq0 int64) string {
	return `INSERT INTO events (event_id, unit, type, ts, value, properties, seq)
SELECT s.event_id, s.unit, s.type, s.ts, s.value, s.properties, ` + strconv.FormatInt(seq0, 10) + ` + row_number() OVER ()
FROM temp.event_stage s
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = s.event_id)`
}

// commitStage inserts the staged events in one transaction, retrying when a
// concurrent ingest holds event_ingest_lock, and returns how many were new.
// unique says the staged event_ids are distinct.
func (db *DB) commitStage(ctx context.Context, conn *sql.Conn, unique bool) (int64, error) {
	q := insertStaged
	if unique {
		q = insertUnique
	}
	return db.commitInsert(ctx, conn, q)
}

// commitInsert runs an INSERT into events in one transaction that first takes
// event_ingest_lock, retrying on conflict, and returns the rows inserted.
func (db *DB) commitInsert(ctx context.Context, conn *sql.Conn, insert func(seq0 int64) string) (int64, error) {
	var n int64
	err := db.lockedTx(ctx, conn, func(tx *sql.Tx, seq0 int64) error {
		res, err := tx.ExecContext(ctx, insert(seq0))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// lockedTx runs f in a transaction on conn that first takes event_ingest_lock,
// and commits when f returns nil. f numbers the rows it inserts from seq0 + 1
// (events.seq): a block of 2^32 numbers taken once the lock is held. A write-write conflict with a concurrent
// ingest rolls back and runs f again after a short wait; a fallback error from
// f is returned as it is, after the rollback.
func (db *DB) lockedTx(ctx context.Context, conn *sql.Conn, f func(tx *sql.Tx, seq0 int64) error) error {
	backoff := time.Millisecond
	for {
		err := db.lockedTxOnce(ctx, conn, f)
		if err == nil {
			return nil
		}
		var fb *fallback
		if errors.As(err, &fb) {
			return err
		}
		if !isConflict(err) {
			return experiment.E(experiment.Internal, fmt.Errorf("storing events: %w", err))
		}
		select {
		case <-ctx.Done():
			return experiment.E(experiment.Unavailable, fmt.Errorf("waiting for a concurrent event ingest: %w", ctx.Err()))
		case <-time.After(backoff):
		}
		if backoff < 100*time.Millisecond {
			backoff *= 2
		}
	}
}

func (db *DB) lockedTxOnce(ctx context.Context, conn *sql.Conn, f func(tx *sql.Tx, seq0 int64) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE event_ingest_lock SET batches = batches + 1 WHERE id = 1`); err != nil {
		return err
	}
	base := db.eventSeqs.reserve(eventBlock)
	defer db.eventSeqs.done(base)
	if err := f(tx, base-1); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	db.writes.Add(1)
	return nil
}

// fallback is the error of a direct load that gave up (see ingestDirect): why
// says what made it give up, for the log.
type fallback struct{ why error }

func (f *fallback) Error() string { return "direct load gave up: " + f.why.Error() }
func (f *fallback) Unwrap() error { return f.why }

// isConflict reports whether err is a DuckDB write-write conflict between transactions.
func isConflict(err error) bool {
	s := err.Error()
	return strings.Contains(s, "onflict") && (strings.Contains(s, "Transaction") || strings.Contains(s, "update") || strings.Contains(s, "write"))
}

// IngestFile loads an event file (CSV or Parquet with the columns event_id, unit,
// type, ts and optionally value and properties; or NDJSON with one event object a
// line) in one transaction and reports how many events were new and how many were
// duplicates. format "" guesses from the extension. A bad row (missing field,
// unparseable timestamp, non-numeric value) fails the whole load with an Invalid
// error listing the first bad lines (CSV, NDJSON) or rows (Parquet), and nothing
// is stored. progress, when not nil, is called with the bytes done out of the
// file's size as the load advances.
func (db *DB) IngestFile(ctx context.Context, path string, format FileFormat, progress func(done, total int64)) (accepted, duplicates int, err error) {
	const op = "store.IngestFile"
	if format == "" {
		if format = FormatOf(path); format == "" {
			return 0, 0, experiment.E(op, experiment.Invalid, experiment.Field("format"),
				experiment.Errorf("cannot tell the format of %s from its extension: give csv, parquet or ndjson", path))
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, experiment.E(op, experiment.Invalid, experiment.Field("file"), err)
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	total := st.Size()
	progress(0, total)
	conn, err := db.stageConn(ctx)
	if err != nil {
		return 0, 0, experiment.E(op, experiment.Internal, err)
	}
	defer db.releaseStage(conn)
	tb := db.bounds()
	if format == CSV || format == Parquet {
		rows, n, handled, err := db.ingestDirect(ctx, conn, path, format, tb)
		if err != nil {
			return 0, 0, experiment.E(op, err)
		}
		if handled {
			progress(total, total)
			return int(n), int(rows - n), nil
		}
	}
	var sg staged
	switch format {
	case CSV:
		sg, err = stageCSV(ctx, conn, path, tb)
	case Parquet:
		sg, err = stageParquet(ctx, conn, path, tb)
	case NDJSON:
		sg, err = stageNDJSON(ctx, conn, path, tb, func(done int64) { progress(done*9/10, total) })
	default:
		err = experiment.E(experiment.Invalid, experiment.Field("format"),
			experiment.Errorf("unknown format %q: give csv, parquet or ndjson", format))
	}
	if err != nil {
		return 0, 0, experiment.E(op, err)
	}
	progress(total*9/10, total)
	n, err := db.commitStage(ctx, conn, sg.unique)
	if err != nil {
		return 0, 0, experiment.E(op, err)
	}
	progress(total, total)
	return int(n), int(sg.rows - n), nil
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// fileColumns returns the column names and types a DuckDB reader finds in a file.
func fileColumns(ctx context.Context, conn *sql.Conn, reader string) (map[string]string, []string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM `+reader+`)`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	types := map[string]string{}
	var order []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, nil, err
		}
		types[strings.ToLower(name)] = typ
		order = append(order, name)
	}
	return types, order, rows.Err()
}

// checkColumns requires the event columns and rejects unknown ones.
func checkColumns(path string, cols map[string]string, order []string) error {
	for _, c := range eventColumns[:4] {
		if _, ok := cols[c]; !ok {
			return experiment.E(experiment.Invalid, experiment.Field(c),
				experiment.Errorf("%s has no %q column (it has %s; want event_id, unit, type, ts and optionally value, properties)",
					filepath.Base(path), c, strings.Join(order, ", ")))
		}
	}
	for _, c := range order {
		known := false
		for _, k := range eventColumns {
			known = known || strings.EqualFold(c, k)
		}
		if !known {
			return experiment.E(experiment.Invalid, experiment.Field(c),
				experiment.Errorf("%s has an unknown column %q (want event_id, unit, type, ts, value, properties)", filepath.Base(path), c))
		}
	}
	return nil
}

// staged describes a staged load: its rows, and whether their event_ids are distinct.
type staged struct {
	rows   int64
	unique bool
}

// csvSelect checks a CSV file's header and returns the SELECT that reads it as
// events with DuckDB's reader; opts are more reader options (", name = value").
func csvSelect(ctx context.Context, conn *sql.Conn, path, opts string) (string, error) {
	sniff := `read_csv(` + sqlString(path) + `, header = true, all_varchar = true)`
	cols, order, err := fileColumns(ctx, conn, sniff)
	if err != nil {
		return "", experiment.E(experiment.Invalid, experiment.Field("file"), fmt.Errorf("reading %s as CSV: %w", filepath.Base(path), err))
	}
	if err := checkColumns(path, cols, order); err != nil {
		return "", err
	}
	want := map[string]string{"event_id": "VARCHAR", "unit": "VARCHAR", "type": "VARCHAR", "ts": "TIMESTAMPTZ", "value": "DOUBLE", "properties": "VARCHAR"}
	var typeList []string
	for _, c := range order {
		typeList = append(typeList, fmt.Sprintf("%s: '%s'", sqlString(c), want[strings.ToLower(c)]))
	}
	value, props := "0.0", "NULL"
	if _, ok := cols["value"]; ok {
		value = "COALESCE(value, 0.0)"
	}
	if _, ok := cols["properties"]; ok {
		props = "NULLIF(properties, '')"
	}
	return `SELECT event_id, unit, type, ts, ` + value + ` AS value, ` + props + ` AS properties
FROM read_csv(` + sqlString(path) + `, header = true, types = {` + strings.Join(typeList, ", ") + `}` + opts + `)`, nil
}

// stageCSV reads a CSV file with DuckDB's reader into the staging table. Values
// that do not parse as their column's type are collected by the reader's
// store_rejects option with their line numbers.
func stageCSV(ctx context.Context, conn *sql.Conn, path string, tb tsBounds) (staged, error) {
	src, err := csvSelect(ctx, conn, path, `,
	store_rejects = true, rejects_table = 'event_rejects', rejects_scan = 'event_reject_scans'`)
	if err != nil {
		return staged{}, err
	}
	q := `CREATE OR REPLACE TEMP TABLE event_stage AS ` + src
	if _, err := conn.ExecContext(ctx, `DROP TABLE IF EXISTS temp.event_rejects; DROP TABLE IF EXISTS temp.event_reject_scans`); err != nil {
		return staged{}, err
	}
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return staged{}, experiment.E(experiment.Invalid, experiment.Field("file"), fmt.Errorf("reading %s as CSV: %w", filepath.Base(path), err))
	}
	defer conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS temp.event_rejects; DROP TABLE IF EXISTS temp.event_reject_scans`)
	rows, err := conn.QueryContext(ctx, `SELECT line, column_name, error_type, csv_line FROM temp.event_rejects ORDER BY line LIMIT `+fmt.Sprint(maxReportedRows+1))
	if err != nil {
		return staged{}, err
	}
	var bad []string
	for rows.Next() {
		var line int64
		var col, typ, text sql.NullString
		if err := rows.Scan(&line, &col, &typ, &text); err != nil {
			rows.Close()
			return staged{}, err
		}
		bad = append(bad, describeReject(line, col.String, typ.String, text.String))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return staged{}, err
	}
	if len(bad) > 0 {
		return staged{}, badRows(path, bad)
	}
	// Lines = staged row + 1 (the header): the reader keeps the file's order and
	// nothing was rejected.
	return checkStaged(ctx, conn, path, "line", "row_number() OVER () + 1", tb)
}

func describeReject(line int64, col, typ, text string) string {
	what := "is malformed"
	switch {
	case strings.EqualFold(col, "ts"):
		what = "is not a timestamp"
	case strings.EqualFold(col, "value"):
		what = "is not a number"
	case typ == "TOO MANY COLUMNS" || typ == "MISSING COLUMNS":
		what = "has the wrong number of columns"
	}
	if col == "" {
		return fmt.Sprintf("line %d %s: %q", line, what, strings.TrimSpace(text))
	}
	return fmt.Sprintf("line %d: %s %s (%q)", line, col, what, strings.TrimSpace(text))
}

func badRows(path string, bad []string) error {
	more := ""
	if len(bad) > maxReportedRows {
		bad, more = bad[:maxReportedRows], "; and more"
	}
	return experiment.E(experiment.Invalid, experiment.Field("file"),
		experiment.Errorf("%s has bad rows, nothing was loaded: %s%s", filepath.Base(path), strings.Join(bad, "; "), more))
}

// controlChars matches what experiment.IdentProblem refuses: control characters
// (the file readers refuse invalid UTF-8 themselves).
const controlChars = `'[\x00-\x1f\x7f-\x{9f}]'`

// badEventCond is true for an event row with a missing field, an identifier
// with control characters, a timestamp outside tb, a value that is not a finite
// number, or properties that are not JSON.
func badEventCond(tb tsBounds) string {
	return `event_id IS NULL OR event_id = '' OR unit IS NULL OR unit = '' OR type IS NULL OR type = ''
	OR regexp_matches(event_id, ` + controlChars + `) OR regexp_matches(unit, ` + controlChars + `) OR regexp_matches(type, ` + controlChars + `)
	OR ts IS NULL OR ` + tb.sqlOutside("ts") + ` OR value IS NULL OR isnan(value) OR isinf(value) OR (properties IS NOT NULL AND NOT coalesce(json_valid(properties), false))`
}

// checkStaged finds staged rows with a missing field or properties that are not
// JSON, and names them by position (pos is the SQL giving a row's line or row
// number, unit the word for it). It returns the number of staged rows.
func checkStaged(ctx context.Context, conn *sql.Conn, path, unit, pos string, tb tsBounds) (staged, error) {
	badCond := badEventCond(tb)
	// Distinct hashes prove distinct ids; a collision only costs the slower insert.
	var n, nbad, distinct int64
	if err := conn.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE `+badCond+`), count(DISTINCT hash(event_id)) FROM temp.event_stage`).Scan(&n, &nbad, &distinct); err != nil {
		return staged{}, err
	}
	if nbad == 0 {
		return staged{rows: n, unique: distinct == n}, nil
	}
	rows, err := conn.QueryContext(ctx, `SELECT pos, event_id, unit, type, ts IS NULL, CAST(ts AS VARCHAR), `+tb.sqlOutside("ts")+`, value, properties IS NOT NULL AND NOT coalesce(json_valid(properties), false)
FROM (SELECT `+pos+` AS pos, * FROM temp.event_stage) WHERE `+badCond+` ORDER BY pos LIMIT `+fmt.Sprint(maxReportedRows+1))
	if err != nil {
		return staged{}, err
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var p int64
		var id, u, ty sql.NullString
		var ts sql.NullString
		var noTS, outTS sql.NullBool
		var badProps bool
		var v sql.NullFloat64
		if err := rows.Scan(&p, &id, &u, &ty, &noTS, &ts, &outTS, &v, &badProps); err != nil {
			return staged{}, err
		}
		var what string
		switch {
		case id.String == "":
			what = "event_id is missing"
		case u.String == "":
			what = "unit is missing"
		case ty.String == "":
			what = "type is missing"
		case experiment.IdentProblem(id.String) != "":
			what = "event_id " + experiment.IdentProblem(id.String)
		case experiment.IdentProblem(u.String) != "":
			what = "unit " + experiment.IdentProblem(u.String)
		case experiment.IdentProblem(ty.String) != "":
			what = "type " + experiment.IdentProblem(ty.String)
		case noTS.Bool:
			what = "ts is missing or not a timestamp"
		case outTS.Bool:
			what = "ts " + tb.problemText(ts.String)
		case !v.Valid || math.IsNaN(v.Float64) || math.IsInf(v.Float64, 0):
			what = "value is not a finite number"
		default:
			what = "properties is not JSON"
		}
		bad = append(bad, fmt.Sprintf("%s %d: %s", unit, p, what))
	}
	if err := rows.Err(); err != nil {
		return staged{}, err
	}
	return staged{}, badRows(path, bad)
}

// stageParquet reads a Parquet file into the staging table, casting columns that
// are not already of the event type; a value that does not cast is reported with
// its row number (from 1).
func stageParquet(ctx context.Context, conn *sql.Conn, path string, tb tsBounds) (staged, error) {
	src, err := parquetSelect(ctx, conn, path)
	if err != nil {
		return staged{}, err
	}
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE event_stage AS `+src); err != nil {
		return staged{}, experiment.E(experiment.Invalid, experiment.Field("file"), fmt.Errorf("reading %s as Parquet: %w", filepath.Base(path), err))
	}
	return checkStaged(ctx, conn, path, "row", "row_number() OVER ()", tb)
}

// parquetSelect checks a Parquet file's columns and returns the SELECT that reads
// it as events.
func parquetSelect(ctx context.Context, conn *sql.Conn, path string) (string, error) {
	reader := `read_parquet(` + sqlString(path) + `)`
	cols, order, err := fileColumns(ctx, conn, reader)
	if err != nil {
		return "", experiment.E(experiment.Invalid, experiment.Field("file"), fmt.Errorf("reading %s as Parquet: %w", filepath.Base(path), err))
	}
	if err := checkColumns(path, cols, order); err != nil {
		return "", err
	}
	// A column of the wrong type becomes NULL by TRY_CAST, and the check below
	// reports it (NULL with a non-NULL source).
	col := func(name, typ string) string {
		t, ok := cols[name]
		if !ok {
			return "NULL"
		}
		if t == typ {
			return `"` + name + `"`
		}
		return `TRY_CAST("` + name + `" AS ` + typ + `)`
	}
	value := "0.0"
	if _, ok := cols["value"]; ok {
		value = `CASE WHEN "value" IS NULL THEN 0.0 ELSE ` + col("value", "DOUBLE") + ` END`
	}
	props := "NULL"
	if t, ok := cols["properties"]; ok {
		props = `CAST("properties" AS VARCHAR)`
		if t == "JSON" || t == "VARCHAR" {
			props = `NULLIF(CAST("properties" AS VARCHAR), '')`
		}
	}
	return `SELECT ` + col("event_id", "VARCHAR") + ` AS event_id, ` + col("unit", "VARCHAR") + ` AS unit, ` +
		col("type", "VARCHAR") + ` AS type, ` + col("ts", "TIMESTAMP WITH TIME ZONE") + ` AS ts, ` +
		value + ` AS value, ` + props + ` AS properties
FROM ` + reader, nil
}

// ingestDirect loads a CSV or Parquet file without staging it, in one
// transaction that takes event_ingest_lock (see lockedTx):
//
//  1. One INSERT reads the file into events and checks every row on the way: a
//     value that does not parse stops DuckDB's reader, and a row with a missing
//     field, a value that is not finite or properties that are not JSON stops
//     the statement through error(). When events already has rows, those
//     already stored are dropped by an anti-join on the checked event_id, so the
//     check covers them too.
//  2. One aggregate over just the inserted rows (their rowids follow those of
//     every stored row) checks that their event_ids are distinct; repeats among
//     dropped rows are plain duplicates. For Parquet it checks the inserted rows
//     again: DuckDB plans the INSERT with the column statistics of the file's
//     footer, which a damaged or hand-made file may get wrong, and with a
//     footer whose min and max exclude the timestamp bounds the planner folds
//     the bound check to false. The inserted rows have no statistics while the
//     transaction is open (DuckDB keeps none for a table with uncommitted
//     rows), so this check reads the values themselves. Rows the anti-join
//     dropped are not stored; in a file with a wrong footer they are counted
//     as duplicates unchecked.
//  3. When the anti-join may have dropped rows, the file's rows are counted for
//     the duplicates figure: DuckDB counts CSV rows without converting their
//     values, and Parquet rows from the file's footer.
//
// The file is thus parsed once and written once. When it has a bad row or
// repeats an event_id among its new rows, ingestDirect rolls back and reports
// handled = false: the caller then takes the staged path, which names the bad
// lines or rows, or keeps the first row of each repeated event_id.
func (db *DB) ingestDirect(ctx context.Context, conn *sql.Conn, path string, format FileFormat, tb tsBounds) (rows, accepted int64, handled bool, err error) {
	var src string
	switch format {
	case CSV:
		src, err = csvSelect(ctx, conn, path, "")
	case Parquet:
		src, err = parquetSelect(ctx, conn, path)
	default:
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	// giveUp turns an error of the file's statements into a fallback, unless the
	// load must stop (canceled) or retry (a concurrent ingest).
	giveUp := func(err error) error {
		if ctx.Err() != nil || isConflict(err) {
			return err
		}
		return &fallback{why: err}
	}
	err = db.lockedTx(ctx, conn, func(tx *sql.Tx, seq0 int64) error {
		var last int64 // the largest rowid stored, -1 when events is empty
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rowid), -1) FROM events`).Scan(&last); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, directInsert(src, last >= 0, tb, seq0))
		if err != nil {
			return giveUp(err)
		}
		if accepted, err = res.RowsAffected(); err != nil {
			return err
		}
		var n, distinct, nbad, threads int64
		if err := tx.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&threads); err != nil {
			return err
		}
		recheck := "false"
		if format == Parquet {
			recheck = badEventCond(tb)
		}
		if err := tx.QueryRowContext(ctx, newRowsCheck(last, threads, recheck)).Scan(&n, &distinct, &nbad); err != nil {
			return err
		}
		switch {
		case nbad != 0:
			return &fallback{why: fmt.Errorf("%d inserted rows are bad, which the file's column statistics hid from the row check", nbad)}
		case n != accepted:
			return &fallback{why: fmt.Errorf("%d rows inserted, but %d rows follow the stored ones", accepted, n)}
		case distinct != n:
			// Distinct hashes prove distinct ids; a collision only costs the staged path.
			return &fallback{why: fmt.Errorf("the file repeats an event_id (%d new rows, %d distinct id hashes)", n, distinct)}
		}
		rows = accepted
		if last >= 0 {
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (`+src+`)`).Scan(&rows); err != nil {
				return giveUp(err)
			}
			if rows < accepted {
				return &fallback{why: fmt.Errorf("%d rows inserted from a file of %d rows", accepted, rows)}
			}
		}
		return nil
	})
	var fb *fallback
	if errors.As(err, &fb) {
		db.log.Debug("event file: direct load gave up, staging it", "file", filepath.Base(path), "format", string(format), "why", fb.why.Error())
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	db.log.Debug("event file loaded directly", "file", filepath.Base(path), "format", string(format), "rows", rows, "new", accepted)
	return rows, accepted, true, nil
}

// newRowsCheck is the query of ingestDirect that counts the rows after rowid
// last, the rows the transaction inserted, their distinct event_id hashes, and
// those of them for which the SQL condition bad holds.
// DuckDB 1.4 scans a transaction's own new rows with one thread (1.5 s for 10M
// rows with 1 or 2 threads), so the query reads them in one branch per thread,
// each taking the rowids of one residue, which spreads the scan and the
// aggregation (1 s with 2 threads).
func newRowsCheck(last, threads int64, bad string) string {
	k := min(max(threads, 1), 8)
	parts := make([]string, k)
	for i := range parts {
		parts[i] = fmt.Sprintf(`SELECT hash(event_id) AS h, (%s) AS bad FROM events WHERE rowid > %d AND rowid %% %d = %d`, bad, last, k, i)
	}
	return `SELECT count(*), count(DISTINCT h), count(*) FILTER (WHERE bad) FROM (` + strings.Join(parts, "\n\tUNION ALL ") + `)`
}

// directInsert is the INSERT of ingestDirect. The row check sits in the
// expression of event_id, the key of the anti-join, so that no optimizer can
// drop a row before it is checked.
func directInsert(src string, antiJoin bool, tb tsBounds, seq0 int64) string {
	q := `INSERT INTO events (event_id, unit, type, ts, value, properties, seq)
SELECT s.event_id, s.unit, s.type, s.ts, s.value, s.properties, ` + strconv.FormatInt(seq0, 10) + ` + row_number() OVER () FROM (
	SELECT CASE WHEN ` + badEventCond(tb) + ` THEN error('bad event row (the staged load names it)') ELSE event_id END AS event_id,
		unit, type, ts, value, properties
	FROM (` + src + `)
) s`
	if antiJoin {
		q += `
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = s.event_id)`
	}
	return q
}

// ndjsonEvent is one NDJSON line; Value is raw so that a string is reported, not coerced.
type ndjsonEvent struct {
	EventID    string          `json:"event_id"`
	Unit       string          `json:"unit"`
	Type       string          `json:"type"`
	TS         json.RawMessage `json:"ts"`
	Value      json.RawMessage `json:"value"`
	Properties json.RawMessage `json:"properties"`
}

// stageNDJSON parses an NDJSON file line by line in Go (exact line numbers, strict
// fields) and appends the events to the staging table.
func stageNDJSON(ctx context.Context, conn *sql.Conn, path string, tb tsBounds, progress func(done int64)) (staged, error) {
	f, err := os.Open(path)
	if err != nil {
		return staged{}, experiment.E(experiment.Invalid, experiment.Field("file"), err)
	}
	defer f.Close()
	var bad []string
	var n int64
	err = appendStage(ctx, conn, func(a *duckdb.Appender) error {
		cr := &countingReader{r: f}
		sc := bufio.NewScanner(cr)
		sc.Buffer(make([]byte, 0, 1<<16), 16<<20)
		line := 0
		for sc.Scan() {
			line++
			if line%100_000 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				progress(cr.n)
			}
			b := sc.Bytes()
			if len(strings.TrimSpace(string(b))) == 0 {
				continue
			}
			e, msg := parseNDJSONLine(b, tb)
			if msg != "" {
				bad = append(bad, fmt.Sprintf("line %d: %s", line, msg))
				if len(bad) > maxReportedRows {
					return nil
				}
				continue
			}
			if len(bad) > 0 {
				continue
			}
			if err := a.AppendRow(stageRow(&e)...); err != nil {
				return err
			}
			n++
		}
		return sc.Err()
	})
	if err != nil {
		return staged{}, experiment.E(experiment.Invalid, experiment.Field("file"), fmt.Errorf("reading %s: %w", filepath.Base(path), err))
	}
	if len(bad) > 0 {
		return staged{}, badRows(path, bad)
	}
	var distinct int64
	if err := conn.QueryRowContext(ctx, `SELECT count(DISTINCT hash(event_id)) FROM temp.event_stage`).Scan(&distinct); err != nil {
		return staged{}, err
	}
	return staged{rows: n, unique: distinct == n}, nil
}

// parseNDJSONLine decodes and checks one event; msg says what is wrong.
func parseNDJSONLine(b []byte, tb tsBounds) (e experiment.Event, msg string) {
	var r ndjsonEvent
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return e, "not an event object: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	e = experiment.Event{EventID: r.EventID, Unit: r.Unit, Type: r.Type, Properties: r.Properties}
	if len(r.TS) > 0 && string(r.TS) != "null" {
		if err := json.Unmarshal(r.TS, &e.TS); err != nil {
			return e, fmt.Sprintf("ts is not an RFC 3339 timestamp: %s", r.TS)
		}
	}
	if len(r.Value) > 0 && string(r.Value) != "null" {
		if err := json.Unmarshal(r.Value, &e.Value); err != nil {
			return e, fmt.Sprintf("value is not a number: %s", r.Value)
		}
	}
	if field, why := checkEvent(&e, tb); field != "" {
		return e, field + " " + why
	}
	return e, ""
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// EventFreshness returns the time of the latest stored event, zero when there is none.
func (db *DB) EventFreshness(ctx context.Context) (time.Time, error) {
	var ts sql.NullTime
	if err := db.db.QueryRowContext(ctx, `SELECT max(ts) FROM events`).Scan(&ts); err != nil {
		return time.Time{}, experiment.E("store.EventFreshness", experiment.Internal, err)
	}
	return ts.Time, nil
}

// SynthOptions configures the synthetic data of GenerateSynthetic and WriteSynthetic.
// Zero fields take the defaults of DefaultSynthOptions.
type SynthOptions struct {
	Experiment    string    // experiment key, default "synthetic"
	Units         int64     // exposed units, default 10,000
	Events        int64     // events, default 100,000
	Effect        float64   // relative lift of treatment's post-exposure purchase values, default 0.05; negative: none
	Seed          uint64    // default 1
	Start         time.Time // start of the exposure period, default 2026-01-01 UTC
	Days          int       // exposures spread uniformly over this many days, default 7
	PreDays       float64   // events start this many days before a unit's exposure, default 14
	PostDays      float64   // and end this many days after it, default 14
	PurchaseShare float64   // share of events of type "purchase" (the rest "visit"), default 0.3
}

// DefaultSynthOptions returns the defaults of SynthOptions.
func DefaultSynthOptions() SynthOptions {
	return SynthOptions{Experiment: "synthetic", Units: 10_000, Events: 100_000, Effect: 0.05, Seed: 1,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Days: 7, PreDays: 14, PostDays: 14, PurchaseShare: 0.3}
}

func (o SynthOptions) withDefaults() SynthOptions {
	d := DefaultSynthOptions()
	if o.Experiment == "" {
		o.Experiment = d.Experiment
	}
	if o.Units <= 0 {
		o.Units = d.Units
	}
	if o.Events <= 0 {
		o.Events = d.Events
	}
	if o.Effect == 0 {
		o.Effect = d.Effect
	} else if o.Effect < 0 {
		o.Effect = 0
	}
	if o.Seed == 0 {
		o.Seed = d.Seed
	}
	if o.Start.IsZero() {
		o.Start = d.Start
	}
	if o.Days <= 0 {
		o.Days = d.Days
	}
	if o.PreDays <= 0 {
		o.PreDays = d.PreDays
	}
	if o.PostDays <= 0 {
		o.PostDays = d.PostDays
	}
	if o.PurchaseShare <= 0 || o.PurchaseShare > 1 {
		o.PurchaseShare = d.PurchaseShare
	}
	return o
}

// The synthetic model, in SQL over DuckDB's deterministic hash(): unit u is
// "u<u>", in treatment when hash(u) is odd, first exposed at a uniform time of
// the exposure period, with a spending level λ_u ~ Exponential(mean 20). Event i
// belongs to a uniform unit, falls uniformly in [t₀ − PreDays, t₀ + PostDays), is
// a purchase with probability PurchaseShare (else a visit, value 0) of value
// λ_u·U(0.5, 1.5)·(1 + Effect if treatment and after t₀), rounded to cents. So
// the true relative effect on post-exposure revenue is Effect, and the
// pre-exposure revenue (λ_u) is a strong CUPED covariate.
func synthSQL(o SynthOptions) (units, events string) {
	h := func(expr, salt string) string {
		return fmt.Sprintf("((hash(%s, %d::UBIGINT, '%s') %% 1000000)::DOUBLE + 0.5) / 1e6", expr, o.Seed, salt)
	}
	start := sqlString(o.Start.UTC().Format("2006-01-02 15:04:05+00"))
	units = fmt.Sprintf(`SELECT u, 'u' || u AS unit,
	CASE WHEN hash(u, %d::UBIGINT, 'v') %% 2 = 0 THEN 'control' ELSE 'treatment' END AS variant,
	TIMESTAMPTZ %s + to_microseconds((%s * %d * %d)::BIGINT) AS t0,
	-ln(%s) * 20 AS level
FROM range(%d) r(u)`, o.Seed, start, h("u", "t"), o.Days, int64(dayMicros), h("u", "l"), o.Units)
	off := fmt.Sprintf("(%s * %g - %g)", h("i", "o"), o.PreDays+o.PostDays, o.PreDays) // days from t0
	events = fmt.Sprintf(`WITH units AS (%s),
draws AS (
	SELECT i, hash(i, %d::UBIGINT, 'u') %% %d AS u, %s AS off, %s AS rt, %s AS rv FROM range(%d) r(i)
)
SELECT 'e' || d.i AS event_id, n.unit,
	CASE WHEN d.rt < %g THEN 'purchase' ELSE 'visit' END AS type,
	n.t0 + to_microseconds((d.off * %d)::BIGINT) AS ts,
	CASE WHEN d.rt < %g THEN round(n.level * (0.5 + d.rv) * CASE WHEN n.variant = 'treatment' AND d.off >= 0 THEN %g ELSE 1 END, 2) ELSE 0.0 END AS value
FROM draws d JOIN units n ON n.u = d.u`,
		units, o.Seed, o.Units, off, h("i", "t"), h("i", "v"), o.Events,
		o.PurchaseShare, int64(dayMicros), o.PurchaseShare, 1+o.Effect)
	return units, events
}

// SynthMetrics are the metrics GenerateSynthetic registers: revenue (sum), orders
// (count) and converted (binary) of purchases within PostDays of exposure, each
// with a CUPED covariate over the PreDays before exposure.
func SynthMetrics(o SynthOptions) []*experiment.Metric {
	o = o.withDefaults()
	w := &experiment.Window{StartDays: 0, EndDays: o.PostDays}
	cv := &experiment.Covariate{Days: o.PreDays}
	return []*experiment.Metric{
		{Name: "revenue", Description: "purchase value per unit", EventType: "purchase", Aggregation: experiment.Sum, Window: w, Covariate: cv},
		{Name: "orders", Description: "purchases per unit", EventType: "purchase", Aggregation: experiment.Count, Window: w, Covariate: cv},
		{Name: "converted", Description: "units with a purchase", EventType: "purchase", Aggregation: experiment.Binary, Window: w, Covariate: cv},
	}
}

// GenerateSynthetic registers a running 50/50 experiment with the SynthMetrics
// (metrics that already exist are kept) and stores deterministic synthetic
// exposures and events for it, in one transaction each. It is for benchmarks
// and demos: the rows bypass the per-row checks of LogExposures and IngestEvents.
func (db *DB) GenerateSynthetic(ctx context.Context, actor string, o SynthOptions) (*experiment.Experiment, error) {
	const op = "store.GenerateSynthetic"
	o = o.withDefaults()
	e := &experiment.Experiment{Key: o.Experiment, Name: "Synthetic experiment",
		Description: fmt.Sprintf("lift gen: %d units, %d events, true relative effect %g on revenue", o.Units, o.Events, o.Effect),
		Variants:    []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}
	for i, m := range SynthMetrics(o) {
		if _, err := db.CreateMetric(ctx, actor, m); err != nil && experiment.KindOf(err) != experiment.Conflict {
			return nil, experiment.E(op, err)
		}
		e.Metrics = append(e.Metrics, experiment.MetricRef{Name: m.Name, Primary: i == 0})
	}
	if _, err := db.CreateExperiment(ctx, actor, e); err != nil {
		return nil, experiment.E(op, err)
	}
	e, err := db.StartExperiment(ctx, actor, e.Key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	units, events := synthSQL(o)
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM (`+units+`)`).Scan(&n); err != nil {
		return nil, experiment.E(op, experiment.Internal, fmt.Errorf("generating exposures: %w", err))
	}
	base := db.w.seqs.reserve(n)
	err = db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO exposures (experiment, unit, variant, ts, in_holdout, holdout_version, source, seq)
SELECT `+sqlString(o.Experiment)+`, unit, variant, t0, false, NULL, 'gen', `+strconv.FormatInt(base-1, 10)+` + row_number() OVER () FROM (`+units+`) LIMIT `+strconv.Itoa(n))
		return err
	})
	db.w.seqs.done(base)
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, fmt.Errorf("generating exposures: %w", err))
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE event_ingest_lock SET batches = batches + 1 WHERE id = 1`); err != nil {
			return err
		}
		base := db.eventSeqs.reserve(eventBlock)
		defer db.eventSeqs.done(base)
		_, err := tx.ExecContext(ctx, `INSERT INTO events (event_id, unit, type, ts, value, seq)
SELECT s || event_id, unit, type, ts, value, `+strconv.FormatInt(base-1, 10)+` + row_number() OVER () FROM (`+events+`), (SELECT `+sqlString(o.Experiment+"-")+` AS s)`)
		return err
	})
	if err != nil {
		return nil, experiment.E(op, experiment.Internal, fmt.Errorf("generating events: %w", err))
	}
	return e, nil
}

// WriteSynthetic writes the synthetic exposures and events of GenerateSynthetic
// to dir as exposures.FORMAT and events.FORMAT (csv or parquet) and returns the
// two paths. The events file has the columns lift ingest reads.
func (db *DB) WriteSynthetic(ctx context.Context, o SynthOptions, dir string, format FileFormat) (exposures, events string, err error) {
	const op = "store.WriteSynthetic"
	o = o.withDefaults()
	opts := "(FORMAT csv, HEADER)"
	switch format {
	case CSV, "":
		format = CSV
	case Parquet:
		opts = "(FORMAT parquet)"
	default:
		return "", "", experiment.E(op, experiment.Invalid, experiment.Field("format"), experiment.Errorf("must be csv or parquet, got %q", format))
	}
	units, evs := synthSQL(o)
	exposures = filepath.Join(dir, "exposures."+string(format))
	events = filepath.Join(dir, "events."+string(format))
	q := `COPY (SELECT ` + sqlString(o.Experiment) + ` AS experiment, unit, variant, t0 AS ts FROM (` + units + `)) TO ` + sqlString(exposures) + ` ` + opts
	if _, err := db.db.ExecContext(ctx, q); err != nil {
		return "", "", experiment.E(op, experiment.Internal, fmt.Errorf("writing %s: %w", exposures, err))
	}
	q = `COPY (SELECT ` + sqlString(o.Experiment+"-") + ` || event_id AS event_id, unit, type, ts, value FROM (` + evs + `)) TO ` + sqlString(events) + ` ` + opts
	if _, err := db.db.ExecContext(ctx, q); err != nil {
		return "", "", experiment.E(op, experiment.Internal, fmt.Errorf("writing %s: %w", events, err))
	}
	return exposures, events, nil
}

// ScanEventFile reads and checks an event file like IngestFile, without storing
// anything, and calls fn with its events in batches of at most batch rows (for
// sending them to a server). It returns the number of events read.
func (db *DB) ScanEventFile(ctx context.Context, path string, format FileFormat, batch int, fn func([]experiment.Event) error) (int64, error) {
	const op = "store.ScanEventFile"
	if format == "" {
		if format = FormatOf(path); format == "" {
			return 0, experiment.E(op, experiment.Invalid, experiment.Field("format"),
				experiment.Errorf("cannot tell the format of %s from its extension: give csv, parquet or ndjson", path))
		}
	}
	if batch <= 0 {
		batch = 10_000
	}
	conn, err := db.stageConn(ctx)
	if err != nil {
		return 0, experiment.E(op, experiment.Internal, err)
	}
	defer db.releaseStage(conn)
	tb := db.bounds()
	switch format {
	case CSV:
		_, err = stageCSV(ctx, conn, path, tb)
	case Parquet:
		_, err = stageParquet(ctx, conn, path, tb)
	case NDJSON:
		_, err = stageNDJSON(ctx, conn, path, tb, func(int64) {})
	default:
		err = experiment.E(experiment.Invalid, experiment.Field("format"), experiment.Errorf("unknown format %q: give csv, parquet or ndjson", format))
	}
	if err != nil {
		return 0, experiment.E(op, err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT event_id, unit, type, ts, value, properties FROM temp.event_stage`)
	if err != nil {
		return 0, experiment.E(op, experiment.Internal, err)
	}
	defer rows.Close()
	var n int64
	buf := make([]experiment.Event, 0, batch)
	for rows.Next() {
		var e experiment.Event
		var props sql.NullString
		if err := rows.Scan(&e.EventID, &e.Unit, &e.Type, &e.TS, &e.Value, &props); err != nil {
			return n, experiment.E(op, experiment.Internal, err)
		}
		e.TS = e.TS.UTC()
		if props.Valid {
			e.Properties = json.RawMessage(props.String)
		}
		buf = append(buf, e)
		if len(buf) == batch {
			if err := fn(buf); err != nil {
				return n, err
			}
			n += int64(len(buf))
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return n, experiment.E(op, experiment.Internal, err)
	}
	if len(buf) > 0 {
		if err := fn(buf); err != nil {
			return n, err
		}
		n += int64(len(buf))
	}
	return n, nil
}

// eventBlock is how many numbers (events.seq) one ingest transaction takes.
const eventBlock = 1 << 32

// EventWatermark is the highest events.seq below which every event row is
// committed, or will never be: a forwarder reading up to it misses none.
func (db *DB) EventWatermark() int64 { return db.eventSeqs.watermark() }
