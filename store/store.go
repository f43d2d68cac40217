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
	"time"

	"github.com/liftlab/lift/experiment"
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
}

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

	regMu sync.Mutex // serializes registry and key changes (checks then writes)

	releaseMu    sync.Mutex               // guards releaseLocks
	releaseLocks map[string]chan struct{} // privacy scope -> its release lock (Ledger.Exclusive)

	cacheMu  sync.RWMutex
	expCache map[string]*expInfo // experiment key -> what exposure validation needs
	hoCache  map[string]int      // holdout name -> current version
	keyCache map[string]*experiment.APIKey

	w *writer

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
	db := &DB{
		path:     path,
		opt:      opt,
		log:      opt.Logger,
		conn:     c,
		db:       sql.OpenDB(c),
		expCache: map[string]*expInfo{},
		hoCache:  map[string]int{},
		keyCache: map[string]*experiment.APIKey{},
	}
	if err := db.migrate(ctx); err != nil {
		db.db.Close()
		c.Close()
		return nil, experiment.E(op, err)
	}
	w, err := newWriter(ctx, db)
	if err != nil {
		db.db.Close()
		c.Close()
		return nil, experiment.E(op, experiment.Internal, err)
	}
	db.w = w
	return db, nil
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

// tx runs f in a transaction, committing when it returns nil and rolling back otherwise.
func (db *DB) tx(ctx context.Context, f func(tx *sql.Tx) error) error {
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
