package api

import (
	"context"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/store"
)

// reportDefinitions are the versions of the metric definitions a report of e
// reads, in the experiment's metric order, beside each metric's current
// version: used are the versions the exact results recorded (nil for a
// private report: the versions the experiment pinned at its start, or the
// current ones for a draft). A metric deleted since is left out.
func reportDefinitions(ctx context.Context, db *store.DB, e *experiment.Experiment, used map[string]int) ([]reports.MetricDefinition, error) {
	var out []reports.MetricDefinition
	for _, ref := range e.Metrics {
		m, err := db.GetMetric(ctx, ref.Name)
		if experiment.Is(err, experiment.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d := reports.MetricDefinition{Metric: ref.Name, Version: m.Version, Current: m.Version}
		if v, ok := e.MetricVersions[ref.Name]; ok {
			d.Version, d.Pinned = v, true
		}
		if v, ok := used[ref.Name]; ok && v > 0 {
			d.Version = v
		}
		out = append(out, d)
	}
	return out, nil
}
