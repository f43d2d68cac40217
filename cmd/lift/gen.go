package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

const genDescription = `
Generate deterministic synthetic exposures and outcome events with a known
effect, for benchmarks and demos. The same flags always give the same rows.

Model: N units, half in "control" and half in "treatment" (by hash), first
exposed at a uniform time over --days days, each with a spending level drawn
from an exponential distribution (mean 20). Each of the M events belongs to a
uniform unit and falls uniformly from --pre-days before to --post-days after
that unit's exposure; it is a "purchase" with probability --purchase-share
(value: the unit's level times U(0.5, 1.5)) or else a "visit" (value 0).
Treatment purchases after exposure are worth (1 + --effect) times more, so the
true relative effect on revenue is --effect and on orders and conversion 0.

With --db, it registers the metrics revenue (sum), orders (count) and converted
(binary) of purchases within --post-days of exposure, each with a CUPED
covariate over the --pre-days before, and a running experiment --experiment
using them, and stores the rows: GET /v1/experiments/KEY/results then shows the
effect. With --out DIR, it writes DIR/exposures.FORMAT and DIR/events.FORMAT
instead (events in the layout "lift ingest" reads).`

func runGen(ctx context.Context, e *env, args []string) error {
	fs := e.flags("gen", "(--db PATH | --out DIR) [--units N] [--events M] [--experiment KEY] [flags]", genDescription)
	d := store.DefaultSynthOptions()
	dbPath := fs.String("db", "", "DuckDB `file` to store the experiment and rows in")
	out := fs.String("out", "", "`folder` to write exposures and events files to, instead of --db")
	format := fs.String("format", "csv", "file format with --out: csv or parquet")
	var o store.SynthOptions
	fs.StringVar(&o.Experiment, "experiment", d.Experiment, "experiment `key`")
	fs.Int64Var(&o.Units, "units", d.Units, "number of exposed units")
	fs.Int64Var(&o.Events, "events", d.Events, "number of events")
	fs.Float64Var(&o.Effect, "effect", d.Effect, "true relative effect on treatment's post-exposure purchase values (0: none)")
	fs.Uint64Var(&o.Seed, "seed", d.Seed, "seed of the generator")
	start := fs.String("start", d.Start.Format("2006-01-02"), "first day of the exposure period (YYYY-MM-DD, UTC)")
	fs.IntVar(&o.Days, "days", d.Days, "length of the exposure period in days")
	fs.Float64Var(&o.PreDays, "pre-days", d.PreDays, "events start this many days before a unit's exposure (the CUPED period)")
	fs.Float64Var(&o.PostDays, "post-days", d.PostDays, "events end this many days after a unit's exposure (the metric window)")
	fs.Float64Var(&o.PurchaseShare, "purchase-share", d.PurchaseShare, "share of events that are purchases")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	const op = "gen"
	if (*dbPath == "") == (*out == "") {
		fmt.Fprintln(e.stderr, "lift gen: give exactly one of --db and --out")
		fs.Usage()
		return errUsage
	}
	t, err := time.Parse("2006-01-02", *start)
	if err != nil {
		return experiment.E(op, experiment.Invalid, experiment.Field("start"), experiment.Errorf("want YYYY-MM-DD, got %q", *start))
	}
	o.Start = t
	switch {
	case o.Units < 2:
		return experiment.E(op, experiment.Invalid, experiment.Field("units"), experiment.Errorf("must be at least 2, got %d", o.Units))
	case o.Events < 1:
		return experiment.E(op, experiment.Invalid, experiment.Field("events"), experiment.Errorf("must be positive, got %d", o.Events))
	case o.Effect == 0:
		o.Effect = -1 // store: negative means no effect (0 means the default)
	case o.Effect < 0:
		return experiment.E(op, experiment.Invalid, experiment.Field("effect"), experiment.Errorf("must not be negative, got %g", o.Effect))
	}
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	begin := time.Now()
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		mem, err := store.Open(ctx, "", sopt)
		if err != nil {
			return err
		}
		defer mem.Close()
		xp, ev, err := mem.WriteSynthetic(ctx, o, *out, store.FileFormat(strings.ToLower(*format)))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s (%d units) and %s (%d events) in %s\n", xp, o.Units, ev, o.Events, time.Since(begin).Round(time.Millisecond))
		return nil
	}
	db, err := store.Open(ctx, *dbPath, sopt)
	if err != nil {
		return err
	}
	x, err := db.GenerateSynthetic(ctx, "lift gen", o)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "experiment %s: %d units, %d events stored in %s (%s)\n", x.Key, o.Units, o.Events, *dbPath, time.Since(begin).Round(time.Millisecond))
	return nil
}
