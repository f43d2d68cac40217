package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// Options are the Server's dependencies and limits. Zero fields take the values
// of DefaultOptions.
type Options struct {
	Store    *store.DB            // the registry and exposure log (required)
	Results  *results.Service     // computes results; default over Store and its DuckDB engine (lift serve --engine picks another)
	Logger   *slog.Logger         // default slog.Default()
	Now      func() time.Time     // clock for exposure timestamps, default time.Now
	Registry *prometheus.Registry // Prometheus registry served at /metrics; default a new one

	RequestTimeout   time.Duration    // deadline of each request's context, default 30s
	BodyReadTimeout  time.Duration    // deadline for receiving a request's body, from the handler's start, default 30s
	BodyLimit        int64            // largest request body in bytes, default 32 MiB
	MaxAssignBatch   int              // most units in one POST /v1/assign, default 10,000
	MaxExposureBatch int              // most exposures in one POST /v1/exposures, default 100,000
	PlanTTL          time.Duration    // how long a compiled assignment plan is reused, default 5s
	Jobs             *jobs.Scheduler  // the job scheduler; nil answers the job routes 503
	Journeys         *journey.Decider // journey decisions and model cards (docs/journeys.md); nil answers decide and model routes 503
	SessionTTL       time.Duration    // how long a console session lasts after sign-in, default 12h
	// ResultCacheTTL is the longest the console reuses exact results
	// computed at the data's current version (store.DataVersion) as current,
	// default 1m; negative: never reused. Older ones are shown, said to be
	// old, while new ones are computed, and views being read are computed
	// again in the background at half of it (Server.RefreshCache).
	ResultCacheTTL time.Duration
	// ConsoleWait is how long a console page waits for exact numbers never
	// computed before (the first look at a view since the server started)
	// before it is sent saying they are being computed, and reloads itself
	// until they are shown; default 120 ms, so that a page answers within
	// its 200 ms; negative: until they are.
	ConsoleWait time.Duration
}

// DefaultOptions returns the documented defaults (without a store).
func DefaultOptions() Options {
	return Options{
		Logger:           slog.Default(),
		Now:              time.Now,
		RequestTimeout:   30 * time.Second,
		BodyReadTimeout:  30 * time.Second,
		BodyLimit:        32 << 20,
		MaxAssignBatch:   10_000,
		MaxExposureBatch: 100_000,
		PlanTTL:          5 * time.Second,
		SessionTTL:       12 * time.Hour,
		ResultCacheTTL:   time.Minute,
		ConsoleWait:      120 * time.Millisecond,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = d.RequestTimeout
	}
	if o.BodyReadTimeout <= 0 {
		o.BodyReadTimeout = d.BodyReadTimeout
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = d.BodyLimit
	}
	if o.MaxAssignBatch <= 0 {
		o.MaxAssignBatch = d.MaxAssignBatch
	}
	if o.MaxExposureBatch <= 0 {
		o.MaxExposureBatch = d.MaxExposureBatch
	}
	if o.PlanTTL <= 0 {
		o.PlanTTL = d.PlanTTL
	}
	if o.ResultCacheTTL == 0 {
		o.ResultCacheTTL = d.ResultCacheTTL
	}
	if o.ConsoleWait == 0 {
		o.ConsoleWait = d.ConsoleWait
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = d.SessionTTL
	}
}

// Server is the HTTP API. Create it with New and serve Handler.
type Server struct {
	opt     Options
	db      *store.DB
	results *results.Service
	log     *slog.Logger
	echo    *echo.Echo
	metrics *metrics
	plans   *planCache
	views   *viewCache // the console's exact results (viewcache.go)
	bufs    bufferPool // response buffers of the assignment routes
	table   []route    // every declared route, in declaration order (for /openapi.json)

	docOnce sync.Once // the OpenAPI document, built on first request
	doc     []byte
	docErr  error

	ridPrefix string
	ridSeq    atomic.Uint64
}

// New builds the server and its routes.
func New(opt Options) (*Server, error) {
	if opt.Store == nil {
		return nil, experiment.E("api.New", experiment.Invalid, experiment.Errorf("Options.Store is required"))
	}
	opt.fill()
	if opt.Results == nil {
		opt.Results = ResultsOver(opt.Store)
	}
	s := &Server{opt: opt, db: opt.Store, results: opt.Results, log: opt.Logger}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("api.New: request id prefix: %w", err)
	}
	s.ridPrefix = hex.EncodeToString(b[:]) + "-"
	m, err := newMetrics(opt.Registry)
	if err != nil {
		return nil, fmt.Errorf("api.New: %w", err)
	}
	s.metrics = m
	s.plans = newPlanCache(s.db, opt.PlanTTL)
	s.views = newViewCache(opt.Now, opt.ResultCacheTTL)

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.requestID, securityHeaders, s.observe, s.recover, s.deadline, s.bodyDeadline, s.checkParams)
	s.echo = e
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.echo }

