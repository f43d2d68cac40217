package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/store"
)

const demoDescription = `
Simulate an experiment end to end on a fresh DuckDB file: register a layer, a 5%
permanent holdout, two metrics (revenue with a CUPED pre-period covariate, and
conversion) and a 50/50 experiment in the layer, start it, assign --units
simulated units with the same in-process assignment the server uses, log their
exposures through the store's exposure writer, and print the units per arm, the
holdout and the sample-ratio check (chi-square); each unit gets a device
attribute to segment by. Then simulate purchases before
and after exposure with a known true effect (--effect, on revenue per unit;
none on conversion), compute the results as GET /v1/experiments/KEY/results does,
and print them with whether each interval contains the true effect.

Then a bandit: a three-headline experiment under the same holdout whose weights
are recomputed by Thompson sampling after each of 6 hourly periods of 1,500 new
units, with its weight history, cohort-stratified effects (next to the biased
naive ones) and regret.

Last, the journey stage: a synthetic catalog and view history, an ALS model
trained on it (written beside the database, in DB-models/, with its model card),
a "home" journey under a 50/50 experiment with a 10% permanent holdout served
through the CPU scorer, one decision per simulated user in 4 rounds (Thompson
sampling over items learning from each round's clicks), simulated clicks on what
was shown, and the personalized-vs-control and exposed-vs-holdout results.

Without --db the file is created in a new temporary folder, whose path is printed;
open it with DuckDB or point "lift serve --db" at it to look further.`

// demo is one run of "lift demo": its settings and what each stage leaves for
// the next. Stages are methods, run in order by runDemo; later stages (outcomes,
// analysis, reports, journeys) are added as further methods and one line each in
// runDemo.
type demo struct {
	out    io.Writer
	db     *store.DB
	units  int
	effect float64 // true relative effect on revenue per unit
	rng    *rand.Rand
	start  time.Time // first simulated exposure time
	clock  *demoClock

	layer   *experiment.Layer
	holdout *experiment.Holdout
	exp     *experiment.Experiment
	unitIDs []string              // the simulated units, in order
	exposed []experiment.Exposure // the exposures logged (one per exposed unit)
	heldOut []experiment.Exposure // the holdout's exposures (one per held-out unit)
	counts  map[string]int64      // exposures per variant as stored ("" = holdout)
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := e.flags("demo", "[--db PATH] [--units N] [--seed N]", demoDescription)
	path := fs.String("db", "", "DuckDB `file` to create (must not exist); default a new file in a temporary folder")
	units := fs.Int("units", 100_000, "number of simulated units")
	seed := fs.Uint64("seed", 1, "seed of the simulated unit ids, times and outcomes")
	effect := fs.Float64("effect", 0.06, "true relative effect of treatment on revenue per unit")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *units < 1 {
		return experiment.E("demo", experiment.Invalid, experiment.Field("--units"), experiment.Errorf("must be at least 1, got %d", *units))
	}
	file, err := demoFile(*path)
	if err != nil {
		return err
	}
	clock := &demoClock{}
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sopt.Now = clock.Now
	db, err := store.Open(ctx, file, sopt)
	if err != nil {
		return err
	}
	// Exposures fall in the 14 days starting 28 days ago and outcomes up to 14
	// days after exposure, so that every simulated time lies in the past.
	d := &demo{
		out: e.stdout, db: db, units: *units, effect: *effect, clock: clock,
		rng:   rand.New(rand.NewPCG(*seed, 0x11f7)),
		start: time.Now().UTC().Add(-28 * 24 * time.Hour).Truncate(time.Hour),
	}
	models := strings.TrimSuffix(file, filepath.Ext(file)) + "-models" // the journey stage's trained model
	fmt.Fprintf(d.out, "Lift demo\n  database    %s\n", file)
	for _, stage := range []func(context.Context) error{
		d.register,
		d.expose,
		d.attributes,
		d.sampleRatio,
		d.outcomes,
		d.results,
		func(ctx context.Context) error {
			_, err := demoBandit(ctx, d.out, db, banditDemo{Holdout: d.holdout.Name, Start: d.start.Add(15 * 24 * time.Hour), Seed: *seed, Clock: clock})
			return err
		},
		func(ctx context.Context) error {
			return demoJourney(ctx, e, db, journeyDemo{Seed: *seed, ModelDir: models, Clock: clock})
		},
	} {
		if err := stage(ctx); err != nil {
			db.Close()
			return err
		}
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", file, err)
	}
	fmt.Fprintf(d.out, "\nThe file is ready: lift serve --db %s --models %s\n", file, models)
	return nil
}

