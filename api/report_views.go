package api

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// The report's further views (reports/views.go), from the pipelines of their
// API routes: the bandit's state (GET /v1/experiments/KEY/bandit,
// jobs.BanditReport), the segment breakdown (POST /v1/analyses/segments,
// segmentAnalysis), the quantiles (POST /v1/analyses/quantiles,
// quantileAnalysis) and the Bayesian view of each comparison (the results'
// own, under the experiment's engine "bayesian"). None has a DP release, so
// a private report lists them as hidden instead.

// reportBayesian is the relative posterior of a comparison's Bayesian view.
func reportBayesian(b *analysis.Bayesian) *reports.Bayesian {
	if b == nil {
		return nil
	}
	x := b.Relative
	return &reports.Bayesian{Expected: x.Expected, CILow: x.CILow, CIHigh: x.CIHigh, ChanceToWin: x.ChanceToWin, RiskControl: x.RiskControl, RiskTreatment: x.RiskTreatment}
}

// viewMetric is the metric the segments and quantiles views break down: the
// primary metric, else the first of the experiment's, that is not a ratio.
func viewMetric(ctx context.Context, db *store.DB, e *experiment.Experiment) (string, error) {
	refs := append([]experiment.MetricRef(nil), e.Metrics...)
	for i, m := range refs {
		if m.Primary {
			refs[0], refs[i] = refs[i], refs[0]
		}
	}
	for _, m := range refs {
		def, err := db.GetMetric(ctx, m.Name)
		if experiment.KindOf(err) == experiment.NotFound {
			continue
		}
		if err != nil {
			return "", err
		}
		if def.Aggregation != experiment.Ratio {
			return m.Name, nil
		}
	}
	return "", nil
}

// dataProblem reports whether err is about the data (the view is left out with
// a note) rather than a failure.
func dataProblem(err error) bool {
	return experiment.Is(err, experiment.InsufficientData) || experiment.Is(err, experiment.Invalid) || experiment.Is(err, experiment.NotFound)
}

// addExactViews adds the bandit, segments and quantiles views to an exact
// report; a view the data cannot give is a note. It returns the allocation
// chart of a bandit (nil otherwise).
func addExactViews(ctx context.Context, db *store.DB, rs *results.Service, e *experiment.Experiment, r *reports.Report, o ReportOptions) (reports.Chart, error) {
	var chart reports.Chart
	if e.IsBandit() {
		st, err := jobs.BanditReport(ctx, db, rs.Engine(), e.Key)
		switch {
		case err != nil && dataProblem(err):
			r.Notes = append(r.Notes, fmt.Sprintf("The bandit's state could not be read: %v.", err))
		case err != nil:
			return nil, err
		default:
			b := &reports.Bandit{Variants: st.Variants, ArmMeans: st.ArmMeans, Regret: st.Regret, Level: 1 - r.Alpha}
			for _, v := range st.Versions {
				b.Versions = append(b.Versions, reports.BanditVersion{Version: v.Version, At: v.CreatedAt, Weights: v.Weights, ProbBest: v.ProbBest, BurnIn: v.BurnIn})
			}
			for _, x := range st.Effects {
				b.Effects = append(b.Effects, reports.BanditEffect{Variant: x.Variant, Interval: reports.Interval{Estimate: x.Estimate, Low: x.Lower, High: x.Upper}, Naive: x.Naive})
			}
			r.Bandit = b
			chart = &reports.Allocation{Variants: b.Variants, Versions: b.Versions, Privacy: r.Privacy}
		}
	}
	name, err := viewMetric(ctx, db, e)
	if err != nil {
		return nil, err
	}
	if name == "" || len(e.Variants) != 2 {
		return chart, nil
	}
	attr := o.SegmentBy
	if attr == "" {
		names, err := db.UnitAttributeNames(ctx, 1)
		if err != nil {
			return nil, err
		}
		if len(names) > 0 {
			attr = names[0]
		}
	}
	// One read of the per-unit values for both views (the same metric and
	// arms: the experiment's two variants, the first the control).
	var pre *unitValues
	if values, multi, err := db.UnitValues(ctx, rs.Engine(), e, []string{e.Variants[0].Name, e.Variants[1].Name}, name, "metric"); err == nil {
		pre = &unitValues{values, multi}
	} else if !dataProblem(err) {
		return nil, err
	} // else each view says what is wrong with the data
	if r.Segments, err = addSegments(ctx, db, rs, e, r, name, attr, pre); err != nil {
		return nil, err
	}
	q, err := quantileAnalysisOf(ctx, db, rs.Engine(), quantilesRequest{Experiment: e.Key, Metric: name, Alpha: r.Alpha}, pre)
	switch {
	case err != nil && dataProblem(err):
		r.Notes = append(r.Notes, fmt.Sprintf("There are no quantiles of %s: %v.", name, err))
	case err != nil:
		return nil, err
	default:
		v := &reports.Quantiles{Metric: q.Metric, Control: q.Control, Treatment: q.Treatment, Method: q.Method}
		for _, x := range q.Quantiles {
			v.Quantiles = append(v.Quantiles, reports.Quantile{Quantile: x.Quantile, Control: x.Control.Estimate, Treated: x.Treated.Estimate, Absolute: estimate(x.Absolute)})
		}
		r.Quantiles = v
	}
	return chart, nil
}

