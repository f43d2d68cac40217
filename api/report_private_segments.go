package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// privateViewMetric is the metric of a DP report's segment breakdown: the
// primary metric, else the first, that can be released privately (not a ratio;
// per-unit bounds, or binary); "" when none can.
func privateViewMetric(ctx context.Context, db *store.DB, e *experiment.Experiment) (string, error) {
	refs := append([]experiment.MetricRef(nil), e.Metrics...)
	for i, m := range refs {
		if m.Primary {
			refs[0], refs[i] = refs[i], refs[0]
		}
	}
	names := make([]string, len(refs))
	for i, m := range refs {
		names[i] = m.Name
	}
	defs, err := db.ResolveExperimentMetrics(ctx, e, names) // the pinned versions
	if err != nil {
		return "", err
	}
	for _, m := range refs {
		def, ok := defs[m.Name]
		if !ok {
			continue
		}
		if def.Aggregation != experiment.Ratio && (def.Bounds != nil || def.Aggregation == experiment.Binary) {
			return m.Name, nil
		}
	}
	return "", nil
}

// addPrivateSegments gives a DP report of a two-variant experiment its segment
// breakdown by o.SegmentBy (by default the first attribute name the store
// holds; none when no unit has attributes) through PrivateSegments, the
// pipeline of POST /v1/analyses/segments/private, spent on behalf of o.Who: the
// same breakdown, and the same numbers, as that route's within a release
// period. A breakdown the budget or the data cannot give is a note. It
// reports whether the breakdown is in the report.
func addPrivateSegments(ctx context.Context, db *store.DB, rs *results.Service, e *experiment.Experiment, r *reports.Report, o ReportOptions) (bool, error) {
	if len(e.Variants) != 2 {
		return false, nil
	}
	name, err := privateViewMetric(ctx, db, e)
	if err != nil || name == "" {
		return false, err
	}
	attr := o.SegmentBy
	if attr == "" {
		names, err := db.UnitAttributeNames(ctx, 1)
		if err != nil {
			return false, err
		}
		if len(names) == 0 {
			return false, nil
		}
		attr = names[0]
	}
	ctl, trt := e.Variants[0].Name, e.Variants[1].Name
	seg, err := PrivateSegments(ctx, db, rs, e, name, attr, ctl, trt, o.Who, o.Privacy)
	switch {
	case err != nil && (dataProblem(err) || experiment.Is(err, experiment.BudgetExceeded) || experiment.Is(err, experiment.Conflict)):
		_, _, msg := describe(err)
		r.Notes = append(r.Notes, fmt.Sprintf("There is no private segment breakdown of %s by %s: %s.", name, attr, msg))
		return false, nil
	case err != nil:
		return false, err
	}
	v := &reports.PrivateSegments{Metric: name, Attribute: attr, Control: ctl, Treatment: trt, Threshold: seg.Threshold, Epsilon: seg.Private.Epsilon}
	for _, s := range seg.Segments {
		x := reports.PrivateSegment{Segment: s.Name, Units: s.N}
		rel := s.Release
		for _, u := range rel.Units {
			switch u.Variant {
			case ctl:
				x.Control = u.N
			case trt:
				x.Treated = u.N
			}
		}
		for _, m := range rel.Metrics {
			if m.Metric != name {
				continue
			}
			for _, vr := range m.Variants {
				switch vr.Variant {
				case ctl:
					x.ControlMean = vr.Mean
				case trt:
					x.TreatedMean = vr.Mean
				}
			}
			for _, c := range m.Comparisons {
				if c.Variant == trt {
					x.Absolute = reports.Estimate(c.Absolute)
					if c.NotEnoughSignal {
						x.Signal = c.Note
					}
				}
			}
		}
		v.Segments = append(v.Segments, x)
	}
	r.PrivateSegments = v
	return true, nil
}

// privateSegmentsShown rewrites the hidden views' sentence on the segments once
// the report has their DP breakdown of metric: what stays out is the exact
// breakdown's tests and the quantiles.
func privateSegmentsShown(hidden []string, metric string) []string {
	out := make([]string, 0, len(hidden))
	for _, h := range hidden {
		if strings.HasPrefix(h, "Segment breakdowns and quantiles of ") {
			h = "The exact segment breakdown (adjusted p-values, the test against the rest, post-stratification) and the quantiles of " +
				strings.TrimSuffix(strings.TrimPrefix(h, "Segment breakdowns and quantiles of "), ": they have no differentially private release; analysts see them.") +
				": they have no differentially private release; analysts see them. The segments of " + metric + " in this report are differentially private."
		}
		out = append(out, h)
	}
	return out
}
