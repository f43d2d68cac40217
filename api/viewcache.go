package api

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// viewCache keeps what the console's pages compute from the data (exact
// results, exact reports) between requests. An entry is reused while its key
// is the same: the key (viewKey) names what was computed and the store's
// DataVersion it was computed at, so new exposures, events, registry or
// metric definition changes, consent changes and erasures make a new key;
// MaxAge bounds how long an entry lives even so (the analysis time moves:
// windows mature, and a secondary engine such as ClickHouse receives
// forwarded rows without a write to the file). Entries of an older
// DataVersion are dropped when a newer one is stored; at most maxEntries are
// kept.
//
// get answers for the key's own data version (waiting for it to be
// computed). recent may answer with older numbers: the newest value computed
// for the same What, of any age, while the key's is computed in the
// background; so a page over data that changes every second (a live
// experiment), or one opened again after a while, is served from the last
// computation instead of waiting for a new one, and says how old its numbers
// are. refresh (lift serve runs it every quarter of MaxAge) computes again,
// one at a time, the views recent was asked for in the last refreshIdle whose
// newest value is of an older data version or older than half of MaxAge, so
// that a reader who keeps a page open is shown numbers at most about MaxAge
// old.
//
// Only role-independent values go in: exact results are the same for every
// key that sees exact numbers (analyst, admin); viewers read the period's DP
// release, which store keeps. Cached values are shared and must not be
// modified by their readers.
//
// Concurrent misses of one key compute once: the others wait for it; recent
// computes at most one value of a What at a time.
type viewCache struct {
	now    func() time.Time
	maxAge time.Duration // <= 0: nothing is cached

	// life ends (end) when the server closes: the computations started in
	// the background (bg) are cancelled then, and waited for.
	life context.Context
	end  context.CancelFunc
	bg   sync.WaitGroup

	mu      sync.Mutex
	entries map[viewKey]*viewEntry
	// latest is, per What, the newest value computed without error (of any
	// data version); running, the computation recent started and that has
	// not finished.
	latest  map[string]*viewEntry
	running map[string]*viewEntry
	// read is, per What, when recent was last asked for it, and fns the
	// function it was given: what refresh computes again.
	read map[string]time.Time
	fns  map[string]func(context.Context) (any, error)
	// closed: close was called; nothing more is started.
	closed bool
}

// refreshIdle is how long after its last reader refresh keeps a view fresh.
const refreshIdle = 15 * time.Minute

// maxEntries bounds the cache: the demo's pages need a few dozen. At most
// maxLatest views keep their newest value past its data version (recent).
const (
	maxEntries = 512
	maxLatest  = 128
)

// viewKey is what a cached value was computed from.
type viewKey struct {
	What    string // what was computed and its arguments: "holdout global v1 metrics a,b"
	Version store.DataVersion
}

type viewEntry struct {
	done    chan struct{} // closed once v and err are set
	at      time.Time     // when its computation started: the numbers are of the data then
	version store.DataVersion
	v       any
	err     error
}

