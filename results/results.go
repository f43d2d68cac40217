package results

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// Options configures a results computation. Zero values mean defaults.
type Options struct {
	// CodeVersion is recorded in the snapshot; default the binary's module
	// version and VCS revision from its build information.
	CodeVersion string
	// NoSnapshot computes without storing a snapshot (Snapshot is then 0).
	NoSnapshot bool
}

// Results is the analysis of every metric of an experiment (or of a holdout
// version), as served by GET /v1/experiments/KEY/results.
type Results struct {
	Experiment string `json:"experiment,omitempty"`
	Holdout    string `json:"holdout,omitempty"`
	Version    int    `json:"version,omitempty"` // holdout version

	Snapshot    int64     `json:"snapshot"`
	ComputedAt  time.Time `json:"computed_at"`
	InputHash   string    `json:"input_hash"`
	CodeVersion string    `json:"code_version"`

	// Exposures is the number of analyzed units per arm (first exposure to exactly
	// one arm); ExcludedMultiple counts the units exposed to several arms, left out.
	Exposures        map[string]int64   `json:"exposures"`
	ExcludedMultiple int64              `json:"excluded_multiple_exposures"`
	SRM              analysis.SRMResult `json:"srm"`
	Freshness        metric.Freshness   `json:"freshness"`
	Alpha            float64            `json:"alpha"`
	Correction       string             `json:"correction"`
	Sequential       bool               `json:"sequential,omitempty"`
	// MetricVersions are the versions of the metric definitions read (the
	// metrics and the parts of ratio metrics): an experiment's pinned ones.
	MetricVersions map[string]int `json:"metric_versions,omitempty"`

	Metrics []MetricResult `json:"metrics"`
}

// MetricResult is one metric's analysis: the fields of "lift analyze" plus the
// metric's name. With a CUPED covariate, Comparisons are adjusted and Unadjusted
// holds the plain comparisons. Error says why the metric could not be analyzed
// (the rest is then empty); CUPEDError why CUPED could not be applied (the
// comparisons are then the plain ones).
type MetricResult struct {
	Name string `json:"name"`
	// Version is the version of the metric's definition the result used.
	Version int `json:"metric_version,omitempty"`
	analysis.MetricResult
	Primary    bool                  `json:"primary,omitempty"`
	Unadjusted []analysis.Comparison `json:"unadjusted,omitempty"`
	Error      string                `json:"error,omitempty"`
	CUPEDError string                `json:"cuped_error,omitempty"`
	// Maturity is set for a metric over a matured-only window (retention): its
	// denominator is the units whose window had ended at the analysis time.
	Maturity *Maturity `json:"maturity,omitempty"`
}

// Maturity states a matured-only metric's denominator (GrowthBook #4353): per
// arm, the analyzed units whose window had ended by AsOf (those the metric
// counts) and those left out because it had not.
type Maturity struct {
	AsOf       time.Time        `json:"as_of"`
	Matured    map[string]int64 `json:"matured"`
	NotMatured map[string]int64 `json:"not_matured"`
}

// maturedOnly reports whether m's per-unit values are over a matured-only
// window: its own, or for a ratio without one its parts' (which Compile
// requires to agree).
func maturedOnly(m *experiment.Metric, defs map[string]*experiment.Metric) bool {
	if m.Window != nil {
		return m.Window.MaturedOnly
	}
	if m.Aggregation == experiment.Ratio {
		if n := defs[m.Numerator]; n != nil && n.Window != nil {
			return n.Window.MaturedOnly
		}
	}
	return false
}

// addMaturity fills the Maturity of each matured-only metric of ms from st:
// not matured = analyzed units − the metric's n. asOf is the analysis time.
func addMaturity(ms []MetricResult, st *metric.Stats, defs map[string]*experiment.Metric, asOf time.Time) {
	for i := range ms {
		if !maturedOnly(defs[ms[i].Name], defs) {
			continue
		}
		mt := &Maturity{AsOf: asOf.UTC(), Matured: map[string]int64{}, NotMatured: map[string]int64{}}
		for _, a := range st.Metrics[ms[i].Name] {
			mt.Matured[a.Name] = a.N
			mt.NotMatured[a.Name] = st.Units[a.Name] - a.N
		}
		ms[i].Maturity = mt
	}
}

