package api

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// compiled is an experiment with its compiled assignment plan, cached so that
// assignment does not read the registry per request.
type compiled struct {
	exp      *experiment.Experiment
	plan     *assign.Plan
	holdout  int             // the holdout version the plan hashes with; 0 without a holdout
	variants map[string]bool // variant names, to check client-sent exposures
	loaded   time.Time       // monotonic time of loading, for the TTL

	refreshing atomic.Bool // one request reloads an expired entry; the others use it meanwhile
}

// planCache holds compiled plans per experiment key. Entries are dropped when
// the API changes the experiment or rotates a holdout, and expire after ttl so
// that changes made elsewhere (a scheduled rotation) are seen; one request
// reloads an expired entry while concurrent ones keep using it. Freshness is
// wall time (time.Now), not the injected clock.
type planCache struct {
	db  *store.DB
	ttl time.Duration

	mu sync.RWMutex
	m  map[string]*compiled
}

func newPlanCache(db *store.DB, ttl time.Duration) *planCache {
	return &planCache{db: db, ttl: ttl, m: map[string]*compiled{}}
}

// get returns the compiled experiment, loading it from the store when absent or
// expired. An unknown experiment is a NotFound error.
func (pc *planCache) get(ctx context.Context, key string) (*compiled, error) {
	pc.mu.RLock()
	c := pc.m[key]
	pc.mu.RUnlock()
	if c != nil {
		if time.Since(c.loaded) < pc.ttl || !c.refreshing.CompareAndSwap(false, true) {
			return c, nil
		}
	}
	fresh, err := pc.load(ctx, key)
	if err != nil {
		if c != nil {
			c.refreshing.Store(false)
		}
		return nil, err
	}
	c = fresh
	pc.mu.Lock()
	pc.m[key] = c
	pc.mu.Unlock()
	return c, nil
}

func (pc *planCache) load(ctx context.Context, key string) (*compiled, error) {
	start := time.Now()
	e, err := pc.db.GetExperiment(ctx, key)
	if err != nil {
		return nil, err
	}
	var h *experiment.Holdout
	if e.Holdout != "" {
		if h, err = pc.db.GetHoldout(ctx, e.Holdout); err != nil {
			return nil, experiment.E("api.plan", experiment.Internal, err)
		}
	}
	p, err := assign.Compile(e, h)
	if err != nil {
		// The registry validated the design; a stored design that does not compile is a bug.
		return nil, experiment.E("api.plan", experiment.Internal, err)
	}
	c := &compiled{exp: e, plan: p, variants: make(map[string]bool, len(e.Variants)), loaded: start}
	if h != nil {
		c.holdout = h.Version
	}
	for _, v := range e.Variants {
		c.variants[v.Name] = true
	}
	return c, nil
}

func (pc *planCache) invalidate(key string) {
	pc.mu.Lock()
	delete(pc.m, key)
	pc.mu.Unlock()
}

func (pc *planCache) invalidateAll() {
	pc.mu.Lock()
	clear(pc.m)
	pc.mu.Unlock()
}