// demoFile returns the file to create: the given path, which must not exist, or
// a new temporary folder's lift.duckdb.
func demoFile(path string) (string, error) {
	if path == "" {
		dir, err := os.MkdirTemp("", "lift-demo-")
		if err != nil {
			return "", fmt.Errorf("creating a temporary folder: %w", err)
		}
		return filepath.Join(dir, "lift.duckdb"), nil
	}
	if _, err := os.Stat(path); err == nil {
		return "", experiment.E("demo", experiment.Invalid, experiment.Field("--db"),
			experiment.Errorf("%s already exists; the demo needs a fresh file (give a new path, or none for a temporary one)", path))
	}
	return path, nil
}

// register creates the layer, the 5% holdout and the 50/50 experiment, and starts it.
// demoClock is the store's clock in the demo: while set, the time the
// registrations are dated (just before the simulated data, so that an
// experiment starts before its first exposure); otherwise the wall clock.
type demoClock struct{ at atomic.Pointer[time.Time] }

// Now is the clock's time.
func (c *demoClock) Now() time.Time {
	if t := c.at.Load(); t != nil {
		return *t
	}
	return time.Now()
}

func (c *demoClock) set(t time.Time) { c.at.Store(&t) }
func (c *demoClock) wall()           { c.at.Store(nil) }

func (d *demo) register(ctx context.Context) error {
	const actor = "demo"
	d.clock.set(d.start.Add(-time.Hour))
	defer d.clock.wall()
	var err error
	if d.layer, err = d.db.CreateLayer(ctx, actor, &experiment.Layer{Name: "site", Description: "every page of the shop"}); err != nil {
		return err
	}
	if d.holdout, err = d.db.CreateHoldout(ctx, actor, &experiment.Holdout{
		Name: "global", Description: "kept out of every experiment, to measure their long-run effect", Fraction: 0.05}); err != nil {
		return err
	}
	if err := d.registerMetrics(ctx); err != nil {
		return err
	}
	exp := &experiment.Experiment{
		Metrics:     []experiment.MetricRef{{Name: "revenue", Primary: true}, {Name: "converted"}},
		Key:         "checkout-button",
		Name:        "Green checkout button",
		Variants:    []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}},
		Layer:       d.layer.Name,
		LayerRange:  &experiment.Range{Start: 0, End: 1},
		Holdout:     d.holdout.Name,
		Description: "Does a green checkout button raise conversion?",
		Analysis:    experiment.AnalysisPlan{Engine: "bayesian"}, // GrowthBook's Bayesian view beside the frequentist results
	}
	if _, err = d.db.CreateExperiment(ctx, actor, exp); err != nil {
		return err
	}
	if d.exp, err = d.db.StartExperiment(ctx, actor, exp.Key); err != nil {
		return err
	}
	// Privacy budgets, so that viewer keys and share links (DP numbers only) see
	// the experiment's and the holdout's results: ε 10 in all, 1 per daily release.
	ledger := privacy.NewLedger(d.db.Ledger())
	for _, scope := range []string{privacy.ExperimentScope(exp.Key), privacy.HoldoutScope(d.holdout.Name)} {
		if err := ledger.SetBudget(ctx, scope, privacy.Budget{Epsilon: 10, Delta: 1e-5, ReleaseEpsilon: 1}, actor); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.out, "  layer       %s\n", d.layer.Name)
	fmt.Fprintf(d.out, "  privacy     %s and holdout %s: ε 10, δ 1e-5, ε 1 per daily release (what viewer keys see)\n", exp.Key, d.holdout.Name)
	fmt.Fprintf(d.out, "  holdout     %s: %g%% of all units, version %d (salt %q)\n", d.holdout.Name, 100*d.holdout.Fraction, d.holdout.Version, d.holdout.Salt)
	fmt.Fprintf(d.out, "  experiment  %s: control 50%% / treatment 50%%, all of layer %s, holdout %s, hash v%d (%s)\n",
		d.exp.Key, d.exp.Layer, d.exp.Holdout, d.exp.HashVersion, d.exp.Status)
	return nil
}

