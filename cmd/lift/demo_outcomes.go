package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// registerMetrics defines the demo's metrics before the experiment names them
// (they are locked when it starts): revenue per unit over the 14 days after first
// exposure, with the same metric over the 14 days before as its CUPED covariate and
// per-unit bounds for DP releases, and purchase conversion.
func (d *demo) registerMetrics(ctx context.Context) error {
	for _, m := range []*experiment.Metric{
		{Name: "revenue", Description: "revenue per unit, 14 days after first exposure", EventType: "purchase", Aggregation: experiment.Sum,
			Window: &experiment.Window{StartDays: 0, EndDays: 14}, Covariate: &experiment.Covariate{Days: 14}, Bounds: &experiment.Bounds{Lower: 0, Upper: 200}},
		{Name: "converted", Description: "bought at least once within 14 days", EventType: "purchase", Aggregation: experiment.Binary,
			Window: &experiment.Window{StartDays: 0, EndDays: 14}, Bounds: &experiment.Bounds{Lower: 0, Upper: 1}},
	} {
		if _, err := d.db.CreateMetric(ctx, "demo", m); err != nil {
			return err
		}
	}
	return nil
}

// outcomes simulates purchases of the exposed units. Each unit has a spending
// level b = exp(N(3, 0.5)) (about 20) and a propensity q = logistic(2·N(0,1)); with
// probability q it bought once in the 14 days before exposure, for
// b·(1 + 0.25·N(0,1)), and with probability q it buys once in the 14 days after, for
// m·b·(1 + 0.25·N(0,1)) with m = 1 + effect for treatment and 1 for control. The
// true relative effect on revenue per unit is therefore exactly --effect, and on
// conversion 0; the shared b and q make pre-period revenue a good CUPED covariate.
// The holdout's units buy like control (m = 1), after the experiment's units so
// that theirs draw the same numbers as before, which makes the holdout's
// long-run incrementality (exposed against held out) half the effect.
func (d *demo) outcomes(ctx context.Context) error {
	const batch = 10_000
	began := time.Now()
	evs := make([]experiment.Event, 0, batch)
	n := 0
	flush := func() error {
		if len(evs) == 0 {
			return nil
		}
		if _, _, err := d.db.IngestEvents(ctx, evs); err != nil {
			return err
		}
		n += len(evs)
		evs = evs[:0]
		return nil
	}
	day := float64(24 * time.Hour)
	for i, x := range append(d.exposed[:len(d.exposed):len(d.exposed)], d.heldOut...) {
		b := math.Exp(3 + 0.5*d.rng.NormFloat64())
		q := 1 / (1 + math.Exp(-2*d.rng.NormFloat64()))
		if d.rng.Float64() < q {
			ts := x.TS.Add(-time.Duration((0.01 + 13.9*d.rng.Float64()) * day))
			evs = append(evs, experiment.Event{EventID: "pre-" + strconv.Itoa(i), Unit: x.Unit, Type: "purchase", TS: ts, Value: math.Max(0, b*(1+0.25*d.rng.NormFloat64()))})
		}
		if d.rng.Float64() < q {
			m := 1.0
			if x.Variant == "treatment" {
				m += d.effect
			}
			ts := x.TS.Add(time.Duration((0.01 + 13.9*d.rng.Float64()) * day))
			evs = append(evs, experiment.Event{EventID: "post-" + strconv.Itoa(i), Unit: x.Unit, Type: "purchase", TS: ts, Value: math.Max(0, m*b*(1+0.25*d.rng.NormFloat64()))})
		}
		if len(evs) >= batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nSimulated %d purchase events in %s (true effect on revenue per unit: %+.1f%%; on conversion: none).\n",
		n, time.Since(began).Round(time.Millisecond), 100*d.effect)
	return nil
}

// results computes the experiment's results as the results API does and prints
// each comparison with whether its interval contains the true effect.
func (d *demo) results(ctx context.Context) error {
	r, err := api.ResultsOver(d.db).ExperimentResults(ctx, d.exp.Key, results.Options{CodeVersion: codeVersion()})
	if err != nil {
		return err
	}
	truth := map[string]float64{"revenue": d.effect, "converted": 0}
	fmt.Fprintf(d.out, "\nResults (snapshot %d; %.0f%% intervals, %s correction across metrics):\n", r.Snapshot, 100*(1-r.Alpha), r.Correction)
	fmt.Fprintf(d.out, "  %-10s %-10s %10s %10s %24s %9s %s\n", "metric", "variant", "control", "treatment", "relative effect [CI]", "p", "contains the truth")
	for _, m := range r.Metrics {
		if m.Error != "" {
			fmt.Fprintf(d.out, "  %-10s %s\n", m.Name, m.Error)
			continue
		}
		means := map[string]float64{}
		for _, v := range m.Variants {
			means[v.Name] = v.Mean
		}
		for _, c := range m.Comparisons {
			rel := c.Relative
			hit := "no"
			if t := truth[m.Name]; rel.CILow <= t && t <= rel.CIHigh {
				hit = fmt.Sprintf("yes (%+.1f%%)", 100*t)
			}
			fmt.Fprintf(d.out, "  %-10s %-10s %10.4f %10.4f %+7.2f%% [%+6.2f%%, %+6.2f%%] %9.3g %s\n",
				m.Name, c.Variant, means[m.Control], means[c.Variant], 100*rel.Estimate, 100*rel.CILow, 100*rel.CIHigh, rel.PValue, hit)
		}
		if m.CUPED != nil {
			fmt.Fprintf(d.out, "  %-10s CUPED on %s: theta %.3f, variance reduced by %.0f%%", m.Name, m.CUPED.Covariate, m.CUPED.Theta, 100*m.CUPED.VarianceReduction)
			for _, u := range m.Unadjusted {
				fmt.Fprintf(d.out, " (unadjusted interval [%+.2f%%, %+.2f%%])", 100*u.Relative.CILow, 100*u.Relative.CIHigh)
			}
			fmt.Fprintln(d.out)
		}
	}
	fmt.Fprintf(d.out, "  (with %.0f%% intervals about 1 run in %.0f leaves a true effect outside by chance: try --seed N)\n", 100*(1-r.Alpha), 1/r.Alpha)
	return nil
}
