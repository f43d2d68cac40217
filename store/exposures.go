package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/groupcommit"
	duckdb "github.com/marcboeker/go-duckdb/v2"
)

// expInfo is what exposure validation needs to know about an experiment.
type expInfo struct {
	variants map[string]bool
	holdout  string
}

// forgetExperiment drops the cached validation info of an experiment after a change.
func (db *DB) forgetExperiment(key string) {
	db.cacheMu.Lock()
	delete(db.expCache, key)
	db.cacheMu.Unlock()
}

func (db *DB) setHoldoutVersion(name string, v int) {
	db.cacheMu.Lock()
	db.hoCache[name] = v
	db.cacheMu.Unlock()
}

// experimentInfo returns the cached validation info of an experiment, loading it
// on a miss; ok is false when the experiment does not exist.
func (db *DB) experimentInfo(ctx context.Context, key string) (info *expInfo, ok bool, err error) {
	db.cacheMu.RLock()
	info, ok = db.expCache[key]
	db.cacheMu.RUnlock()
	if ok {
		return info, true, nil
	}
	e, err := getExperiment(ctx, db.db, key)
	if experiment.Is(err, experiment.NotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	info = &expInfo{variants: make(map[string]bool, len(e.Variants)), holdout: e.Holdout}
	for _, v := range e.Variants {
		info.variants[v.Name] = true
	}
	db.cacheMu.Lock()
	db.expCache[key] = info
	db.cacheMu.Unlock()
	return info, true, nil
}

// holdoutVersion returns the current version of a holdout, cached.
func (db *DB) holdoutVersion(ctx context.Context, name string) (int, error) {
	db.cacheMu.RLock()
	v, ok := db.hoCache[name]
	db.cacheMu.RUnlock()
	if ok {
		return v, nil
	}
	if err := db.db.QueryRowContext(ctx, `SELECT version FROM holdouts WHERE name = ?`, name).Scan(&v); err != nil {
		return 0, fmt.Errorf("holdout %q: %w", name, err)
	}
	db.setHoldoutVersion(name, v)
	return v, nil
}

// prepareExposures validates xs and returns normalized copies: identifiers are
// refused with control characters (experiment.IdentProblem), timestamps outside
// the store's bounds (Options.MaxClockSkew, Options.MinTime); ts defaults to now,
// holdout_version to the current version of the experiment's holdout. The
// experiment's info and holdout version are looked up once per run of rows of
// the same experiment, not per row.
func (db *DB) prepareExposures(ctx context.Context, xs []experiment.Exposure) ([]experiment.Exposure, error) {
	out := make([]experiment.Exposure, len(xs))
	now := db.now()
	tb := db.bounds()
	var lastKey string
	var last *expInfo
	lastHV := 0 // current version of last's holdout
	for i := range xs {
		x := xs[i]
		bad := func(name, format string, args ...any) error {
			return experiment.E(experiment.Invalid, experiment.Field("exposures["+strconv.Itoa(i)+"]."+name), experiment.Errorf(format, args...))
		}
		if x.Experiment == "" {
			return nil, bad("experiment", "must not be empty")
		}
		if x.Unit == "" {
			return nil, bad("unit", "must not be empty")
		}
		for _, f := range [...]struct{ name, v string }{{"experiment", x.Experiment}, {"unit", x.Unit}, {"variant", x.Variant}, {"source", x.Source}} {
			if p := experiment.IdentProblem(f.v); p != "" {
				return nil, bad(f.name, "%s", p)
			}
		}
		if !x.TS.IsZero() {
			if p := tb.problem(x.TS); p != "" {
				return nil, bad("ts", "%s", p)
			}
		}
		info := last
		if last == nil || x.Experiment != lastKey {
			var ok bool
			var err error
			info, ok, err = db.experimentInfo(ctx, x.Experiment)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, bad("experiment", "unknown experiment %q", x.Experiment)
			}
			lastHV = 0
			if info.holdout != "" {
				if lastHV, err = db.holdoutVersion(ctx, info.holdout); err != nil {
					return nil, err
				}
			}
			last, lastKey = info, x.Experiment
		}
		switch {
		case x.InHoldout && info.holdout == "":
			return nil, bad("in_holdout", "experiment %q names no holdout", x.Experiment)
		case x.InHoldout && x.Variant != "":
			return nil, bad("variant", "must be empty for a holdout unit, got %q", x.Variant)
		case !x.InHoldout && !info.variants[x.Variant]:
			if x.Variant == "" {
				return nil, bad("variant", "must not be empty (only holdout units, with in_holdout true, have no variant)")
			}
			return nil, bad("variant", "%q is not a variant of experiment %q", x.Variant, x.Experiment)
		case x.HoldoutVersion < 0:
			return nil, bad("holdout_version", "must not be negative, got %d", x.HoldoutVersion)
		case x.HoldoutVersion > 0 && info.holdout == "":
			return nil, bad("holdout_version", "experiment %q names no holdout", x.Experiment)
		}
		if x.TS.IsZero() {
			x.TS = now
		}
		if x.HoldoutVersion == 0 {
			x.HoldoutVersion = lastHV
		}
		out[i] = x
	}
	return out, nil
}

