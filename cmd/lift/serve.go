package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/store"
)

const serveDescription = `
Run the HTTP API (REST v1, JSON) over a DuckDB file. The server is the one
process that writes the file; other tools talk to it with --server URL.

On first start it prints a bootstrap admin key once, unless LIFT_ADMIN_KEY is set
(at least 16 characters), in which case that secret is the admin key. Requests
carry "Authorization: Bearer KEY".

SIGTERM or SIGINT stops it gracefully: it stops accepting connections, lets
in-flight requests finish (up to --drain), flushes the exposure queue into the
file and exits 0. Every exposure that was acknowledged is in the file.

Environment: LIFT_ADMIN_KEY   the bootstrap admin key (optional)`

// serveConfig is what the serve flags set.
type serveConfig struct {
	db             string
	addr           string
	drain          time.Duration
	requestTimeout time.Duration
	bodyLimit      int64
	logLevel       string
	logFormat      string
	writers        int
	webhookAllow   string

	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	maxConnsPerIP     int
	maxClockSkew      time.Duration
	memoryLimit       string
	tempDir           string
	engine            engineFlags
}

func runServe(ctx context.Context, e *env, args []string) error {
	var cfg serveConfig
	fs := e.flags("serve", "[--db PATH] [--addr HOST:PORT] [flags]", serveDescription)
	fs.StringVar(&cfg.db, "db", "lift.duckdb", "DuckDB `file` (created with its schema when absent)")
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "`host:port` to listen on (port 0 picks a free one; the address is printed)")
	fs.DurationVar(&cfg.drain, "drain", 30*time.Second, "on shutdown, how long in-flight requests may take to finish")
	fs.DurationVar(&cfg.requestTimeout, "request-timeout", 30*time.Second, "deadline of each request")
	fs.Int64Var(&cfg.bodyLimit, "body-limit", 32<<20, "largest request body in `bytes`")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.IntVar(&cfg.writers, "exposure-writers", 1, "exposure writer `lanes`: connections that commit exposure groups in turn; 2 overlaps one group's commit with the next one's append (see BENCHMARKS.md for when it helps)")
	fs.StringVar(&cfg.webhookAllow, "webhook-allow", "", "hosts monitor webhooks may reach: comma-separated `names, addresses, CIDR prefixes` and \"public\"; default public addresses only (no loopback, private or link-local), checked at connect time")
	fs.DurationVar(&cfg.readHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send the request line and headers")
	fs.DurationVar(&cfg.readTimeout, "read-timeout", 30*time.Second, "how long a client may take to send a request body; past it the answer is 400 and the connection is closed")
	fs.IntVar(&cfg.maxConnsPerIP, "max-conns-per-ip", 32, "most open connections from one client IP address (0: no cap; behind a proxy, cap at the proxy)")
	fs.DurationVar(&cfg.maxClockSkew, "max-clock-skew", store.DefaultMaxClockSkew, "refuse exposures and events stamped further than this past the server's clock")
	fs.StringVar(&cfg.memoryLimit, "duckdb-memory-limit", "50%", "DuckDB's memory limit: a `size` (4GiB, 512MiB, bytes) or a percentage of the machine's memory (or of the cgroup's limit when lower)")
	cfg.engine.register(fs)
	fs.StringVar(&cfg.tempDir, "duckdb-temp-dir", "", "`folder` where DuckDB spills past its memory limit (default: the database file's path with .tmp appended)")
	jf := addJourneyFlags(fs)
	if err := e.parse(fs, args); err != nil {
		return err
	}
	hooks, err := jobs.ParseWebhookAllow(cfg.webhookAllow)
	if err != nil {
		return experiment.E("serve", experiment.Invalid, experiment.Field("--webhook-allow"), err)
	}
	logger, err := serveLogger(e, cfg)
	if err != nil {
		return err
	}
	if cfg.writers < 1 || cfg.writers > 8 {
		return experiment.E("serve", experiment.Invalid, experiment.Field("--exposure-writers"), experiment.Errorf("must be between 1 and 8, got %d", cfg.writers))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--read-header-timeout", cfg.readHeaderTimeout}, {"--read-timeout", cfg.readTimeout}, {"--max-clock-skew", cfg.maxClockSkew}} {
		if d.v <= 0 {
			return experiment.E("serve", experiment.Invalid, experiment.Field(d.flag), experiment.Errorf("must be positive, got %s", d.v))
		}
	}
	if cfg.maxConnsPerIP < 0 {
		return experiment.E("serve", experiment.Invalid, experiment.Field("--max-conns-per-ip"), experiment.Errorf("must be 0 (no cap) or more, got %d", cfg.maxConnsPerIP))
	}
	memLimit, err := parseMemoryLimit(cfg.memoryLimit, machineMemory())
	if err != nil {
		return experiment.E("serve", experiment.Invalid, experiment.Field("--duckdb-memory-limit"), err)
	}
	sopt := store.DefaultOptions()
	sopt.Logger = logger
	sopt.Writers = cfg.writers
	sopt.MaxClockSkew = cfg.maxClockSkew
	sopt.MemoryLimit = memLimit
	sopt.TempDir = cfg.tempDir
	db, err := store.Open(ctx, cfg.db, sopt)
	if err != nil {
		return err
	}
	closeDB := sync.OnceValue(db.Close)
	defer closeDB()

	printed, err := db.EnsureAdminKey(ctx, e.lookupEnv("LIFT_ADMIN_KEY"))
	if err != nil {
		return err
	}
	if printed != "" {
		fmt.Fprintf(e.stdout, "Bootstrap admin key (shown once, store it now):\n\n    %s\n\n", printed)
	}
	dec, closeJourneys, err := openJourneys(ctx, db, jf, logger)
	if err != nil {
		return err
	}
	closeJourneys = sync.OnceValue(closeJourneys)
	defer closeJourneys()
	rs, wh, err := cfg.engine.open(ctx, "serve", db, logger)
	if err != nil {
		return err
	}
	defer wh.Close()
	sched, err := newScheduler(db, rs, logger, hooks, map[experiment.JobKind]extraKind{
		experiment.JobJourneyComparison: journeyComparisonKind(db, rs, dec),
	})
	if err != nil {
		return err
	}
	aopt := apiOptions(db, logger, cfg)
	aopt.Jobs = sched
	aopt.Results = rs
	aopt.Journeys = dec
	srv, err := api.New(aopt)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.addr, err)
	}
	fmt.Fprintf(e.stdout, "lift serving on http://%s (database %s)\n", ln.Addr(), db.Path())
	fmt.Fprintf(e.stdout, "console: open http://%s/ and sign in with an API key\n", ln.Addr())
	if lim, err := db.MemoryLimit(ctx); err == nil {
		logger.Info("limits", "duckdb_memory_limit", lim, "read_header_timeout", cfg.readHeaderTimeout.String(),
			"read_timeout", cfg.readTimeout.String(), "max_conns_per_ip", cfg.maxConnsPerIP, "max_clock_skew", cfg.maxClockSkew.String())
	}
	ln = api.LimitConnsPerIP(ln, cfg.maxConnsPerIP)
	tasks := append(backgroundTasks(db, srv, logger), schedulerTask(sched), holdoutRotationTask(db, logger),
		journeyRollupTask(db, logger, 15*time.Minute), consentPurgeTask(db, logger, time.Hour))
	if wh != nil {
		tasks = append(tasks, forwardTask(wh, logger))
		logger.Info("metric engine", "engine", "clickhouse", "servers", cfg.engine.addrs, "events", cmp.Or(cfg.engine.events, "forwarded from the store"))
	}
	if err := serveUntilDone(ctx, ln, srv, cfg, logger, tasks); err != nil {
		closeJourneys()
		closeDB()
		return err
	}
	if err := closeJourneys(); err != nil {
		closeDB()
		return fmt.Errorf("flushing the journey decision log: %w", err)
	}
	if err := closeDB(); err != nil {
		return fmt.Errorf("flushing and closing %s: %w", cfg.db, err)
	}
	logger.Info("stopped", "database", cfg.db)
	return nil
}