// noSegments starts the note of a report whose segments view by an attribute
// could not be computed.
const noSegments = "There is no segment breakdown of "

// addSegments is the segments view of metric name by attribute attr (none
// when attr is ""), over the per-unit values pre (nil: read here); a
// breakdown the data cannot give is a note of r (noSegments).
func addSegments(ctx context.Context, db *store.DB, rs *results.Service, e *experiment.Experiment, r *reports.Report, name, attr string, pre *unitValues) (*reports.Segments, error) {
	if attr == "" {
		return nil, nil
	}
	// CUPEDps when the metric has a pre-exposure covariate, as its results have CUPED.
	cuped := false
	if defs, err := db.ResolveExperimentMetrics(ctx, e, []string{name}); err == nil && defs[name] != nil && defs[name].Covariate != nil && defs[name].Covariate.Days > 0 {
		cuped = true
	}
	sr := segmentsRequest{Experiment: e.Key, Metric: name, Attribute: attr, Alpha: r.Alpha, CUPED: cuped}
	// "event:TYPE.PROPERTY" breaks down by a property of the units' events.
	if rest, ok := strings.CutPrefix(attr, "event:"); ok {
		sr.Attribute = ""
		if typ, prop, ok := strings.Cut(rest, "."); ok {
			sr.EventType, sr.EventProperty = typ, prop
		} else {
			sr.EventProperty = rest // of the metric's event type
		}
	}
	seg, err := segmentAnalysisOf(ctx, db, rs.Engine(), sr, pre)
	switch {
	case err != nil && dataProblem(err):
		r.Notes = append(r.Notes, fmt.Sprintf(noSegments+"%s by %s: %v.", name, attr, err))
		return nil, nil
	case err != nil:
		return nil, err
	}
	return reportSegments(seg.SegmentReport), nil
}

// segmentView is the report by segments of attr made from base, the exact
// report of the same experiment and data by another attribute (its results,
// daily series, health, bandit and quantiles do not depend on it): base's
// segments view and its note replaced by attr's, computed here. base is not
// modified.
func segmentView(ctx context.Context, db *store.DB, rs *results.Service, base *reports.Report, attr string) (*reports.Report, error) {
	e, err := db.GetExperiment(ctx, base.Experiment)
	if err != nil {
		return nil, err
	}
	r := *base
	r.Notes, r.Segments = nil, nil
	at := len(base.Notes) // where base's segments note was
	for i, n := range base.Notes {
		if strings.HasPrefix(n, noSegments) {
			at = i
			continue
		}
		r.Notes = append(r.Notes, n)
	}
	name, err := viewMetric(ctx, db, e)
	if err != nil || name == "" || len(e.Variants) != 2 {
		return &r, err
	}
	x := &reports.Report{Alpha: r.Alpha}
	if r.Segments, err = addSegments(ctx, db, rs, e, x, name, attr, nil); err != nil {
		return nil, err
	}
	at = min(at, len(r.Notes))
	r.Notes = slices.Concat(r.Notes[:at:at], x.Notes, r.Notes[at:])
	return &r, nil
}

func reportSegments(s *analysis.SegmentReport) *reports.Segments {
	v := &reports.Segments{Metric: s.Metric, Attribute: s.Attribute, Control: s.Control, Treatment: s.Treatment, Correction: string(s.Correction), Merged: s.Merged}
	for _, x := range s.Segments {
		v.Segments = append(v.Segments, reports.Segment{Segment: x.Segment, Control: x.Control, Treated: x.Treated, Absolute: estimate(x.Absolute),
			Adjusted: x.Adjusted, InteractionAdjust: x.InteractionAdjusted, Differs: x.Differs})
	}
	if h := s.Heterogeneity; h != nil {
		p := h.PValue
		v.HeterogeneityP = &p
	}
	if ps := s.PostStratified; ps != nil {
		est := estimate(*ps)
		v.PostStratified = &est
	}
	if c := s.CUPEDPostStratified; c != nil && c.CUPED { // not when the covariate never varies
		est := estimate(c.Absolute)
		v.CUPEDPostStratified = &est
		v.Covariate = s.Covariate
	}
	return v
}

// hiddenViews are the sentences of a private report on the views it leaves
// out: they have no DP release.
func hiddenViews(ctx context.Context, db *store.DB, e *experiment.Experiment) ([]string, error) {
	out := []string{healthHidden}
	if e.IsBandit() {
		out = append(out, "The bandit's allocation over time, its chance each arm is best and its regret: they have no differentially private release; analysts see them.")
	}
	if e.Analysis.Engine == "bayesian" {
		out = append(out, "The Bayesian view (chance to win, risk, credible intervals): it has no differentially private release; analysts see it.")
	}
	name, err := viewMetric(ctx, db, e)
	if err != nil {
		return nil, err
	}
	if name != "" && len(e.Variants) == 2 {
		out = append(out, "Segment breakdowns and quantiles of "+name+": they have no differentially private release; analysts see them.")
	}
	return out, nil
}