// LogExposures validates the exposures and hands them to the single writer, and
// returns nil only after they are committed: an acknowledged exposure survives a
// crash. A bad row is an Invalid error naming it (e.g. "exposures[3].unit") and
// nothing of the call is stored. When the queue stays full until ctx ends, or the
// store is closing, the error is Unavailable and the caller should retry.
func (db *DB) LogExposures(ctx context.Context, xs []experiment.Exposure) error {
	const op = "store.LogExposures"
	if len(xs) == 0 {
		return nil
	}
	rows, err := db.prepareExposures(ctx, xs)
	if err != nil {
		return internal(op, err)
	}
	return internal(op, db.w.submit(ctx, rows))
}

// ExposureCounts returns the number of exposures of an experiment per variant;
// holdout units count under "". An unknown experiment is NotFound.
func (db *DB) ExposureCounts(ctx context.Context, experimentKey string) (map[string]int64, error) {
	const op = "store.ExposureCounts"
	if _, ok, err := db.experimentInfo(ctx, experimentKey); err != nil {
		return nil, internal(op, err)
	} else if !ok {
		return nil, experiment.E(op, experiment.NotFound, experiment.Errorf("experiment %q not found", experimentKey))
	}
	rows, err := db.db.QueryContext(ctx, `SELECT coalesce(variant, ''), count(*) FROM exposures WHERE experiment = ? GROUP BY 1`, experimentKey)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var v string
		var n int64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, internal(op, err)
		}
		out[v] = n
	}
	return out, internal(op, rows.Err())
}

// ---- the writer ----

// writer is the only path by which exposures reach the file: a group-commit loop
// (internal/groupcommit) whose requests are LogExposures calls. Callers queue on one
// bounded queue; each of its lanes (Options.Writers, default 1) owns a connection
// and a DuckDB appender and takes every request queued (up to BatchRows rows,
// waiting up to FlushEvery for more), appends them in one transaction, commits,
// and only then answers every request of that group with the commit's result; a
// failed group is committed again request by request, so only the batch that
// cannot be stored fails. With more than one lane, one lane appends while another
// waits for its commit to reach the disk.
type writer struct {
	db    *DB
	gc    *groupcommit.Loop[[]experiment.Exposure]
	lanes []*lane
	seqs  *seqs // the numbers of the rows (exposures.seq)

	// failCommit, when set (by tests, or from Options.CommitFault), is called
	// after a group is appended and before COMMIT; an error makes the group fail
	// and roll back.
	failCommit func(group [][]experiment.Exposure) error
	mode       appendMode // set by tests and benchmarks between calls
}

// appendMode chooses how a group reaches DuckDB. All of them write inside the
// group's transaction; see docs/bench/store.md for their speed.
type appendMode int

const (
	// appendCoded sends the unit, ts and flags of each row and small integer codes
	// for experiment, variant and source through a DuckDB query appender that
	// decodes them with per-group lists: three fewer strings to copy into C per row.
	appendCoded appendMode = iota
	// appendCSV writes the group as CSV (codes for experiment, variant and source,
	// ts as microseconds) to a staging file that the INSERT reads with read_csv:
	// DuckDB parses it column by column, with no per-value call from Go.
	appendCSV
	// appendRows sends every column of every row through a table appender.
	appendRows
	// appendValues runs INSERT ... VALUES with 50 rows of bound parameters per
	// statement: the plain SQL path, kept to measure against the appenders.
	appendValues
)