// apiOptions builds the API's dependencies. Areas that add Options fields wire
// them here.
func apiOptions(db *store.DB, logger *slog.Logger, cfg serveConfig) api.Options {
	opt := api.DefaultOptions()
	opt.Store = db
	opt.Logger = logger
	opt.RequestTimeout = cfg.requestTimeout
	opt.BodyReadTimeout = cfg.readTimeout
	opt.BodyLimit = cfg.bodyLimit
	return opt
}

// backgroundTask is work that runs beside the HTTP server for as long as it
// serves (scheduled jobs, holdout rotation, digests). run must return soon after
// ctx is done; the store is closed only after every task has returned.
type backgroundTask struct {
	name string
	run  func(ctx context.Context) error
}

// backgroundTasks lists the tasks "lift serve" runs beside the API. Areas that
// need background work add theirs here, one line each.
func backgroundTasks(db *store.DB, srv *api.Server, logger *slog.Logger) []backgroundTask {
	return []backgroundTask{
		{"console cache warm-up", func(ctx context.Context) error { // the running and lately stopped experiments' reports and the holdouts, once at start
			t0 := time.Now()
			if err := srv.WarmCache(ctx); err != nil {
				return err
			}
			logger.Info("console cache warmed", "took", time.Since(t0).Round(time.Millisecond).String())
			return nil
		}},
		{"console cache refresh", srv.RefreshCache}, // the views read lately, computed again as data arrives
	}
}

// serveUntilDone serves HTTP on ln and runs the background tasks until ctx is
// done (a signal), then shuts down in order: stop accepting and drain in-flight
// requests (at most drain), then stop the background tasks and the console's
// computations (api.Server.Close). The caller closes the store afterwards,
// which flushes the exposure queue.
func serveUntilDone(ctx context.Context, ln net.Listener, srv *api.Server, cfg serveConfig, logger *slog.Logger, tasks []backgroundTask) error {
	drain := cfg.drain
	// No ReadTimeout: it would cancel a request's context when it passes even
	// after the body is in; the API puts the deadline on the body instead
	// (api.Options.BodyReadTimeout, --read-timeout).
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	taskCtx, stopTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTasks()
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.run(taskCtx); err != nil && !errors.Is(err, context.Canceled) {
				logger.Error("background task failed", "task", t.name, "error", err.Error())
			}
		}()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	var err error
	select {
	case err = <-serveErr:
		err = fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
		logger.Info("shutting down: draining in-flight requests", "drain", drain.String())
		drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
		if derr := hs.Shutdown(drainCtx); derr != nil {
			_ = hs.Close()
			err = fmt.Errorf("requests still running after --drain %s were cut: %w", drain, derr)
		}
		cancel()
		if serr := <-serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("serving: %w", serr)
		}
	}
	stopTasks()
	wg.Wait()
	srv.Close() // the console's computations behind its pages, before the store closes
	return err
}

func serveLogger(e *env, cfg serveConfig) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", cfg.logLevel)
	}
	hopt := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, hopt)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, hopt)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", cfg.logFormat)
}
