package results

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
)

// Health is the health of an experiment, as served by
// GET /v1/experiments/KEY/health: the sample ratio read as a monitor would
// (anytime-valid, over the daily looks) beside the one-shot chi-square, and
// the pre-exposure balance of every metric with a CUPED covariate.
type Health struct {
	Experiment string    `json:"experiment"`
	ComputedAt time.Time `json:"computed_at"`
	// Exposures are the analyzed units per arm now.
	Exposures map[string]int64 `json:"exposures"`
	// SRM is Pearson's chi-square on the units now: valid when read once.
	SRM analysis.SRMResult `json:"srm"`
	// SequentialSRM is Lindon & Malek's anytime-valid check over Looks.
	SequentialSRM analysis.SequentialSRMResult `json:"sequential_srm"`
	// Looks are the cumulative units per arm at the end of each UTC day from the
	// first exposure, and now.
	Looks []Look `json:"looks"`
	// Imbalance is, per metric with a CUPED covariate, the pre-period means by
	// arm and the test of their equality.
	Imbalance []MetricImbalance `json:"imbalance"`
}

// Look is the cumulative units per arm at one time.
type Look struct {
	Until time.Time        `json:"until"`
	Units map[string]int64 `json:"units"`
}

// MetricImbalance is one metric's pre-exposure balance check. Error says why
// it could not be computed.
type MetricImbalance struct {
	Metric    string `json:"metric"`
	Covariate string `json:"covariate"`
	*analysis.Imbalance
	Error string `json:"error,omitempty"`
}

// looks computes the cumulative units per arm at the end of each UTC day of the
// population's exposures (at most MaxDailyPoints, the latest kept) and at now,
// from the statistics without metrics at those cut-offs (series: one pass
// over the exposures on an engine that evaluates series).
func (s *Service) looks(ctx context.Context, pop metric.Population) ([]Look, error) {
	f, err := s.eng.Freshness(ctx, pop)
	if err != nil {
		return nil, err
	}
	out := []Look{}
	if f.FirstExposure == nil {
		return out, nil
	}
	start := f.FirstExposure.UTC().Truncate(24 * time.Hour)
	end := f.LatestExposure.UTC().Truncate(24 * time.Hour)
	if n := int(end.Sub(start)/(24*time.Hour)) + 1; n > MaxDailyPoints {
		start = end.Add(-time.Duration(MaxDailyPoints-1) * 24 * time.Hour)
	}
	var cuts []time.Time
	for day := start; !day.After(end); day = day.Add(24 * time.Hour) {
		cuts = append(cuts, day.Add(24*time.Hour))
	}
	// One pass over the exposures for every look (the daily series').
	sts, err := s.series(ctx, pop, nil, metric.Resolved{}, cuts)
	if err != nil {
		return nil, err
	}
	for i, st := range sts {
		out = append(out, Look{Until: cuts[i], Units: st.Units})
	}
	return out, nil
}

// countsOf are the looks' units in the population's arm order.
func countsOf(ls []Look, arms []string) [][]float64 {
	out := make([][]float64, len(ls))
	for i, l := range ls {
		out[i] = make([]float64, len(arms))
		for j, a := range arms {
			out[i][j] = float64(l.Units[a])
		}
	}
	return out
}