// finished reports whether e's computation has ended.
func (e *viewEntry) finished() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// wait waits for e's computation, or for ctx.
func (e *viewEntry) wait(ctx context.Context) error {
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newViewCache(now func() time.Time, maxAge time.Duration) *viewCache {
	life, end := context.WithCancel(context.Background())
	return &viewCache{now: now, maxAge: maxAge, life: life, end: end, entries: map[viewKey]*viewEntry{},
		latest: map[string]*viewEntry{}, running: map[string]*viewEntry{},
		read: map[string]time.Time{}, fns: map[string]func(context.Context) (any, error){}}
}

// get returns the value of key, computing it with f when there is none, or
// when the one kept is older than maxAge. Errors are not kept.
func (vc *viewCache) get(ctx context.Context, key viewKey, f func() (any, error)) (any, error) {
	if vc == nil || vc.maxAge <= 0 {
		return f()
	}
	now := vc.now()
	vc.mu.Lock()
	if e, ok := vc.entries[key]; ok && now.Sub(e.at) < vc.maxAge {
		vc.mu.Unlock()
		if err := e.wait(ctx); err != nil {
			return nil, err
		}
		if e.err == nil {
			return e.v, nil
		}
		return f() // the computation this one waited for failed: try again
	}
	e := vc.add(key, now)
	vc.mu.Unlock()
	vc.fill(key, e, f)
	return e.v, e.err
}

// cachedValue is a value of recent with what it was computed from.
type cachedValue struct {
	V  any
	At time.Time // when its computation started
	// Stale says V is of an older data version than the one asked for
	// (whose value is being computed).
	Stale bool
	// Old says V is of the data version asked for but was computed MaxAge
	// ago or earlier (the analysis time has moved since: windows mature, a
	// secondary engine receives forwarded rows), and is being computed again.
	Old bool
}

// recent returns the value of key or, while that is computed (started here
// in the background with f, unless a computation of key.What is already
// under way), the newest value of key.What computed before, of any age.
// With none such it waits for the computation under way (which may be of an
// older version than key's, if it started first: then Stale is set). f runs
// without ctx's cancellation, so that a reader who leaves still leaves the
// value for the next. Errors are not kept. A value of key computed less than
// MaxAge ago is key's; an older one is computed again.
//
// With until set (a console page's deadline), a reader with nothing older to
// be shown waits for the computation only until then, and is answered
// errComputing if it has not finished: the page says the numbers are being
// computed and reloads itself, instead of keeping its reader waiting for
// seconds; the computation goes on, for the reload.
func (vc *viewCache) recent(ctx context.Context, key viewKey, f func(context.Context) (any, error), until time.Time) (cachedValue, error) {
	if vc == nil || vc.maxAge <= 0 {
		now := time.Now
		if vc != nil {
			now = vc.now
		}
		at := now()
		v, err := f(ctx)
		return cachedValue{V: v, At: at}, err
	}
	now := vc.now()
	vc.mu.Lock()
	vc.noteRead(key.What, now, f)
	e := vc.entries[key]
	young := e != nil && now.Sub(e.at) < vc.maxAge
	switch {
	case young && e.finished() && e.err == nil:
		vc.mu.Unlock()
		return cachedValue{V: e.v, At: e.at}, nil
	case young:
		// under way (or just failed, and about to be dropped)
	default:
		e = vc.start(ctx, key, now, f) // without ctx's cancellation
	}
	if l := vc.latest[key.What]; l != nil && l != e {
		vc.mu.Unlock()
		stale := l.version != key.Version
		return cachedValue{V: l.v, At: l.at, Stale: stale, Old: !stale && now.Sub(l.at) >= vc.maxAge}, nil
	}
	vc.mu.Unlock()
	wctx := ctx
	if !until.IsZero() {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, until)
		defer cancel()
	}
	if err := e.wait(wctx); err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			return cachedValue{}, errComputing
		}
		return cachedValue{}, err
	}
	if e.err != nil {
		return cachedValue{}, e.err
	}
	return cachedValue{V: e.v, At: e.at, Stale: e.version != key.Version}, nil
}

// errComputing is recent's answer to a reader whose deadline passed before
// the view's first value was computed.
var errComputing = errors.New("api: the numbers are being computed")

// noteRead records that recent was asked for what at now, with f; at most
// maxEntries views are kept, the least recently read dropped. vc.mu is held.
func (vc *viewCache) noteRead(what string, now time.Time, f func(context.Context) (any, error)) {
	vc.read[what], vc.fns[what] = now, f
	for len(vc.read) > maxEntries {
		var oldest string
		var at time.Time
		for w, t := range vc.read {
			if at.IsZero() || t.Before(at) {
				oldest, at = w, t
			}
		}
		delete(vc.read, oldest)
		delete(vc.fns, oldest)
	}
}

