package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/experiment"
	duckengine "github.com/liftlab/lift/metric/duckdb"
	duckdb "github.com/marcboeker/go-duckdb/v2"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options configures a DB. The zero value of each field means its default;
// DefaultOptions returns them filled in.
type Options struct {
	Now        func() time.Time // clock, default time.Now
	Logger     *slog.Logger     // default slog.Default()
	QueueSize  int              // exposure queue bound (batches), default 1024
	BatchRows  int              // appender flush size and group-commit row cap, default 100_000
	FlushEvery time.Duration    // group-commit window; default and negative: commit what is queued, wait for nothing
	Random     io.Reader        // source of API key secrets and ids, default crypto/rand.Reader
	Writers    int              // exposure writer lanes (connections committing in turn), default 1
	Threads    int              // DuckDB worker threads, default 0: DuckDB's own default (one per core)

	// MaxClockSkew is how far past Now an exposure or event timestamp may lie,
	// default 5 minutes; negative: no limit. MinTime is the earliest accepted
	// timestamp, default 1900-01-01T00:00:00Z: early enough for historical
	// panels (Card & Krueger's 1992 survey, Proposition 99 from 1970). Both are
	// checked where rows enter
	// (LogExposures, IngestEvents, IngestFile) and name the field.
	MaxClockSkew time.Duration
	MinTime      time.Time

	// MemoryLimit caps DuckDB's memory in bytes (SET memory_limit); 0 leaves
	// DuckDB's own default (80% of the machine's memory). TempDir is where DuckDB
	// spills past it; "" leaves DuckDB's default (PATH.tmp beside the file).
	MemoryLimit int64
	TempDir     string

	// CommitFault, for fault-injection tests only, is called with the rows of
	// each exposure group after they are appended and before COMMIT; an error
	// fails that commit as a failing disk would.
	CommitFault func(rows [][]experiment.Exposure) error
}

// DefaultMaxClockSkew and DefaultMinTime are the timestamp bounds of DefaultOptions.
const DefaultMaxClockSkew = 5 * time.Minute

// DefaultMinTime is the earliest timestamp DefaultOptions accepts.
var DefaultMinTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultOptions returns the default options.
func DefaultOptions() Options {
	return Options{
		Now:        time.Now,
		Logger:     slog.Default(),
		QueueSize:  1024,
		BatchRows:  100_000,
		FlushEvery: -1, // batches queue up while a commit runs: that is the grouping
		Random:     rand.Reader,
		Writers:    1,

		MaxClockSkew: DefaultMaxClockSkew,
		MinTime:      DefaultMinTime,
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.QueueSize <= 0 {
		o.QueueSize = d.QueueSize
	}
	if o.BatchRows <= 0 {
		o.BatchRows = d.BatchRows
	}
	if o.FlushEvery == 0 {
		o.FlushEvery = d.FlushEvery
	}
	if o.Random == nil {
		o.Random = d.Random
	}
	if o.Writers <= 0 {
		o.Writers = d.Writers
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = d.MaxClockSkew
	}
	if o.MinTime.IsZero() {
		o.MinTime = d.MinTime
	}
	return o
}

// DB is an open Lift database: one DuckDB file (or an in-memory database) and the
// single exposure writer. It is safe for concurrent use.
type DB struct {
	path string
	opt  Options
	log  *slog.Logger
	conn *duckdb.Connector
	db   *sql.DB

	regMu    sync.Mutex // serializes registry and key changes (checks then writes)
	banditMu sync.Mutex // serializes bandit state writes (insert-if-absent of units, the next version)
	// rollupMu serializes the journey roll-ups' writes (each replaces its
	// days), so that two comparisons computed at once (the console's in the
	// background, the API's) do not conflict.
	rollupMu sync.Mutex
	// fwdMu orders an erasure against a forwarder's cursor writes: an erasure
	// that sees no cursor has committed before any forwarder reads a row.
	fwdMu sync.Mutex

	releaseMu    sync.Mutex               // guards releaseLocks
	releaseLocks map[string]chan struct{} // privacy scope -> its release lock (Ledger.Exclusive)

	cacheMu  sync.RWMutex
	expCache map[string]*expInfo // experiment key -> what exposure validation needs
	hoCache  map[string]int      // holdout name -> current version
	keyCache map[string]*experiment.APIKey
	psKey    []byte // the pseudonym key, once read or made (Pseudonym)
	psNoKey  bool   // the file had no pseudonym key when last read

	unitMu sync.RWMutex         // guards stated and erased
	stated map[string]struct{}  // units with a consent record or a reset; nil until read (UnitState)
	erased map[string]time.Time // erased pseudonyms and when

	engine *duckengine.Engine // the metric engine over db

	w         *writer
	eventSeqs *seqs // the numbers of event rows (events.seq)

	writes atomic.Uint64 // committed transactions that analyses may read (DataVersion)

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the DuckDB file at path, or an in-memory database
// when path is "", applies the embedded migrations not yet applied, and starts the
// exposure writer. A file held by another process gives an experiment.Unavailable error.
func Open(ctx context.Context, path string, opt Options) (*DB, error) {
	const op = "store.Open"
	opt = opt.withDefaults()
	dsn := path
	if opt.Threads > 0 {
		dsn += "?threads=" + strconv.Itoa(opt.Threads)
	}
	c, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		if isLockError(err) {
			return nil, experiment.E(op, experiment.Unavailable, experiment.Errorf(
				"database file %s is held by another process (probably a running `lift serve`): "+
					"DuckDB allows one writing process per file; talk to that server with --server URL, "+
					"or stop it before opening the file (%v)", path, err))
		}
		return nil, experiment.E(op, experiment.Internal, fmt.Errorf("opening %q: %w", path, err))
	}
	sdb := sql.OpenDB(c)
	db := &DB{
		path:     path,
		opt:      opt,
		log:      opt.Logger,
		conn:     c,
		db:       sdb,
		engine:   duckengine.New(sdb),
		expCache: map[string]*expInfo{},
		hoCache:  map[string]int{},
		keyCache: map[string]*experiment.APIKey{},
	}
	if err := db.limitMemory(ctx); err != nil {
		db.db.Close()
		c.Close()
		return nil, experiment.E(op, experiment.Invalid, err)
	}
	if err := db.migrate(ctx); err != nil {
		db.db.Close()
		c.Close()
		return nil, experiment.E(op, err)
	}
	var top int64
	if err := db.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&top); err != nil {
		db.db.Close()
		c.Close()
		return nil, experiment.E(op, experiment.Internal, fmt.Errorf("event numbers: %w", err))
	}
	db.eventSeqs = newSeqs(top)
	w, err := newWriter(ctx, db)
	if err != nil {
		db.db.Close()
		c.Close()
		return nil, experiment.E(op, experiment.Internal, err)
	}
	db.w = w
	return db, nil
}

