// Package results computes what Lift reports of an experiment or a holdout:
// the per-metric analyses with CUPED, sequential intervals and the
// multiple-testing correction, SRM, freshness, the input hash and the daily
// series, and keeps each computation as a snapshot so that a report can be
// reproduced; and the health checks (ExperimentHealth, HoldoutHealth,
// ExperimentOverlaps), which store nothing.
//
// A Service reads definitions from a Registry, evaluates metric plans on a
// metric.Engine (DuckDB by default, ClickHouse at warehouse scale) and stores
// snapshots through Snapshots; it knows no database. store.DB provides the
// Registry and Snapshots; the engine is a constructor argument, chosen by the
// caller (a switch in cmd/lift).
package results

import (
	"context"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// Registry is what results read of the experiment registry.
type Registry interface {
	GetExperiment(ctx context.Context, key string) (*experiment.Experiment, error)
	GetHoldout(ctx context.Context, name string) (*experiment.Holdout, error)
	ListExperiments(ctx context.Context) ([]*experiment.Experiment, error)
	// ResolveMetrics loads the named metrics and the parts of ratio metrics
	// (Invalid naming metrics[i] for one that is not defined).
	ResolveMetrics(ctx context.Context, names []string) (metric.Resolved, error)
	// ResolveExperimentMetrics is ResolveMetrics at the metric versions
	// experiment e reads (those it pinned when it started; the current ones
	// for a draft).
	ResolveExperimentMetrics(ctx context.Context, e *experiment.Experiment, names []string) (metric.Resolved, error)
	// HoldoutPopulation is metric.HoldoutPopulation over the experiments
	// naming h.
	HoldoutPopulation(ctx context.Context, h *experiment.Holdout, version int) (metric.Population, error)
}

// Snapshots keeps result documents.
type Snapshots interface {
	// SaveSnapshot stores the document doc(id) of a kind ("experiment" or
	// "holdout") and subject (the key or name) under a new id, in one
	// transaction, and returns the id.
	SaveSnapshot(ctx context.Context, kind, subject string, computedAt time.Time, inputHash, codeVersion string, doc func(id int64) ([]byte, error)) (int64, error)
	// SnapshotDoc returns the document of snapshot id of subject; NotFound
	// naming "snapshot" when there is none.
	SnapshotDoc(ctx context.Context, kind, subject string, id int64) ([]byte, error)
}

// Service computes results. It is safe for concurrent use.
type Service struct {
	reg   Registry
	snaps Snapshots
	eng   metric.Engine
	clock func() time.Time
}

// New returns a Service over a registry, a snapshot store and a metric engine;
// now is the clock (nil: time.Now).
func New(reg Registry, snaps Snapshots, eng metric.Engine, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{reg: reg, snaps: snaps, eng: eng, clock: now}
}

// Engine is the metric engine the service evaluates plans on.
func (s *Service) Engine() metric.Engine { return s.eng }

func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// Stats computes the sufficient statistics of the named metrics over a
// population: metric.Compile, then the engine. Metrics must exist (Invalid
// naming metrics[i] otherwise).
func (s *Service) Stats(ctx context.Context, pop metric.Population, names []string) (*metric.Stats, error) {
	const op = "results.Stats"
	defs, err := s.reg.ResolveMetrics(ctx, names)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	st, err := s.stats(ctx, pop, names, defs)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	return st, nil
}

// stats compiles and evaluates; a population without an analysis time gets the
// clock's (matured-only windows count the units whose window has ended by then).
func (s *Service) stats(ctx context.Context, pop metric.Population, names []string, defs metric.Resolved) (*metric.Stats, error) {
	if pop.AsOf.IsZero() {
		pop.AsOf = s.now()
	}
	p, err := metric.Compile(pop, names, defs)
	if err != nil {
		return nil, err
	}
	return s.eng.Stats(ctx, p)
}