// start returns the computation of key.What under way or, with none, starts
// one of key with f in the background, with ctx's values (a reader's, whose
// cancellation it does not follow) until the cache closes. vc.mu is held.
func (vc *viewCache) start(ctx context.Context, key viewKey, now time.Time, f func(context.Context) (any, error)) *viewEntry {
	if r := vc.running[key.What]; r != nil {
		return r // another version's, started earlier
	}
	e := vc.add(key, now)
	if vc.closed {
		delete(vc.entries, key)
		e.err = experiment.E("api.viewCache", experiment.Unavailable, experiment.Errorf("the server is stopping"))
		close(e.done)
		return e
	}
	vc.running[key.What] = e
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(vc.life, cancel)
	vc.bg.Add(1)
	go func() {
		defer vc.bg.Done()
		defer cancel()
		defer stop()
		vc.fill(key, e, func() (any, error) { return f(ctx) })
	}()
	return e
}

// close cancels the computations started in the background and waits for
// them; nothing more is started afterwards (recent's readers get an
// Unavailable error).
func (vc *viewCache) close() {
	if vc == nil {
		return
	}
	vc.mu.Lock()
	vc.closed = true
	vc.mu.Unlock()
	vc.end()
	vc.bg.Wait()
}

// refresh computes again, one after the other, the views recent was asked
// for less than idle ago whose newest value is of a data version other than
// version or was computed half of MaxAge ago or earlier, and returns how
// many it computed. A view without a value (its computations failed) is left
// to its readers. It returns when they are done or ctx ends.
func (vc *viewCache) refresh(ctx context.Context, version store.DataVersion, idle time.Duration) int {
	if vc == nil || vc.maxAge <= 0 {
		return 0
	}
	now := vc.now()
	vc.mu.Lock()
	var due []string
	for what, at := range vc.read {
		if now.Sub(at) >= idle {
			delete(vc.read, what)
			delete(vc.fns, what)
			continue
		}
		l := vc.latest[what]
		if l == nil || vc.running[what] != nil || l.version == version && now.Sub(l.at) < vc.maxAge/2 {
			continue
		}
		due = append(due, what)
	}
	vc.mu.Unlock()
	slices.Sort(due)
	n := 0
	for _, what := range due {
		vc.mu.Lock()
		f := vc.fns[what]
		if f == nil {
			vc.mu.Unlock()
			continue
		}
		e := vc.start(ctx, viewKey{What: what, Version: version}, vc.now(), f)
		vc.mu.Unlock()
		if e.wait(ctx) != nil {
			return n
		}
		n++
	}
	return n
}

// add stores a new entry of key, started at now, dropping entries of other
// data versions and, beyond maxEntries, the oldest. vc.mu is held.
func (vc *viewCache) add(key viewKey, now time.Time) *viewEntry {
	e := &viewEntry{done: make(chan struct{}), at: now, version: key.Version}
	for k := range vc.entries {
		if k.Version != key.Version {
			delete(vc.entries, k)
		}
	}
	for len(vc.entries) >= maxEntries {
		var oldest viewKey
		var at time.Time
		for k, o := range vc.entries {
			if at.IsZero() || o.at.Before(at) {
				oldest, at = k, o.at
			}
		}
		delete(vc.entries, oldest)
	}
	for len(vc.latest) > maxLatest {
		var oldest string
		var at time.Time
		for what, l := range vc.latest {
			if at.IsZero() || l.at.Before(at) {
				oldest, at = what, l.at
			}
		}
		delete(vc.latest, oldest)
	}
	vc.entries[key] = e
	return e
}