// limitMemory applies Options.MemoryLimit and Options.TempDir. Both are
// database-wide settings, so one connection's SET holds for every connection.
// At the limit DuckDB first spills the operators that can (sorts, joins,
// aggregates) to the temporary directory, and fails a query that still does not
// fit with an "Out of Memory Error" naming the limit (IsOutOfMemory).
func (db *DB) limitMemory(ctx context.Context) error {
	if db.opt.TempDir != "" {
		if _, err := db.db.ExecContext(ctx, `SET temp_directory = `+sqlString(db.opt.TempDir)); err != nil {
			return fmt.Errorf("temp_directory %q: %w", db.opt.TempDir, err)
		}
	}
	if db.opt.MemoryLimit > 0 {
		mib := max(db.opt.MemoryLimit>>20, 1)
		if _, err := db.db.ExecContext(ctx, fmt.Sprintf(`SET memory_limit = '%dMiB'`, mib)); err != nil {
			return fmt.Errorf("memory_limit %d MiB: %w", mib, err)
		}
	}
	return nil
}

// MemoryLimit returns DuckDB's memory_limit setting as DuckDB prints it (e.g. "1.0 GiB").
func (db *DB) MemoryLimit(ctx context.Context) (string, error) {
	var v string
	if err := db.db.QueryRowContext(ctx, `SELECT current_setting('memory_limit')`).Scan(&v); err != nil {
		return "", experiment.E("store.MemoryLimit", experiment.Internal, err)
	}
	return v, nil
}

// IsOutOfMemory reports whether err, or an error it wraps, is DuckDB's
// out-of-memory error: a query that still did not fit under the memory limit
// after spilling what it could (see limitMemory). It goes by the error's type,
// not its text.
func IsOutOfMemory(err error) bool {
	var de *duckdb.Error
	return errors.As(err, &de) && de.Type == duckdb.ErrorTypeOutOfMemory
}

func isLockError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Could not set lock on file") || strings.Contains(s, "Conflicting lock")
}

// Close stops accepting exposures, commits everything already queued, checkpoints
// the file and closes it. Later calls return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { db.closeErr = db.close() })
	return db.closeErr
}

func (db *DB) close() error {
	var errs []error
	if db.w != nil {
		errs = append(errs, db.w.close())
	}
	if db.path != "" {
		if _, err := db.db.Exec("CHECKPOINT"); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: %w", err))
		}
	}
	errs = append(errs, db.db.Close(), db.conn.Close())
	if err := errors.Join(errs...); err != nil {
		return experiment.E("store.Close", experiment.Internal, err)
	}
	return nil
}

// SQL returns the database handle, for other files of package store and for
// read-only analysis queries.
func (db *DB) SQL() *sql.DB { return db.db }

// Path returns the file's path, "" for an in-memory database.
func (db *DB) Path() string { return db.path }