// analysisPlan is what Analyze needs of an experiment's analysis plan.
type analysisPlan struct {
	Alpha      float64
	Sequential bool
	Tuning     float64
	Correction string
	Bayesian   bool           // engine "bayesian": add the Bayesian view under Prior
	Prior      analysis.Prior // a value, so that the input hash prints it
}

func planOf(e *experiment.Experiment) analysisPlan {
	p := analysisPlan{Alpha: e.Analysis.Alpha, Sequential: e.Analysis.Sequential, Tuning: e.Analysis.Tuning, Correction: e.Analysis.Correction}
	if e.Analysis.Engine == "bayesian" {
		p.Bayesian, p.Prior = true, *analysis.PriorOf(e.Analysis.PriorMean, e.Analysis.PriorStddev, e.Analysis.PriorProper)
	}
	if p.Alpha == 0 {
		p.Alpha = analysis.DefaultAlpha
	}
	if p.Correction == "" {
		p.Correction = string(analysis.Holm)
	}
	if p.Sequential && p.Tuning == 0 {
		p.Tuning = 5000
	}
	return p
}

func correctionOf(name string) (analysis.Correction, error) {
	switch name {
	case "holm", "":
		return analysis.Holm, nil
	case "bh":
		return analysis.BenjaminiHochberg, nil
	case "none":
		return analysis.NoCorrection, nil
	}
	return "", experiment.E(experiment.Invalid, experiment.Field("analysis.correction"), experiment.Errorf(`must be "holm", "bh" or "none", got %q`, name))
}

// typeOf maps an aggregation to the statistic type of its per-unit values.
func typeOf(a experiment.Aggregation) analysis.Type {
	switch a {
	case experiment.Binary:
		return analysis.Proportion
	case experiment.Ratio:
		return analysis.Ratio
	}
	return analysis.Mean
}

// AnalyzeStats analyzes each metric's statistics under plan: CUPED where the
// metric has a covariate (the plain comparisons go to Unadjusted), sequential
// intervals when the plan asks, and the plan's multiple-testing correction
// across all metrics and comparisons. It does no I/O.
func AnalyzeStats(st *metric.Stats, names []string, defs map[string]*experiment.Metric, primary string, plan analysisPlan) ([]MetricResult, error) {
	corr, err := correctionOf(plan.Correction)
	if err != nil {
		return nil, err
	}
	var units, weights []float64
	out := make([]MetricResult, 0, len(names))
	var adjust []*analysis.MetricResult
	for _, n := range names {
		m := defs[n]
		arms := st.Metrics[n]
		if units == nil {
			for _, a := range arms {
				units = append(units, float64(st.Units[a.Name]))
				weights = append(weights, a.Weight)
			}
		}
		in := analysis.Input{Metric: n, Type: typeOf(m.Aggregation), Arms: arms, Alpha: plan.Alpha}
		if plan.Bayesian {
			in.Bayesian = &plan.Prior
			in.LowerIsBetter = !m.HigherIsBetter()
		}
		if plan.Sequential {
			in.SequentialTuning = plan.Tuning
		}
		mr := MetricResult{Name: n, Primary: n == primary}
		plain, err := analysis.Analyze(in)
		if err != nil {
			mr.Error = errText(err)
			out = append(out, mr)
			continue
		}
		mr.MetricResult = plain
		if m.Covariate != nil {
			in.Covariate = fmt.Sprintf("%s over %g days before exposure", n, m.Covariate.Days)
			if m.Aggregation == experiment.Binary {
				in.CovariateType = analysis.Proportion
			} else {
				in.CovariateType = analysis.Mean
			}
			adj, err := analysis.Analyze(in)
			if err != nil {
				// Keep the plain analysis and say why CUPED is missing.
				mr.CUPEDError = errText(err)
			} else {
				mr.Unadjusted = plain.Comparisons
				mr.MetricResult = adj
			}
		}
		out = append(out, mr)
	}
	for i := range out {
		if len(out[i].Comparisons) > 0 {
			adjust = append(adjust, &out[i].MetricResult)
		}
	}
	analysis.Adjust(adjust, corr)
	if len(units) > 1 {
		srm := analysis.SRM(units, weights)
		for i := range out {
			// Per-metric SRM would count a mean metric's units with events only:
			// every metric reports the exposure-based check.
			out[i].SRM = analysis.SRMResult{PValue: srm, Mismatch: srm < 0.001, Threshold: 0.001}
		}
	}
	return out, nil
}