// fill computes e's value with f, keeps it as key.What's latest (or drops e
// on an error) and wakes e's waiters.
func (vc *viewCache) fill(key viewKey, e *viewEntry, f func() (any, error)) {
	e.v, e.err = f()
	vc.mu.Lock()
	if vc.running[key.What] == e {
		delete(vc.running, key.What)
	}
	if e.err != nil {
		if vc.entries[key] == e {
			delete(vc.entries, key)
		}
	} else if l := vc.latest[key.What]; l == nil || !l.at.After(e.at) {
		vc.latest[key.What] = e
	}
	vc.mu.Unlock()
	close(e.done)
}

// cachedResults is the results service behind the console's cache: the
// exact results of experiments and holdout versions, reused while the data
// stays the same (journey.Results). With age set (a console page) it answers
// from viewCache.recent, the newest values computed, of older data while the
// new are computed, and age collects how old they are for the page to say.
type cachedResults struct {
	rs  *results.Service
	db  *store.DB
	vc  *viewCache
	age *viewAge
}

func (s *Server) cachedResults() cachedResults {
	return cachedResults{rs: s.results, db: s.db, vc: s.views}
}

// recentResults is cachedResults for a console page, whose values' age is
// collected in age.
func (s *Server) recentResults(age *viewAge) cachedResults {
	c := s.cachedResults()
	c.age = age
	return c
}

// lookup is the value of what (at the data's version now) computed by f,
// from the cache.
func (c cachedResults) lookup(ctx context.Context, what string, f func(context.Context) (any, error)) (any, error) {
	k := viewKey{What: what, Version: c.db.DataVersion()}
	if c.age == nil {
		return c.vc.get(ctx, k, func() (any, error) { return f(ctx) })
	}
	v, err := c.vc.recent(ctx, k, f, c.age.until)
	if errors.Is(err, errComputing) {
		c.age.noteComputing()
	}
	if err != nil {
		return nil, err
	}
	c.age.note(v)
	return v.V, nil
}

// viewAge is how old the cached values a page was built from are: when the
// oldest was computed, and whether any is of older data (stale) or being
// computed again for the time (old); until is how long the page waits for a
// value never computed before (zero: until it is), and computing says one
// was not there in time (errComputing).
type viewAge struct {
	until time.Time

	mu                    sync.Mutex
	at                    time.Time
	stale, old, computing bool
}

// computingText is what a console page says in place of numbers being
// computed (errComputing).
const computingText = "Being computed for the first time since the server started: this page reloads itself until the numbers are shown."

// consoleRefresh is how often, in seconds, a page waiting for its numbers
// reloads itself (page.Refresh).
const consoleRefresh = 1

// newViewAge is a console page's viewAge, whose values never computed
// before are waited for Options.ConsoleWait from now (negative: until they
// are). The wait is of the real clock, not Options.Now.
func (s *Server) newViewAge() *viewAge {
	if s.opt.ConsoleWait < 0 {
		return &viewAge{}
	}
	return &viewAge{until: time.Now().Add(s.opt.ConsoleWait)}
}

func (a *viewAge) noteComputing() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.computing = true
}

// pending reports whether a value of the page was not computed in time.
func (a *viewAge) pending() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.computing
}

func (a *viewAge) note(v cachedValue) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at.IsZero() || v.At.Before(a.at) {
		a.at = v.At
	}
	a.stale = a.stale || v.Stale
	a.old = a.old || v.Old
}

// shown is what a page says of its numbers' age: when they were computed
// ("" when nothing cached was read) and, when newer ones are being computed,
// the sentence that says so (as a report's, reports.Report.Stale).
func (a *viewAge) shown() (asOf, banner string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at.IsZero() {
		return "", ""
	}
	asOf = a.at.UTC().Format("2006-01-02 15:04:05 MST")
	switch {
	case a.stale:
		banner = "These results are of the data as of " + asOf + ": data has arrived since, and the newer results are being computed; reload to see them."
	case a.old:
		banner = "These results were computed at " + asOf + ": no data has arrived since, but they are being computed again for the time now (analysis windows mature); reload to see them."
	}
	return asOf, banner
}