// ExperimentHealth computes an experiment's health checks from its exposures
// and events. It stores nothing.
func (s *Service) ExperimentHealth(ctx context.Context, key string) (*Health, error) {
	const op = "results.ExperimentHealth"
	e, err := s.reg.GetExperiment(ctx, key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	pop := metric.ExperimentPopulation(e)
	plan := planOf(e)
	h := &Health{Experiment: e.Key, ComputedAt: s.now(), Imbalance: []MetricImbalance{}}
	if h.Looks, err = s.looks(ctx, pop); err != nil {
		return nil, experiment.E(op, err)
	}
	var names []string
	for _, m := range e.Metrics {
		names = append(names, m.Name)
	}
	defs, err := s.reg.ResolveMetrics(ctx, names)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	st, err := s.stats(ctx, pop, names, defs)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	h.Exposures = st.Units
	counts := countsOf([]Look{{Units: st.Units}}, pop.Arms)[0]
	if len(counts) > 1 {
		p := analysis.SRM(counts, pop.Weights)
		h.SRM = analysis.SRMResult{PValue: p, Mismatch: p < analysis.DefaultSRMThreshold, Threshold: analysis.DefaultSRMThreshold}
	}
	looks := countsOf(h.Looks, pop.Arms)
	if n := len(looks); n == 0 || !slices.Equal(looks[n-1], counts) {
		looks = append(looks, counts)
	}
	h.SequentialSRM = analysis.SequentialSRM(looks, pop.Weights, 0, analysis.DefaultSRMThreshold)
	for _, n := range names {
		m := defs[n]
		if m.Covariate == nil {
			continue
		}
		mi := MetricImbalance{Metric: n, Covariate: fmt.Sprintf("%s over %g days before exposure", n, m.Covariate.Days)}
		mi.Imbalance, err = analysis.PreExposureImbalance(st.Metrics[n], plan.Alpha)
		if err != nil {
			mi.Error = errText(err)
		}
		h.Imbalance = append(h.Imbalance, mi)
	}
	return h, nil
}

// HoldoutHealth is the health of one holdout version (cohort), as served by
// GET /v1/holdouts/NAME/health.
type HoldoutHealth struct {
	Holdout    string    `json:"holdout"`
	Version    int       `json:"version"`
	ComputedAt time.Time `json:"computed_at"`
	// Fraction is the configured share of the holdout; Share the observed
	// share of holdout units among the analyzed units.
	Fraction  float64          `json:"fraction"`
	Share     float64          `json:"share"`
	Exposures map[string]int64 `json:"exposures"`
	// SequentialSRM tests the share against Fraction over the daily looks
	// (anytime-valid); Drift tests whether the share of each day's new units
	// moved (Pearson's homogeneity test over the days, read once).
	SequentialSRM analysis.SequentialSRMResult `json:"sequential_srm"`
	Drift         analysis.ShareDrift          `json:"drift"`
	Days          []HoldoutDay                 `json:"days"`
	// Contamination: units logged both in the holdout and exposed to one of
	// the experiments naming it under this version (they are left out of
	// the holdout's results), and their share of the units logged in the
	// holdout.
	Contaminated      int64   `json:"contaminated"`
	ContaminationRate float64 `json:"contamination_rate"`
	// Ageing: when the cohort was drawn (the version's start), its age, and
	// whether it has outlived the rotation period (when there is one) or was
	// rotated out (Ended).
	DrawnAt        time.Time           `json:"drawn_at"`
	AgeDays        float64             `json:"age_days"`
	Ended          *time.Time          `json:"ended,omitempty"`
	RotationPeriod experiment.Duration `json:"rotation_period,omitempty"`
	RotationDue    bool                `json:"rotation_due"`
}

// HoldoutDay is one UTC day's new units by arm and the holdout's share of them.
type HoldoutDay struct {
	Date    string  `json:"date"`
	Holdout int64   `json:"holdout"`
	Exposed int64   `json:"exposed"`
	Share   float64 `json:"share"`
}

// HoldoutHealth computes the health of one version of a holdout (0: the
// current one): its share and drift, contamination and age. It stores nothing.
func (s *Service) HoldoutHealth(ctx context.Context, name string, version int) (*HoldoutHealth, error) {
	const op = "results.HoldoutHealth"
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
	pop, err := s.reg.HoldoutPopulation(ctx, h, version)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	now := s.now()
	out := &HoldoutHealth{Holdout: name, Version: version, ComputedAt: now, Fraction: h.Fraction, Days: []HoldoutDay{}, RotationPeriod: h.RotationPeriod}
	st, err := s.stats(ctx, pop, nil, metric.Resolved{})
	if err != nil {
		return nil, experiment.E(op, err)
	}
	out.Exposures = st.Units
	hu, xu := st.Units[metric.HoldoutArm], st.Units[metric.ExposedArm]
	if hu+xu > 0 {
		out.Share = float64(hu) / float64(hu+xu)
	}
	out.Contaminated = st.MultipleArms
	if hu+st.MultipleArms > 0 {
		out.ContaminationRate = float64(st.MultipleArms) / float64(hu+st.MultipleArms)
	}
	ls, err := s.looks(ctx, pop)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	looks := countsOf(ls, pop.Arms)
	final := []float64{float64(hu), float64(xu)}
	if n := len(looks); n == 0 || !slices.Equal(looks[n-1], final) {
		looks = append(looks, final)
	}
	out.SequentialSRM = analysis.SequentialSRM(looks, pop.Weights, 0, analysis.DefaultSRMThreshold)
	var daily [][]float64
	var prev [2]int64
	for _, l := range ls {
		d := HoldoutDay{Date: l.Until.Add(-24 * time.Hour).Format("2006-01-02"),
			Holdout: l.Units[metric.HoldoutArm] - prev[0], Exposed: l.Units[metric.ExposedArm] - prev[1]}
		prev = [2]int64{l.Units[metric.HoldoutArm], l.Units[metric.ExposedArm]}
		if d.Holdout+d.Exposed > 0 {
			d.Share = float64(d.Holdout) / float64(d.Holdout+d.Exposed)
		}
		out.Days = append(out.Days, d)
		daily = append(daily, []float64{float64(d.Holdout), float64(d.Exposed)})
	}
	out.Drift = analysis.ShareDriftTest(daily, analysis.DefaultAlpha)
	out.DrawnAt = h.RotatedAt
	for _, v := range h.Versions {
		if v.Version == version {
			out.DrawnAt, out.Ended = v.Start, v.End
		}
	}
	if out.DrawnAt.IsZero() {
		out.DrawnAt = h.CreatedAt
	}
	until := now
	if out.Ended != nil {
		until = *out.Ended
	}
	out.AgeDays = until.Sub(out.DrawnAt).Hours() / 24
	out.RotationDue = out.Ended == nil && h.RotationPeriod > 0 && until.Sub(out.DrawnAt) >= time.Duration(h.RotationPeriod)
	return out, nil
}

// Overlaps are the experiments that share units and metrics with one
// experiment, as served by GET /v1/experiments/KEY/overlaps.
type Overlaps struct {
	Experiment string    `json:"experiment"`
	Layer      string    `json:"layer,omitempty"`
	Overlaps   []Overlap `json:"overlaps"`
	// Correction is the multiple-testing correction applied across every
	// interaction test above (the experiment's analysis.correction: "holm",
	// "bh" or "none"): an experiment overlapping many others runs many tests,
	// and some would pass alpha by chance alone.
	Correction string `json:"correction"`
}

// Overlap is one other experiment, of another layer (or of none), that shares
// at least one metric: the units exposed to both and, per shared metric and
// pair of treatment arms, the interaction test.
type Overlap struct {
	Experiment string `json:"experiment"`
	Layer      string `json:"layer,omitempty"`
	// Units is the number of units analyzed in both experiments on the first
	// shared metric (for a mean metric: the units with a value).
	Units        int64               `json:"units"`
	Interactions []MetricInteraction `json:"interactions"`
}

// MetricInteraction is the interaction test of one metric between a treatment
// arm of each experiment (each against its own control), over the units
// analyzed in both; the metric's value is the one of the first experiment (its
// window runs from the unit's exposure to it). Error says why it could not be
// computed. The test's own p_value and interacts are those of one test;
// AdjustedPValue and Flagged account for all the experiment's overlap tests.
type MetricInteraction struct {
	Metric string `json:"metric"`
	Arm    string `json:"arm"`       // the first experiment's treatment
	Other  string `json:"other_arm"` // the other's
	*analysis.InteractionResult
	AdjustedPValue *float64 `json:"adjusted_p_value,omitempty"` // by Overlaps.Correction; absent when the test did not run
	Flagged        bool     `json:"flagged"`                    // AdjustedPValue < alpha: read this, not interacts
	Error          string   `json:"error,omitempty"`
}

// adjustInteractions adjusts the p-values of every interaction test of ov
// that ran, as one family, by plan's correction, and flags those below alpha.
func adjustInteractions(ov *Overlaps, plan analysisPlan) {
	ov.Correction = plan.Correction
	var ps []float64
	var tests []*MetricInteraction
	for i := range ov.Overlaps {
		for j := range ov.Overlaps[i].Interactions {
			if mi := &ov.Overlaps[i].Interactions[j]; mi.InteractionResult != nil {
				ps, tests = append(ps, mi.PValue), append(tests, mi)
			}
		}
	}
	adj := ps
	switch analysis.Correction(plan.Correction) {
	case analysis.Holm:
		adj = analysis.HolmAdjust(ps)
	case analysis.BenjaminiHochberg:
		adj = analysis.BHAdjust(ps)
	}
	for k, mi := range tests {
		p := adj[k]
		mi.AdjustedPValue, mi.Flagged = &p, p < plan.Alpha
	}
}

// ExperimentOverlaps finds the experiments of other layers (or without one:
// only one layer keeps its experiments apart) that share a metric with
// experiment key and have units in common with it, and tests, per shared
// metric (ratio metrics are left out: the test needs a per-unit value), the
// interaction of each pair of treatment arms (analysis.Interaction). It stores
// nothing. Row-level: it reads every unit's value of each shared metric in both
// experiments.
func (s *Service) ExperimentOverlaps(ctx context.Context, key string) (*Overlaps, error) {
	const op = "results.ExperimentOverlaps"
	e, err := s.reg.GetExperiment(ctx, key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	exps, err := s.reg.ListExperiments(ctx)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	sort.Slice(exps, func(i, j int) bool { return exps[i].Key < exps[j].Key })
	mine := map[string]bool{}
	for _, m := range e.Metrics {
		mine[m.Name] = true
	}
	out := &Overlaps{Experiment: e.Key, Layer: e.Layer, Overlaps: []Overlap{}}
	plan := planOf(e)
	for _, o := range exps {
		if o.Key == e.Key || (e.Layer != "" && o.Layer == e.Layer) {
			continue
		}
		var shared []string
		for _, m := range o.Metrics {
			if mine[m.Name] {
				shared = append(shared, m.Name)
			}
		}
		if len(shared) == 0 {
			continue
		}
		defs, err := s.reg.ResolveMetrics(ctx, shared)
		if err != nil {
			return nil, experiment.E(op, err)
		}
		ov := Overlap{Experiment: o.Key, Layer: o.Layer, Interactions: []MetricInteraction{}}
		counted := false
		for _, name := range shared {
			m := defs[name]
			if m.Aggregation == experiment.Ratio {
				continue
			}
			a, err := s.unitValues(ctx, metric.ExperimentPopulation(e), m)
			if err != nil {
				return nil, experiment.E(op, err)
			}
			b, err := s.unitValues(ctx, metric.ExperimentPopulation(o), m)
			if err != nil {
				return nil, experiment.E(op, err)
			}
			armB := map[string]string{}
			for _, v := range b.Values {
				armB[v.Unit] = v.Arm
			}
			both := 0
			cells := map[[2]string]*analysis.Cell{}
			for _, v := range a.Values {
				ob, ok := armB[v.Unit]
				if !ok {
					continue
				}
				both++
				k := [2]string{v.Arm, ob}
				c := cells[k]
				if c == nil {
					c = &analysis.Cell{Shift: v.Value}
					cells[k] = c
				}
				c.Add(v.Value)
			}
			if !counted {
				ov.Units, counted = int64(both), true
			}
			if both == 0 {
				continue
			}
			for _, va := range e.Variants[1:] {
				for _, vb := range o.Variants[1:] {
					mi := MetricInteraction{Metric: name, Arm: va.Name, Other: vb.Name}
					var c [2][2]analysis.Cell
					for i, an := range []string{e.Variants[0].Name, va.Name} {
						for j, bn := range []string{o.Variants[0].Name, vb.Name} {
							if x := cells[[2]string{an, bn}]; x != nil {
								c[i][j] = *x
							}
						}
					}
					mi.InteractionResult, err = analysis.Interaction(c, plan.Alpha)
					if err != nil {
						mi.Error = errText(err)
					}
					ov.Interactions = append(ov.Interactions, mi)
				}
			}
		}
		if ov.Units > 0 {
			out.Overlaps = append(out.Overlaps, ov)
		}
	}
	adjustInteractions(out, plan)
	return out, nil
}

func (s *Service) unitValues(ctx context.Context, pop metric.Population, m *experiment.Metric) (*metric.UnitValues, error) {
	p, err := metric.CompileUnitValues(pop, m, "metric")
	if err != nil {
		return nil, err
	}
	return s.eng.UnitValues(ctx, p)
}