func errText(err error) string {
	var le *experiment.Error
	if errors.As(err, &le) {
		return le.Message()
	}
	return err.Error()
}

// ExperimentResults computes the results of every metric of an experiment from
// the stored exposures and events, and stores them as a snapshot.
func (s *Service) ExperimentResults(ctx context.Context, key string, opt Options) (*Results, error) {
	const op = "results.ExperimentResults"
	e, err := s.reg.GetExperiment(ctx, key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	var names []string
	for _, m := range e.Metrics {
		names = append(names, m.Name)
	}
	primary := e.Primary()
	r := &Results{Experiment: e.Key}
	defs, err := s.reg.ResolveExperimentMetrics(ctx, e, names)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	if err := s.computeResults(ctx, r, metric.ExperimentPopulation(e), names, defs, primary, planOf(e), opt); err != nil {
		return nil, experiment.E(op, err)
	}
	if err := s.saveSnapshot(ctx, "experiment", e.Key, r, opt); err != nil {
		return nil, experiment.E(op, err)
	}
	return r, nil
}

// HoldoutResults compares, for one version of a holdout (0: the current one), the
// units kept in the holdout with the units exposed to the experiments naming it,
// on the given metrics (none: every metric of those experiments). It stores a
// snapshot like ExperimentResults.
func (s *Service) HoldoutResults(ctx context.Context, name string, version int, metrics []string, opt Options) (*Results, error) {
	const op = "results.HoldoutResults"
	h, err := s.reg.GetHoldout(ctx, name)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	if version == 0 {
		version = h.Version
	}
	if version < 1 || version > h.Version {
		return nil, experiment.E(op, experiment.NotFound, experiment.Field("version"),
			experiment.Errorf("holdout %q has versions 1 to %d, not %d", name, h.Version, version))
	}
	if len(metrics) == 0 {
		exps, err := s.reg.ListExperiments(ctx)
		if err != nil {
			return nil, experiment.E(op, err)
		}
		seen := map[string]bool{}
		for _, e := range exps {
			if e.Holdout != name {
				continue
			}
			for _, m := range e.Metrics {
				if !seen[m.Name] {
					seen[m.Name] = true
					metrics = append(metrics, m.Name)
				}
			}
		}
		sort.Strings(metrics)
	}
	r := &Results{Holdout: name, Version: version}
	plan := analysisPlan{Alpha: analysis.DefaultAlpha, Correction: string(analysis.Holm)}
	pop, err := s.reg.HoldoutPopulation(ctx, h, version)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	defs, err := s.reg.ResolveMetrics(ctx, metrics)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	if err := s.computeResults(ctx, r, pop, metrics, defs, "", plan, opt); err != nil {
		return nil, experiment.E(op, err)
	}
	if err := s.saveSnapshot(ctx, "holdout", name, r, opt); err != nil {
		return nil, experiment.E(op, err)
	}
	return r, nil
}

// computeResults fills r: statistics, analysis, freshness and the input hash.
func (s *Service) computeResults(ctx context.Context, r *Results, pop metric.Population, names []string, defs metric.Resolved, primary string, plan analysisPlan, opt Options) error {
	if pop.AsOf.IsZero() {
		pop.AsOf = s.now() // the analysis time of matured-only windows
	}
	st, err := s.stats(ctx, pop, names, defs)
	if err != nil {
		return err
	}
	fr := st.Freshness
	ms, err := AnalyzeStats(st, names, defs, primary, plan)
	if err != nil {
		return err
	}
	r.ComputedAt = s.now()
	asOf := pop.AsOf
	if !pop.Until.IsZero() && pop.Until.Before(asOf) {
		asOf = pop.Until
	}
	addMaturity(ms, st, defs, asOf)
	r.CodeVersion = opt.CodeVersion
	if r.CodeVersion == "" {
		r.CodeVersion = buildVersion()
	}
	r.Exposures = st.Units
	r.ExcludedMultiple = st.MultipleArms
	r.Freshness = fr
	r.Alpha = plan.Alpha
	r.Correction = plan.Correction
	r.Sequential = plan.Sequential
	r.Metrics = ms
	if r.Metrics == nil {
		r.Metrics = []MetricResult{}
	}
	for i := range r.Metrics {
		if d := defs[r.Metrics[i].Name]; d != nil {
			r.Metrics[i].Version = d.Version
		}
	}
	for n, d := range defs {
		if d.Version > 0 {
			if r.MetricVersions == nil {
				r.MetricVersions = map[string]int{}
			}
			r.MetricVersions[n] = d.Version
		}
	}
	units := make([]float64, len(pop.Arms))
	for i, a := range pop.Arms {
		units[i] = float64(st.Units[a])
	}
	if len(units) > 1 {
		p := analysis.SRM(units, pop.Weights)
		r.SRM = analysis.SRMResult{PValue: p, Mismatch: p < 0.001, Threshold: 0.001}
	}
	r.InputHash = inputHash(st, names, defs, pop, plan)
	return nil
}

// inputHash is the SHA-256 of everything the analysis read: per arm the unit
// counts, the metric counts and the exact checksums of the per-unit values
// (Stats.Checksums), the metric definitions, the arms and weights, and the plan.
// The float sums themselves are left out: their last bits may differ between
// two runs over the same rows.
func inputHash(st *metric.Stats, names []string, defs map[string]*experiment.Metric, pop metric.Population, plan analysisPlan) string {
	h := sha256.New()
	fmt.Fprintf(h, "arms %q %v multiple %d plan %+v\n", pop.Arms, pop.Weights, st.MultipleArms, plan)
	for _, a := range pop.Arms {
		fmt.Fprintf(h, "units %q %d checksums %s\n", a, st.Units[a], st.Checksums[a])
	}
	for _, n := range names {
		d, _ := json.Marshal(defs[n])
		fmt.Fprintf(h, "metric %s\n", d)
		for _, a := range st.Metrics[n] {
			fmt.Fprintf(h, "arm %q n %d\n", a.Name, a.N)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	if v == "" {
		v = "unknown"
	}
	return v
}

func (s *Service) saveSnapshot(ctx context.Context, kind, subject string, r *Results, opt Options) error {
	if opt.NoSnapshot {
		return nil
	}
	id, err := s.snaps.SaveSnapshot(ctx, kind, subject, r.ComputedAt, r.InputHash, r.CodeVersion,
		func(id int64) ([]byte, error) {
			r.Snapshot = id
			return json.Marshal(r)
		})
	if err != nil {
		r.Snapshot = 0
		return err
	}
	r.Snapshot = id
	return nil
}

// ResultSnapshot returns a stored snapshot of an experiment's ("experiment") or a
// holdout's ("holdout") results; NotFound when id is not one of subject's.
func (s *Service) ResultSnapshot(ctx context.Context, kind, subject string, id int64) (*Results, error) {
	const op = "results.ResultSnapshot"
	doc, err := s.snaps.SnapshotDoc(ctx, kind, subject, id)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	var r Results
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	return &r, nil
}

// series is the statistics of the named metrics (none: the units alone) at
// each cut-off: in one pass when
// the engine evaluates series (metric.SeriesEngine), else one evaluation per
// cut-off; the same numbers either way (metrictest.RunSeries). A population
// without an analysis time gets the clock's, as in stats.
func (s *Service) series(ctx context.Context, pop metric.Population, names []string, defs metric.Resolved, cuts []time.Time) ([]*metric.Stats, error) {
	if pop.AsOf.IsZero() {
		pop.AsOf = s.now()
	}
	plans, err := metric.CompileSeries(pop, names, defs, cuts)
	if err != nil {
		return nil, err
	}
	if se, ok := s.eng.(metric.SeriesEngine); ok {
		return se.StatsSeries(ctx, plans)
	}
	out := make([]*metric.Stats, len(plans))
	for i, p := range plans {
		if out[i], err = s.eng.Stats(ctx, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Daily is the cumulative effect of one metric, day by day: each point is the
// analysis as it would have been computed at the end of that (UTC) day, from the
// exposures and events before then.
type Daily struct {
	Experiment string       `json:"experiment"`
	Metric     string       `json:"metric"`
	Days       []DailyPoint `json:"days"`
}

// DailyPoint is the analysis at the end of one day.
type DailyPoint struct {
	Date        string                    `json:"date"` // YYYY-MM-DD, UTC
	Units       map[string]int64          `json:"units"`
	Variants    []analysis.VariantSummary `json:"variants,omitempty"`
	Comparisons []analysis.Comparison     `json:"comparisons,omitempty"`
	Error       string                    `json:"error,omitempty"`
	// Maturity is set for a metric with a matured-only window (maturity.go).
	Maturity *DayMaturity `json:"maturity,omitempty"`
}

// MaxDailyPoints bounds the days of a daily series (the most recent are kept).
const MaxDailyPoints = 120

// DailyResults computes the cumulative daily series of one metric of an
// experiment, from the day of its first exposure to the day of its latest
// exposure or of the latest event of one of its units (at most MaxDailyPoints
// days). Each day's point is the metric as Stats computes it with that day's
// end as the cut-off; an engine that evaluates series (DuckDB's) computes
// every day in one query, another (ClickHouse's) runs one per day.
func (s *Service) DailyResults(ctx context.Context, key, name string) (*Daily, error) {
	const op = "results.DailyResults"
	e, err := s.reg.GetExperiment(ctx, key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	found := false
	for _, m := range e.Metrics {
		found = found || m.Name == name
	}
	if !found {
		return nil, experiment.E(op, experiment.NotFound, experiment.Field("metric"),
			experiment.Errorf("experiment %q has no metric %q", key, name))
	}
	defs, err := s.reg.ResolveExperimentMetrics(ctx, e, []string{name})
	if err != nil {
		return nil, experiment.E(op, err)
	}
	pop := metric.ExperimentPopulation(e)
	// The series ends at the experiment's own data: its last exposure or the
	// last event of one of its units, never another experiment's (or a stray
	// unit's) latest event.
	f, err := s.eng.Freshness(ctx, pop)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	out := &Daily{Experiment: key, Metric: name, Days: []DailyPoint{}}
	if f.FirstExposure == nil {
		return out, nil
	}
	last := *f.LatestExposure
	if f.LatestUnitEvent != nil && f.LatestUnitEvent.After(last) {
		last = *f.LatestUnitEvent
	}
	start := f.FirstExposure.Truncate(24 * time.Hour)
	end := last.Truncate(24 * time.Hour)
	if n := int(end.Sub(start)/(24*time.Hour)) + 1; n > MaxDailyPoints {
		start = end.Add(-time.Duration(MaxDailyPoints-1) * 24 * time.Hour)
	}
	plan := planOf(e)
	plan.Correction = "none"
	now := s.now()
	var days, cuts []time.Time
	for day := start; !day.After(end); day = day.Add(24 * time.Hour) {
		days, cuts = append(days, day), append(cuts, day.Add(24*time.Hour))
	}
	series, err := s.series(ctx, pop, []string{name}, defs, cuts)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	for i, day := range days {
		st := series[i]
		pt := DailyPoint{Date: day.Format("2006-01-02"), Units: st.Units, Maturity: dayMaturity(name, defs, pop, st, cuts[i], now)}
		ms, err := AnalyzeStats(st, []string{name}, defs, "", plan)
		switch {
		case err != nil:
			pt.Error = errText(err)
		case ms[0].Error != "":
			pt.Error = ms[0].Error
		default:
			pt.Variants = ms[0].Variants
			pt.Comparisons = ms[0].Comparisons
		}
		out.Days = append(out.Days, pt)
	}
	return out, nil
}