// expose simulates the units: each is assigned in process (as GET /v1/assign
// does) and its exposure is logged through the store's writer in batches, as the
// server logs them; units outside the experiment and its holdout are not logged.
func (d *demo) expose(ctx context.Context) error {
	const batch = 10_000
	plan, err := assign.Compile(d.exp, d.holdout)
	if err != nil {
		return err
	}
	began := time.Now()
	d.unitIDs = make([]string, d.units)
	xs := make([]experiment.Exposure, 0, batch)
	span := int64(14 * 24 * time.Hour)
	var a experiment.Assignment
	for i := range d.unitIDs {
		u := fmt.Sprintf("user-%016x", d.rng.Uint64())
		d.unitIDs[i] = u
		if err := plan.AssignTo(&a, u); err != nil {
			return err
		}
		ts := d.start.Add(time.Duration(d.rng.Int64N(span)))
		switch {
		case a.InExperiment:
			xs = append(xs, experiment.Exposure{Experiment: d.exp.Key, Unit: u, Variant: *a.Variant, TS: ts, Source: "assign"})
			d.exposed = append(d.exposed, xs[len(xs)-1])
		case a.Holdout != nil && a.Holdout.InHoldout:
			xs = append(xs, experiment.Exposure{Experiment: d.exp.Key, Unit: u, TS: ts, InHoldout: true, HoldoutVersion: a.Holdout.Version, Source: "assign"})
			d.heldOut = append(d.heldOut, xs[len(xs)-1])
		}
		if len(xs) == batch || i == len(d.unitIDs)-1 {
			if err := d.db.LogExposures(ctx, xs); err != nil {
				return err
			}
			xs = xs[:0]
		}
	}
	took := time.Since(began)
	if d.counts, err = d.db.ExposureCounts(ctx, d.exp.Key); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nSimulated %d units in %s (assignment and exposure logging through the store).\n", d.units, took.Round(time.Millisecond))
	fmt.Fprintf(d.out, "Exposures in the file:\n  %-12s %9s %8s\n", "arm", "units", "share")
	for _, name := range []string{"control", "treatment", ""} {
		label := name
		if name == "" {
			label = "holdout"
		}
		fmt.Fprintf(d.out, "  %-12s %9d %7.2f%%\n", label, d.counts[name], 100*float64(d.counts[name])/float64(d.units))
	}
	if out := int64(d.units) - d.counts["control"] - d.counts["treatment"] - d.counts[""]; out != 0 {
		fmt.Fprintf(d.out, "  %-12s %9d %7.2f%%\n", "not exposed", out, 100*float64(out)/float64(d.units))
	}
	return nil
}

// sampleRatio prints the sample-ratio-mismatch check of the arms against their
// configured weights (analysis.SRM: Pearson's chi-square, df = arms − 1).
func (d *demo) sampleRatio(context.Context) error {
	users := make([]float64, len(d.exp.Variants))
	weights := make([]float64, len(d.exp.Variants))
	for i, v := range d.exp.Variants {
		users[i] = float64(d.counts[v.Name])
		weights[i] = v.Weight
	}
	p := analysis.SRM(users, weights)
	verdict := "no mismatch"
	if p < analysis.DefaultSRMThreshold {
		verdict = "MISMATCH: the arms are not split as configured; do not trust results"
	}
	fmt.Fprintf(d.out, "\nSample-ratio check (chi-square of control/treatment against 50/50): p = %.4f, %s (threshold %g)\n",
		p, verdict, analysis.DefaultSRMThreshold)
	return nil
}