// Close cancels the computations the console started in the background (its
// cache's: reports, results and comparisons computed behind a page) and
// waits for them, so that no transaction of theirs is left open when the
// store closes. Call it once the HTTP server has stopped; the Server
// computes nothing in the background afterwards.
func (s *Server) Close() { s.views.close() }

// InvalidatePlans drops every cached assignment plan, so that registry changes
// made outside this server (for example a scheduled holdout rotation) take effect
// at once rather than after Options.PlanTTL.
func (s *Server) InvalidatePlans() { s.plans.invalidateAll() }

// contentSecurityPolicy is sent with every answer. Lift's pages (reports,
// summaries) are self-contained: inline styles and inline SVG, no script, no
// outside resource; images may only be data: URLs. No page may be framed.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders sets the browser-facing security headers on every answer,
// errors included: the Content-Security-Policy above, nosniff (a CSV or JSON
// answer is never run as HTML or script) and X-Frame-Options for browsers that
// predate frame-ancestors.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set(echo.HeaderXContentTypeOptions, "nosniff")
		h.Set(echo.HeaderXFrameOptions, "DENY")
		return next(c)
	}
}

const ctxRequestID = "lift.request_id"

// requestID takes a sane X-Request-ID from the client or makes one, echoes it in
// the response and keeps it for logs and error bodies.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rid := c.Request().Header.Get(echo.HeaderXRequestID)
		if !saneRequestID(rid) {
			rid = s.ridPrefix + strconv.FormatUint(s.ridSeq.Add(1), 36)
		}
		c.Response().Header().Set(echo.HeaderXRequestID, rid)
		c.Set(ctxRequestID, rid)
		return next(c)
	}
}

func saneRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func requestIDOf(c echo.Context) string {
	rid, _ := c.Get(ctxRequestID).(string)
	return rid
}

// recover turns a panic in a handler into a 500 answer and a logged stack.
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic in handler", "request_id", requestIDOf(c), "method", c.Request().Method,
					"path", c.Path(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = experiment.E("api", experiment.Internal, experiment.Errorf("panic: %v", r))
			}
		}()
		return next(c)
	}
}

// deadline gives each request's context the configured timeout.
func (s *Server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.opt.RequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// observe logs every request (slog) and records the Prometheus request counter and
// latency histogram, labelled by route pattern rather than raw path.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		conn := c.Request().Context() // canceled when the client goes away
		err := next(c)
		if err != nil && errors.Is(conn.Err(), context.Canceled) && !bodyTimedOut(c.Request()) {
			// A body that missed its read deadline cancels the context too, but
			// that answer is the 400 naming --read-timeout. Otherwise, whatever the handler saw (a canceled query, an interrupted DuckDB
			// statement, a failed read), the cause is the client: not a server error.
			err = &clientGone{err}
		}
		if err != nil {
			// Answer now so that the status is known to the log and the metrics.
			s.handleError(err, c)
		}
		d := time.Since(start)
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := c.Request().Method
		s.metrics.observe(method, route, status, d)
		lvl := slog.LevelInfo
		if status >= 500 {
			lvl = slog.LevelError
		}
		if s.log.Enabled(c.Request().Context(), lvl) {
			attrs := []slog.Attr{
				slog.String("request_id", requestIDOf(c)),
				slog.String("method", method),
				slog.String("route", route),
				slog.String("path", logPath(c)),
				slog.Int("status", status),
				slog.Duration("duration", d),
				slog.Int64("bytes_out", c.Response().Size),
			}
			if k := keyOf(c); k != nil {
				attrs = append(attrs, slog.String("key", k.Name))
			}
			if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			s.log.LogAttrs(c.Request().Context(), lvl, "http request", attrs...)
		}
		return nil
	}
}

// ResultsOver is the results service over db: its registry, its snapshots and
// its DuckDB engine (the default engine of lift serve).
func ResultsOver(db *store.DB) *results.Service {
	return results.New(db, db, db.Engine(), db.Now)
}
