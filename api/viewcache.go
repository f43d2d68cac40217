package api

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// viewCache keeps what the console's pages compute from the data (exact
// results) between requests. An entry is reused while its key is the same:
// the key (viewKey) names what was computed and the store's DataVersion it
// was computed at, so new exposures, events, registry or metric definition
// changes, consent changes and erasures make a new key; MaxAge bounds how
// long an entry lives even so (the analysis time moves: windows mature,
// and a secondary engine such as ClickHouse receives forwarded rows
// without a write to the file). Entries of an older DataVersion are
// dropped when a newer one is stored; at most maxEntries are kept.
//
// Only role-independent values go in: exact results are the same for every
// key that sees exact numbers (analyst, admin); viewers read the period's DP
// release, which store keeps. Cached values are shared and must not be
// modified by their readers.
//
// Concurrent misses of one key compute once: the others wait for it.
type viewCache struct {
	now    func() time.Time
	maxAge time.Duration // <= 0: nothing is cached

	mu      sync.Mutex
	entries map[viewKey]*viewEntry
}

// maxEntries bounds the cache: the demo's pages need a few dozen.
const maxEntries = 512

// viewKey is what a cached value was computed from.
type viewKey struct {
	What    string // what was computed and its arguments: "holdout global v1 metrics a,b"
	Version store.DataVersion
}

type viewEntry struct {
	done chan struct{} // closed once v and err are set
	at   time.Time
	v    any
	err  error
}

func newViewCache(now func() time.Time, maxAge time.Duration) *viewCache {
	return &viewCache{now: now, maxAge: maxAge, entries: map[viewKey]*viewEntry{}}
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
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			return e.v, nil
		}
		return f() // the computation this one waited for failed: try again
	}
	e := &viewEntry{done: make(chan struct{}), at: now}
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
	vc.entries[key] = e
	vc.mu.Unlock()
	e.v, e.err = f()
	if e.err != nil {
		vc.mu.Lock()
		if vc.entries[key] == e {
			delete(vc.entries, key)
		}
		vc.mu.Unlock()
	}
	close(e.done)
	return e.v, e.err
}

// cachedResults is the results service behind the console's cache: the
// exact results of experiments and holdout versions, reused while the data
// stays the same (journey.Results).
type cachedResults struct {
	rs *results.Service
	db *store.DB
	vc *viewCache
}

func (s *Server) cachedResults() cachedResults {
	return cachedResults{rs: s.results, db: s.db, vc: s.views}
}

func optionsKey(opt results.Options) string {
	return "snapshot=" + strconv.FormatBool(!opt.NoSnapshot) + " code=" + strconv.Quote(opt.CodeVersion)
}

// ExperimentResults is results.Service.ExperimentResults, cached.
func (c cachedResults) ExperimentResults(ctx context.Context, key string, opt results.Options) (*results.Results, error) {
	k := viewKey{What: "experiment " + strconv.Quote(key) + " " + optionsKey(opt), Version: c.db.DataVersion()}
	v, err := c.vc.get(ctx, k, func() (any, error) { return c.rs.ExperimentResults(ctx, key, opt) })
	if err != nil {
		return nil, err
	}
	return v.(*results.Results), nil
}

// HoldoutResults is results.Service.HoldoutResults, cached.
func (c cachedResults) HoldoutResults(ctx context.Context, name string, version int, metrics []string, opt results.Options) (*results.Results, error) {
	k := viewKey{What: "holdout " + strconv.Quote(name) + " v" + strconv.Itoa(version) + " metrics " + strconv.Quote(strings.Join(metrics, ",")) + " " + optionsKey(opt),
		Version: c.db.DataVersion()}
	v, err := c.vc.get(ctx, k, func() (any, error) { return c.rs.HoldoutResults(ctx, name, version, metrics, opt) })
	if err != nil {
		return nil, err
	}
	return v.(*results.Results), nil
}