// tsBounds are the earliest and latest timestamps the store accepts now.
type tsBounds struct{ min, max time.Time }

// bounds returns the timestamp bounds at the clock's current time; max is the
// zero time when the skew is unlimited.
func (db *DB) bounds() tsBounds {
	b := tsBounds{min: db.opt.MinTime}
	if db.opt.MaxClockSkew > 0 {
		b.max = db.now().Add(db.opt.MaxClockSkew)
	}
	return b
}

// problem says why t is out of bounds, "" when it is not.
func (b tsBounds) problem(t time.Time) string {
	switch {
	case t.Before(b.min):
		return fmt.Sprintf("must not be before %s, got %s", b.min.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339Nano))
	case !b.max.IsZero() && t.After(b.max):
		return fmt.Sprintf("must not be after %s (the server's clock plus the allowed skew, --max-clock-skew), got %s",
			b.max.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339Nano))
	}
	return ""
}

// problemText is problem for a timestamp DuckDB printed (ts out of bounds).
func (b tsBounds) problemText(ts string) string {
	if b.max.IsZero() {
		return fmt.Sprintf("must not be before %s, got %s", b.min.UTC().Format(time.RFC3339), ts)
	}
	return fmt.Sprintf("must be between %s and %s (the server's clock plus the allowed skew), got %s",
		b.min.UTC().Format(time.RFC3339), b.max.UTC().Format(time.RFC3339), ts)
}

// sqlOutside is a SQL condition true when column col is outside the bounds.
func (b tsBounds) sqlOutside(col string) string {
	lit := func(t time.Time) string {
		return "'" + t.UTC().Format("2006-01-02 15:04:05.999999") + "+00'::TIMESTAMPTZ"
	}
	c := col + " < " + lit(b.min)
	if !b.max.IsZero() {
		c += " OR " + col + " > " + lit(b.max)
	}
	return "(" + c + ")"
}

// now returns the injected clock's time in UTC, truncated to the microsecond
// precision of DuckDB timestamps so that columns and JSON documents agree.
func (db *DB) now() time.Time { return db.opt.Now().UTC().Truncate(time.Microsecond) }

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations ordered by number.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", base)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share number %d", prev, base, v)
		}
		seen[v] = base
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies, in order, each embedded migration not yet recorded in
// schema_migrations, each in its own transaction together with its record.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return experiment.E(experiment.Internal, err)
	}
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return experiment.E(experiment.Internal, fmt.Errorf("creating schema_migrations: %w", err))
	}
	applied := map[int]bool{}
	rows, err := db.db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return experiment.E(experiment.Internal, err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return experiment.E(experiment.Internal, err)
		}
		applied[v] = true
	}
	rows.Close()
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		err := db.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?, ?)`, m.version, m.name, db.now())
			return err
		})
		if err != nil {
			return experiment.E(experiment.Internal, fmt.Errorf("migration %s: %w", m.name, err))
		}
		db.log.Debug("applied migration", "name", m.name)
	}
	return nil
}

// tx runs f in a transaction, committing when it returns nil and rolling back
// otherwise. A commit counts as a change of the data (DataVersion): a write
// that no analysis reads uses outputTx instead.
func (db *DB) tx(ctx context.Context, f func(tx *sql.Tx) error) error {
	if err := db.outputTx(ctx, f); err != nil {
		return err
	}
	db.writes.Add(1)
	return nil
}

// outputTx is tx for the writes of what analyses produce (result snapshots,
// journey day roll-ups): they leave DataVersion as it is, so that storing a
// result does not make it stale.
func (db *DB) outputTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// DataVersion says where the file's data stands, for caches of what is
// computed from it (the console's exact results): two equal versions read
// the same exposures, events, journey decisions, registry, metric
// definitions, units' consent, attributes and erasures. It changes when an
// exposure group commits (the exposure watermark), when an event load commits
// (the event watermark), when a group of decisions commits, and on every
// other committed write transaction, except those of analyses' outputs
// (result snapshots, journey day roll-ups) and of the ε ledger; a
// rolled-back write may change it too, which only costs a recomputation.
// It is not persisted: it starts again when the file is opened, and a
// process other than this one writing the file is not seen (lift serve is
// the one writer).
type DataVersion struct {
	Exposures, Events int64  // the watermarks (ExposureWatermark, EventWatermark)
	Writes            uint64 // other committed writes since the file was opened
}

// DataVersion is the data's version now. Read it before computing from the
// data: a write that commits during the computation then changes the version
// that the next reader sees.
func (db *DB) DataVersion() DataVersion {
	// Writes first: a write counted after the watermarks are read is seen
	// by the next call, never lost between the two reads.
	w := db.writes.Load()
	return DataVersion{Exposures: db.ExposureWatermark(), Events: db.EventWatermark(), Writes: w}
}
