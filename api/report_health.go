package api

import (
	"context"
	"fmt"
	"sort"

	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
)

// The report's health section (reports/health.go), from the pipelines of the
// health routes: results.ExperimentHealth (GET /v1/experiments/KEY/health)
// and results.ExperimentOverlaps (…/overlaps), so the report shows the API's
// numbers. They are exact (unit counts, pre-period means), and have no DP
// release: a private report lists them among its hidden views instead.

// healthHidden is the private report's sentence on the health section.
const healthHidden = "The health checks (the sequential sample-ratio check over the daily looks, pre-exposure balance, overlaps with other experiments): they read exact unit counts and have no differentially private release; analysts see them. The sample-ratio check above is on this release's noised counts."

// addHealth adds the health section to an exact report; a check the data
// cannot give is a note of the section.
func addHealth(ctx context.Context, rs *results.Service, key string, r *reports.Report) error {
	h := &reports.Health{Overlaps: []reports.Overlap{}}
	eh, err := rs.ExperimentHealth(ctx, key)
	switch {
	case err != nil && dataProblem(err):
		h.Notes = append(h.Notes, fmt.Sprintf("The sample-ratio and balance checks could not be computed: %v.", err))
	case err != nil:
		return err
	default:
		s := eh.SequentialSRM
		h.SequentialSRM = &reports.SequentialSRM{PValue: s.PValue, LogBayesFactor: s.LogBayesFactor, Threshold: s.Threshold,
			Concentration: s.Concentration, Looks: s.Looks, Mismatch: s.Mismatch}
		for _, m := range eh.Imbalance {
			x := reports.Imbalance{Metric: m.Metric, Covariate: m.Covariate, Error: m.Error}
			if im := m.Imbalance; im != nil {
				x.Statistic, x.DF, x.PValue, x.Alpha, x.Imbalanced = im.Statistic, im.DF, im.PValue, im.Alpha, im.Imbalanced
				for _, a := range im.Means {
					x.Means = append(x.Means, reports.ArmMean{Arm: a.Arm, N: a.N, Mean: a.Mean, SE: a.SE})
				}
			}
			h.Imbalance = append(h.Imbalance, x)
		}
	}
	ov, err := rs.ExperimentOverlaps(ctx, key)
	switch {
	case err != nil && dataProblem(err):
		h.Notes = append(h.Notes, fmt.Sprintf("Overlaps with other experiments could not be computed: %v.", err))
	case err != nil:
		return err
	default:
		h.OverlapCorrection = ov.Correction
		for _, o := range ov.Overlaps {
			x := reports.Overlap{Experiment: o.Experiment, Layer: o.Layer, Units: o.Units}
			for _, mi := range o.Interactions {
				y := reports.Interaction{Metric: mi.Metric, Arm: mi.Arm, Other: mi.Other, Error: mi.Error}
				if ir := mi.InteractionResult; ir != nil {
					y.Estimate, y.CILow, y.CIHigh, y.PValue, y.Interacts = ir.Estimate, ir.CILow, ir.CIHigh, ir.PValue, mi.Flagged
					if mi.AdjustedPValue != nil {
						y.AdjustedPValue = *mi.AdjustedPValue
					}
				}
				x.Interactions = append(x.Interactions, y)
			}
			h.Overlaps = append(h.Overlaps, x)
		}
	}
	r.Health = h
	return nil
}

// reportMaturity is the maturity table of a daily series (nil when its
// metric has no matured-only window).
func reportMaturity(d *results.Daily) *reports.DailyMaturity {
	var m *reports.DailyMaturity
	for _, day := range d.Days {
		x := day.Maturity
		if x == nil {
			continue
		}
		if m == nil {
			m = &reports.DailyMaturity{Metric: d.Metric, WindowEndDays: x.WindowEndDays}
		}
		row := reports.MaturityDay{Date: day.Date, Share: x.Share, CohortMatured: x.CohortMatured}
		arms := make([]string, 0, len(x.Denominators))
		for a := range x.Denominators {
			arms = append(arms, a)
		}
		sort.Strings(arms)
		for _, a := range arms {
			row.Arms = append(row.Arms, a)
			row.Units = append(row.Units, day.Units[a])
			row.Denominators = append(row.Denominators, x.Denominators[a])
		}
		m.Days = append(m.Days, row)
	}
	return m
}