func optionsKey(opt results.Options) string {
	return "snapshot=" + strconv.FormatBool(!opt.NoSnapshot) + " code=" + strconv.Quote(opt.CodeVersion)
}

// ExperimentResults is results.Service.ExperimentResults, cached.
func (c cachedResults) ExperimentResults(ctx context.Context, key string, opt results.Options) (*results.Results, error) {
	v, err := c.lookup(ctx, "experiment "+strconv.Quote(key)+" "+optionsKey(opt), func(ctx context.Context) (any, error) { return c.rs.ExperimentResults(ctx, key, opt) })
	if err != nil {
		return nil, err
	}
	return v.(*results.Results), nil
}

// HoldoutResults is results.Service.HoldoutResults, cached.
func (c cachedResults) HoldoutResults(ctx context.Context, name string, version int, metrics []string, opt results.Options) (*results.Results, error) {
	what := "holdout " + strconv.Quote(name) + " v" + strconv.Itoa(version) + " metrics " + strconv.Quote(strings.Join(metrics, ",")) + " " + optionsKey(opt)
	v, err := c.lookup(ctx, what, func(ctx context.Context) (any, error) { return c.rs.HoldoutResults(ctx, name, version, metrics, opt) })
	if err != nil {
		return nil, err
	}
	return v.(*results.Results), nil
}

// HoldoutHealth is results.Service.HoldoutHealth, cached.
func (c cachedResults) HoldoutHealth(ctx context.Context, name string, version int) (*results.HoldoutHealth, error) {
	what := "holdout health " + strconv.Quote(name) + " v" + strconv.Itoa(version)
	v, err := c.lookup(ctx, what, func(ctx context.Context) (any, error) { return c.rs.HoldoutHealth(ctx, name, version) })
	if err != nil {
		return nil, err
	}
	return v.(*results.HoldoutHealth), nil
}

// WarmCache computes, into the console's cache, what an analyst's first
// clicks read: the exact report of every running experiment (its page's
// default view and its downloads), every holdout cohort's results and
// health (the holdouts page), then the reports of the 16 experiments stopped
// most recently (their final results). lift serve runs it in the background when it
// starts. A view the data cannot give yet is skipped; it stops at the first
// other error, or when ctx ends.
func (s *Server) WarmCache(ctx context.Context) error {
	const op = "api.WarmCache"
	if s.views.maxAge <= 0 {
		return nil
	}
	skip := func(err error) error {
		if err == nil || dataProblem(err) || experiment.Is(err, experiment.BudgetExceeded) {
			return nil
		}
		return experiment.E(op, err)
	}
	es, err := s.db.ListExperiments(ctx)
	if err != nil {
		return experiment.E(op, err)
	}
	report := func(key string) error {
		_, _, err := s.cachedReport(ctx, key, "", nil)
		return skip(err)
	}
	var stopped []*experiment.Experiment
	for _, e := range es {
		switch e.Status {
		case experiment.Running:
			if err := report(e.Key); err != nil {
				return err
			}
		case experiment.Stopped:
			stopped = append(stopped, e)
		}
	}
	hs, err := s.db.ListHoldouts(ctx)
	if err != nil {
		return experiment.E(op, err)
	}
	c := s.cachedResults()
	for _, h := range hs {
		for ver := 1; ver <= h.Version; ver++ {
			if _, err := c.HoldoutResults(ctx, h.Name, ver, nil, results.Options{NoSnapshot: true}); skip(err) != nil {
				return skip(err)
			}
			if _, err := c.HoldoutHealth(ctx, h.Name, ver); skip(err) != nil {
				return skip(err)
			}
		}
	}
	// Last, the final results of the experiments stopped most recently.
	slices.SortStableFunc(stopped, func(a, b *experiment.Experiment) int {
		return cmpTime(b.StoppedAt, a.StoppedAt)
	})
	for _, e := range stopped[:min(len(stopped), maxWarmStopped)] {
		if err := report(e.Key); err != nil {
			return err
		}
	}
	return nil
}

