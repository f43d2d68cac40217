package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/store"
)

// banditDemo are the sizes of the bandit stage of "lift demo".
type banditDemo struct {
	Periods int       // allocation periods (default 6)
	Units   int       // new units per period (default 1,500)
	Holdout string    // the permanent holdout the experiment names
	Start   time.Time // the first period's start
	Seed    uint64
	Clock   *demoClock // dates the registrations and the weight versions
}

// banditRates are the demo headlines' true click rates.
var banditRates = []float64{0.04, 0.05, 0.07}

// demoBandit runs the bandit stage: a three-arm headline experiment whose
// weights are recomputed by Thompson sampling after each hourly period (as
// the bandit_allocation job does), units assigned as /v1/assign assigns them
// (sticky: each keeps the arm of the version it entered at; holdout units
// never enter), clicks simulated at the true rates, and the state that GET
// /v1/experiments/KEY/bandit serves: the weight history, the
// cohort-stratified effects next to the naive ones, and the regret.
func demoBandit(ctx context.Context, out io.Writer, db *store.DB, o banditDemo) (*jobs.BanditState, error) {
	if o.Periods <= 0 {
		o.Periods = 6
	}
	if o.Units <= 0 {
		o.Units = 1500
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0xba4d))
	const actor, key = "demo", "headline"
	o.Clock.set(o.Start.Add(-time.Minute))
	defer o.Clock.wall()
	if _, err := db.CreateMetric(ctx, actor, &experiment.Metric{Name: "headline_clicked", EventType: "headline_click", Aggregation: experiment.Binary,
		Description: "whether the reader clicked the headline"}); err != nil {
		return nil, err
	}
	e := &experiment.Experiment{Key: key, Name: "Headline bandit", Holdout: o.Holdout,
		Description: "Three headlines; traffic moves to the one that is clicked most",
		Variants:    []experiment.Variant{{Name: "plain", Weight: 0.34}, {Name: "question", Weight: 0.33}, {Name: "number", Weight: 0.33}},
		Metrics:     []experiment.MetricRef{{Name: "headline_clicked", Primary: true}},
		Allocation:  &experiment.Allocation{Kind: experiment.AllocationBandit, Reward: "headline_clicked", Period: "1h", MinShare: 0.05, BurnIn: 100}}
	if _, err := db.CreateExperiment(ctx, actor, e); err != nil {
		return nil, err
	}
	e, err := db.StartExperiment(ctx, actor, key)
	if err != nil {
		return nil, err
	}
	h, err := db.GetHoldout(ctx, o.Holdout)
	if err != nil {
		return nil, err
	}
	plan, err := assign.Compile(e, h)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(e.Variants))
	declared := make([]float64, len(e.Variants))
	for i, v := range e.Variants {
		names[i], declared[i] = v.Name, v.Weight
	}
	fmt.Fprintf(out, "\nBandit experiment\n  experiment  %s: arms %s (true click rates %v), Thompson sampling on %s every %s, floor %g, burn-in %d units per arm, holdout %s\n",
		key, strings.Join(names, ", "), banditRates, e.Allocation.Reward, e.Allocation.Period, e.Allocation.MinShare, e.Allocation.BurnIn, o.Holdout)
	weights := func(w []float64) string {
		var b strings.Builder
		for i, x := range w {
			fmt.Fprintf(&b, " %s %.3f", names[i], x)
		}
		return b.String()
	}
	fmt.Fprintf(out, "  version 0  weights%s (declared)\n", weights(declared))
	held := 0
	for p := range o.Periods {
		at := o.Start.Add(time.Duration(p) * time.Hour)
		as := make([]experiment.Assignment, o.Units)
		for i := range as {
			if err := plan.AssignTo(&as[i], fmt.Sprintf("reader-%d-%d", p, i)); err != nil {
				return nil, err
			}
		}
		if err := jobs.AssignBandit(ctx, db, e, as); err != nil {
			return nil, err
		}
		var xs []experiment.Exposure
		var evs []experiment.Event
		perArm := make([]int, len(names))
		for i, a := range as {
			ts := at.Add(time.Duration(i) * time.Hour / time.Duration(o.Units))
			switch {
			case a.Holdout != nil && a.Holdout.InHoldout:
				held++
				xs = append(xs, experiment.Exposure{Experiment: key, Unit: a.Unit, TS: ts, InHoldout: true, HoldoutVersion: a.Holdout.Version, Source: "assign"})
			case a.InExperiment:
				perArm[a.VariantIndex]++
				x := experiment.Exposure{Experiment: key, Unit: a.Unit, Variant: *a.Variant, TS: ts, Source: "assign"}
				if a.Holdout != nil {
					x.HoldoutVersion = a.Holdout.Version
				}
				xs = append(xs, x)
				if rng.Float64() < banditRates[a.VariantIndex] {
					evs = append(evs, experiment.Event{EventID: "hc-" + a.Unit, Unit: a.Unit, Type: "headline_click", TS: ts.Add(time.Minute), Value: 1})
				}
			}
		}
		// The period has passed: its exposures and clicks are in the past, and
		// the next version is dated at its end.
		o.Clock.set(at.Add(time.Hour + 2*time.Minute))
		if err := db.LogExposures(ctx, xs); err != nil {
			return nil, err
		}
		if _, _, err := db.IngestEvents(ctx, evs); err != nil {
			return nil, fmt.Errorf("bandit demo: storing clicks: %w", err)
		}
		v, err := jobs.RecomputeBandit(ctx, db, db.Engine(), key)
		if err != nil {
			return nil, err
		}
		burn := ""
		if v.BurnIn {
			burn = " (burn-in: an arm has under 100 units)"
		}
		fmt.Fprintf(out, "  period %d   %d units %v, %d clicks → version %d weights%s%s\n", p+1, o.Units, perArm, len(evs), v.Version, weights(v.Weights), burn)
	}
	st, err := jobs.BanditReport(ctx, db, db.Engine(), key)
	if err != nil {
		return nil, err
	}
	last := st.Versions[len(st.Versions)-1]
	fmt.Fprintf(out, "  chance best%s; estimated regret %.1f clicks; %d holdout units kept out\n", weights(last.ProbBest), st.Regret, held)
	for _, x := range st.Effects {
		fmt.Fprintf(out, "  %-9s vs %s: %+.4f (95%% CI %+.4f to %+.4f) over %d cohorts; naive difference %+.4f (true %+.2f)\n",
			x.Variant, names[0], x.Estimate, x.Lower, x.Upper, x.Cohorts, x.Naive, banditRates[x.Arm]-banditRates[0])
	}
	return st, nil
}