// lane is one writer connection with its appender, created on first use and
// kept across groups.
type lane struct {
	conn *sql.Conn
	app  *duckdb.Appender

	stage string // appendCSV's staging file, created on first use
	buf   []byte // appendCSV's CSV text, reused across groups

	// Statements prepared once per lane (parsing and planning them per group
	// cost about a tenth of the writer's time with small groups).
	begin, end *sql.Stmt
}

// stmt returns *st, preparing query on the lane's connection first if needed.
func (l *lane) stmt(ctx context.Context, st **sql.Stmt, query string) (*sql.Stmt, error) {
	if *st == nil {
		p, err := l.conn.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		*st = p
	}
	return *st, nil
}

var errClosed = experiment.E(experiment.Unavailable, experiment.Errorf("the store is closing; retry against the restarted server"))

func newWriter(ctx context.Context, db *DB) (*writer, error) {
	w := &writer{db: db, failCommit: db.opt.CommitFault}
	var top int64
	if err := db.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM exposures`).Scan(&top); err != nil {
		return nil, fmt.Errorf("exposure numbers: %w", err)
	}
	w.seqs = newSeqs(top)
	for i := 0; i < db.opt.Writers; i++ {
		conn, err := db.db.Conn(ctx)
		if err != nil {
			for _, l := range w.lanes {
				l.conn.Close()
			}
			return nil, fmt.Errorf("exposure writer connection: %w", err)
		}
		w.lanes = append(w.lanes, &lane{conn: conn})
	}
	w.gc = groupcommit.New(groupcommit.Options{
		Queue:    db.opt.QueueSize,
		MaxGroup: db.opt.BatchRows,
		Window:   db.opt.FlushEvery,
		Lanes:    db.opt.Writers,
		Logger:   db.log.With("log", "exposures"),
	}, func(lane int, group [][]experiment.Exposure) error {
		return w.commit(w.lanes[lane], group)
	}, func(rows []experiment.Exposure) int { return len(rows) })
	return w, nil
}

// submit queues rows and waits for their commit.
func (w *writer) submit(ctx context.Context, rows []experiment.Exposure) error {
	err := w.gc.Submit(ctx, rows)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, groupcommit.ErrClosed):
		return errClosed
	case errors.Is(err, groupcommit.ErrQueueFull):
		return experiment.E(experiment.Unavailable, experiment.Errorf(
			"exposure queue full (%d batches waiting) until the request ended: %w; retry later", w.db.opt.QueueSize, ctx.Err()))
	case errors.Is(err, groupcommit.ErrNotAnswered):
		return experiment.E(experiment.Unavailable, experiment.Errorf(
			"request ended before the exposures were committed (%w); they may or may not be stored: retry, duplicates are harmless", ctx.Err()))
	}
	return err
}

// close stops accepting requests, waits until every queued one is committed and
// answered, and releases the connections. Only the first call releases them.
func (w *writer) close() error {
	w.gc.Close()
	var errs []error
	for _, l := range w.lanes {
		if l.app != nil {
			errs = append(errs, l.app.Close())
		}
		for _, st := range []*sql.Stmt{l.begin, l.end} {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		errs = append(errs, l.conn.Close())
		if l.stage != "" {
			errs = append(errs, os.Remove(l.stage))
		}
	}
	w.lanes = nil
	return errors.Join(errs...)
}

// WriterStats describes the exposure writer, e.g. for metrics.
type WriterStats struct {
	Queued    int   // batches waiting in the queue
	QueueCap  int   // the queue's bound (Options.QueueSize)
	Committed int64 // exposures committed since Open
	Failed    int64 // exposures whose commit failed since Open
}

// WriterStats returns the exposure writer's current figures.
func (db *DB) WriterStats() WriterStats {
	st := db.w.gc.Stats()
	return WriterStats{Queued: st.Queued, QueueCap: st.QueueCap, Committed: st.Committed, Failed: st.Failed}
}

// commit appends every row of the group in one transaction: on any error the
// transaction is rolled back, so a group is stored whole or not at all.
func (w *writer) commit(l *lane, group [][]experiment.Exposure) (err error) {
	// Not any caller's context: one caller giving up must not fail the others' commit.
	ctx := context.Background()
	begin, err := l.stmt(ctx, &l.begin, "BEGIN TRANSACTION")
	if err == nil {
		_, err = begin.ExecContext(ctx)
	}
	if err != nil {
		return experiment.E(experiment.Internal, fmt.Errorf("storing exposures: begin: %w", err))
	}
	defer func() {
		if err != nil {
			if l.app != nil {
				l.app.Close() // its error repeats err; a fresh appender is made next time
				l.app = nil
			}
			if _, rerr := l.conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
			}
			err = experiment.E(experiment.Internal, fmt.Errorf("storing exposures: %w", err))
		}
	}()
	n := 0
	for _, g := range group {
		n += len(g)
	}
	base := w.seqs.reserve(n)
	defer w.seqs.done(base)
	switch w.mode {
	case appendCSV:
		err = w.appendCSV(ctx, l, group, base)
	case appendRows:
		err = w.appendRows(l, group, base)
	case appendValues:
		err = w.appendValues(l, group, base)
	default:
		err = w.appendCoded(l, group, base)
	}
	if err != nil {
		return err
	}
	if w.failCommit != nil {
		if err := w.failCommit(group); err != nil {
			return err
		}
	}
	end, err := l.stmt(ctx, &l.end, "COMMIT")
	if err == nil {
		_, err = end.ExecContext(ctx)
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// appendRows appends the group through the lane's table appender (kept across groups).
func (w *writer) appendRows(l *lane, group [][]experiment.Exposure, base int64) error {
	if l.app == nil {
		err := l.conn.Raw(func(dc any) error {
			a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "exposures")
			l.app = a
			return err
		})
		if err != nil {
			return fmt.Errorf("appender: %w", err)
		}
	}
	a := l.app
	var n int
	for _, g := range group {
		for i := range g {
			x := &g[i]
			var variant, hv, source driver.Value
			if x.Variant != "" {
				variant = x.Variant
			}
			if x.HoldoutVersion != 0 {
				hv = int32(x.HoldoutVersion)
			}
			if x.Source != "" {
				source = x.Source
			}
			if err := a.AppendRow(x.Experiment, x.Unit, variant, x.TS, x.InHoldout, hv, source, base+int64(n)); err != nil {
				return fmt.Errorf("append: %w", err)
			}
			if n++; n%w.db.opt.BatchRows == 0 {
				if err := a.Flush(); err != nil {
					return fmt.Errorf("flush: %w", err)
				}
			}
		}
	}
	if err := a.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// dict numbers the distinct strings of one column of a group from 1 (DuckDB lists
// are 1-based); "" has no code and stays NULL.
type dict struct {
	code  map[string]int32
	words []string
}

func (d *dict) id(s string) driver.Value {
	if s == "" {
		return nil
	}
	c, ok := d.code[s]
	if !ok {
		if d.code == nil {
			d.code = map[string]int32{}
		}
		d.words = append(d.words, s)
		c = int32(len(d.words))
		d.code[s] = c
	}
	return c
}

// literal writes the dictionary as a DuckDB list literal, quotes doubled.
func (d *dict) literal() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, w := range d.words {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(w, "'", "''"))
		b.WriteByte('\'')
	}
	b.WriteString("]::VARCHAR[]")
	return b.String()
}

var codedTypes = []duckdb.Type{duckdb.TYPE_INTEGER, duckdb.TYPE_VARCHAR, duckdb.TYPE_INTEGER,
	duckdb.TYPE_TIMESTAMP_TZ, duckdb.TYPE_BOOLEAN, duckdb.TYPE_INTEGER, duckdb.TYPE_INTEGER}

// appendCoded appends the group through a query appender: rows carry codes for
// experiment, variant and source, decoded by the INSERT with the group's lists.
func (w *writer) appendCoded(l *lane, group [][]experiment.Exposure, base int64) error {
	var exps, vars, srcs dict
	// First pass: build the dictionaries, so that the query can be written.
	for _, g := range group {
		for i := range g {
			x := &g[i]
			exps.id(x.Experiment)
			vars.id(x.Variant)
			srcs.id(x.Source)
		}
	}
	query := "INSERT INTO exposures (experiment, unit, variant, ts, in_holdout, holdout_version, source, seq) SELECT (" + exps.literal() + ")[e], unit, (" + vars.literal() + ")[v], ts, h, hv, (" +
		srcs.literal() + ")[s], " + strconv.FormatInt(base-1, 10) + " + row_number() OVER () FROM appended_data"
	types := make([]duckdb.TypeInfo, len(codedTypes))
	for i, t := range codedTypes {
		ti, err := duckdb.NewTypeInfo(t)
		if err != nil {
			return err
		}
		types[i] = ti
	}
	var a *duckdb.Appender
	err := l.conn.Raw(func(dc any) error {
		var err error
		a, err = duckdb.NewQueryAppender(dc.(driver.Conn), query, "", types, []string{"e", "unit", "v", "ts", "h", "hv", "s"})
		return err
	})
	if err != nil {
		return fmt.Errorf("query appender: %w", err)
	}
	var n int
	for _, g := range group {
		for i := range g {
			x := &g[i]
			var hv driver.Value
			if x.HoldoutVersion != 0 {
				hv = int32(x.HoldoutVersion)
			}
			if err := a.AppendRow(exps.id(x.Experiment), x.Unit, vars.id(x.Variant), x.TS, x.InHoldout, hv, srcs.id(x.Source)); err != nil {
				a.Close()
				return fmt.Errorf("append: %w", err)
			}
			if n++; n%w.db.opt.BatchRows == 0 {
				if err := a.Flush(); err != nil {
					a.Close()
					return fmt.Errorf("flush: %w", err)
				}
			}
		}
	}
	if err := a.Close(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// appendValues inserts the group with multi-row INSERT statements.
func (w *writer) appendValues(l *lane, group [][]experiment.Exposure, base int64) error {
	const per = 50
	ctx := context.Background()
	args := make([]any, 0, 8*per)
	flush := func(rows int) error {
		if rows == 0 {
			return nil
		}
		var b strings.Builder
		b.WriteString("INSERT INTO exposures (experiment, unit, variant, ts, in_holdout, holdout_version, source, seq) VALUES ")
		for i := 0; i < rows; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?)")
		}
		_, err := l.conn.ExecContext(ctx, b.String(), args...)
		args = args[:0]
		return err
	}
	rows := 0
	for _, g := range group {
		for i := range g {
			x := &g[i]
			var variant, hv, source any
			if x.Variant != "" {
				variant = x.Variant
			}
			if x.HoldoutVersion != 0 {
				hv = int32(x.HoldoutVersion)
			}
			if x.Source != "" {
				source = x.Source
			}
			args = append(args, x.Experiment, x.Unit, variant, x.TS, x.InHoldout, hv, source, base)
			base++
			if rows++; rows == per {
				if err := flush(rows); err != nil {
					return fmt.Errorf("insert: %w", err)
				}
				rows = 0
			}
		}
	}
	if err := flush(rows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// appendCSV writes the group to the lane's staging file as CSV and inserts it with
// one INSERT ... SELECT FROM read_csv inside the group's transaction. The file is
// only a staging area: the rows are durable once COMMIT returns, like every path.
// Columns: experiment code, unit, variant code, ts in microseconds since the
// epoch, in_holdout, holdout_version, source code; an empty field is NULL.
func (w *writer) appendCSV(ctx context.Context, l *lane, group [][]experiment.Exposure, base int64) error {
	if l.stage == "" {
		f, err := os.CreateTemp(w.db.stageDir(), "lift-exposures-*.csv")
		if err != nil {
			return fmt.Errorf("staging file: %w", err)
		}
		l.stage = f.Name()
		if err := f.Close(); err != nil {
			return fmt.Errorf("staging file: %w", err)
		}
	}
	var exps, vars, srcs dict
	b := l.buf[:0]
	for _, g := range group {
		for i := range g {
			x := &g[i]
			b = appendCode(b, exps.code32(x.Experiment))
			b = append(b, ',')
			b = appendCSVString(b, x.Unit)
			b = append(b, ',')
			b = appendCode(b, vars.code32(x.Variant))
			b = append(b, ',')
			b = strconv.AppendInt(b, x.TS.UnixMicro(), 10)
			if x.InHoldout {
				b = append(b, ",1,"...)
			} else {
				b = append(b, ",0,"...)
			}
			if x.HoldoutVersion != 0 {
				b = strconv.AppendInt(b, int64(x.HoldoutVersion), 10)
			}
			b = append(b, ',')
			b = appendCode(b, srcs.code32(x.Source))
			b = append(b, '\n')
		}
	}
	l.buf = b
	if err := os.WriteFile(l.stage, b, 0o600); err != nil {
		return fmt.Errorf("staging file: %w", err)
	}
	query := "INSERT INTO exposures (experiment, unit, variant, ts, in_holdout, holdout_version, source, seq) SELECT (" + exps.literal() + ")[e], unit, (" + vars.literal() + ")[v], make_timestamptz(ts), h::BOOLEAN, hv, (" +
		srcs.literal() + ")[s], " + strconv.FormatInt(base-1, 10) + " + row_number() OVER () FROM read_csv('" + strings.ReplaceAll(l.stage, "'", "''") + "', columns = {'e': 'INTEGER', 'unit': 'VARCHAR', 'v': 'INTEGER', " +
		"'ts': 'BIGINT', 'h': 'TINYINT', 'hv': 'INTEGER', 's': 'INTEGER'}, header = false, auto_detect = false, " +
		`delim = ',', quote = '"', escape = '"', new_line = '\n', strict_mode = true, parallel = false)`
	res, err := l.conn.ExecContext(ctx, query)
	if err != nil {
		return fmt.Errorf("insert from staging file: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("insert from staging file: %w", err)
	}
	if want := groupRows(group); n != int64(want) {
		return fmt.Errorf("insert from staging file: %d rows read back, want %d", n, want)
	}
	return nil
}

func groupRows(group [][]experiment.Exposure) int {
	n := 0
	for _, g := range group {
		n += len(g)
	}
	return n
}

// stageDir is where the writer's staging files go: next to the database file,
// or the system's temporary folder for an in-memory database.
func (db *DB) stageDir() string {
	if db.path == "" {
		return os.TempDir()
	}
	return filepath.Dir(db.path)
}

// code32 is id without the boxing: the code of s, 0 for "" (NULL).
func (d *dict) code32(s string) int32 {
	if s == "" {
		return 0
	}
	if c, ok := d.code[s]; ok {
		return c
	}
	return d.id(s).(int32)
}

// appendCode writes a dictionary code, or nothing (NULL) for 0.
func appendCode(b []byte, c int32) []byte {
	if c == 0 {
		return b
	}
	if c < 10 {
		return append(b, byte('0'+c))
	}
	return strconv.AppendInt(b, int64(c), 10)
}

// appendCSVString writes s as a CSV field: quoted, with quotes doubled, when it
// holds a delimiter, quote, control character or edge space, so that read_csv
// gives back exactly s (never NULL: a quoted empty field would be "").
func appendCSVString(b []byte, s string) []byte {
	plain := s != "" && s[0] != ' ' && s[len(s)-1] != ' '
	for i := 0; plain && i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == ',' || c == '"' || c == 0x7f {
			plain = false
		}
	}
	if plain {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// seqs hands out the numbers of exposure rows (exposures.seq): each group takes
// a range before it appends, and the range is in flight until its transaction
// ends. Watermark is the highest number below which every row is committed or
// will never be (its group rolled back): what a forwarder may read up to.
type seqs struct {
	mu       sync.Mutex
	next     int64              // the first number not handed out
	inflight map[int64]struct{} // the first number of each range in flight
}

func newSeqs(top int64) *seqs { return &seqs{next: top + 1, inflight: map[int64]struct{}{}} }

// reserve hands out n numbers and returns the first.
func (s *seqs) reserve(n int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.next
	s.next += int64(n)
	s.inflight[b] = struct{}{}
	return b
}

// done ends the range starting at b (committed or rolled back).
func (s *seqs) done(b int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, b)
}

func (s *seqs) watermark() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.next - 1
	for b := range s.inflight {
		w = min(w, b-1)
	}
	return w
}

// ExposureWatermark is the highest exposures.seq below which every exposure
// row is committed, or will never be (its group was rolled back): a forwarder
// reading rows up to it misses none that commits later.
func (db *DB) ExposureWatermark() int64 { return db.w.seqs.watermark() }