// maxWarmStopped is how many stopped experiments WarmCache computes the
// report of (the most recently stopped).
const maxWarmStopped = 16

// cmpTime orders times, nil first.
func cmpTime(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}

// RefreshCache keeps the console's views fresh while they are read: every
// quarter of Options.ResultCacheTTL (at least a second) it computes again,
// one at a time, the views read in the last 15 minutes whose numbers are of
// older data or half the TTL old (viewCache.refresh), so that a reader gets
// numbers at most about the TTL old without waiting for them. lift serve
// runs it in the background; it returns when ctx ends.
func (s *Server) RefreshCache(ctx context.Context) error {
	if s.views.maxAge <= 0 {
		return nil
	}
	every := max(s.views.maxAge/4, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.views.refresh(ctx, s.db.DataVersion(), refreshIdle)
	}
}

// exactReport is an experiment's exact report (its segments view by one
// attribute) with the results it was built from (the console's power
// progress reads them), as the cache keeps it.
type exactReport struct {
	r   *reports.Report
	res *results.Results
	at  time.Time // when its computation started
}

// cachedReport is the exact report of experiment key (segments by segment, ""
// the first attribute) for the console's page, its downloads and the API's
// report routes: one computation per data version, kept in the console's
// cache. A report by another segment is the default one's (of the same data
// version, computed first if need be) with its segments view alone computed
// again (segmentView). The results are stored as a snapshot when computed (as the
// console's page always did; the list's verdict reads it). With age (the
// console) it may be the newest report computed before while one over newer
// data, or of the time now, is computed (viewCache.recent, until age.until;
// errComputing when a report never computed is not ready then); with age nil
// it is of the data's version now, computed less than
// Options.ResultCacheTTL ago. The
// report returned is a copy with GeneratedAt now and ComputedAt when its
// numbers were computed (Stale when newer data has arrived since,
// Recomputing when it is computed again for the time); the results
// are shared and must not be modified.
func (s *Server) cachedReport(ctx context.Context, key, segment string, age *viewAge) (*reports.Report, *results.Results, error) {
	k := viewKey{What: "report " + strconv.Quote(key) + " segment " + strconv.Quote(segment) + " " + optionsKey(s.resultOptions()), Version: s.db.DataVersion()}
	compute := func(ctx context.Context) (any, error) {
		if segment != "" {
			// The default view's report of the same data (from the
			// cache, or computed now) with its segments by segment.
			base, res, err := s.cachedReport(ctx, key, "", nil)
			if err != nil {
				return nil, err
			}
			r, err := segmentView(ctx, s.db, s.results, base, segment)
			if err != nil {
				return nil, err
			}
			return &exactReport{r: r, res: res, at: *base.ComputedAt}, nil
		}
		at := s.opt.Now()
		res, err := s.results.ExperimentResults(ctx, key, s.resultOptions())
		if err != nil {
			return nil, err
		}
		r, err := BuildReport(ctx, s.db, s.results, key, ReportOptions{Results: res, SegmentBy: segment, Now: s.opt.Now})
		if err != nil {
			return nil, err
		}
		return &exactReport{r: r, res: res, at: at}, nil
	}
	var (
		v          any
		stale, old bool
		err        error
	)
	if age != nil {
		var c cachedValue
		c, err = s.views.recent(ctx, k, compute, age.until)
		if errors.Is(err, errComputing) {
			age.noteComputing()
		}
		v, stale, old = c.V, c.Stale, c.Old
	} else {
		v, err = s.views.get(ctx, k, func() (any, error) { return compute(ctx) })
	}
	if err != nil {
		return nil, nil, err
	}
	x := v.(*exactReport)
	r := *x.r
	r.GeneratedAt = s.opt.Now().UTC()
	at := x.at.UTC()
	r.ComputedAt, r.Stale, r.Recomputing = &at, stale, old
	return &r, x.res, nil
}
