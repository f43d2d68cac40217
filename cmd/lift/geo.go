package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/liftlab/lift/analysis/synth"
	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
)

const geoDescription = `Synthetic control for a geo experiment (or any intervention on a few units of
a panel), from a long-format CSV file with a header: one row per unit and
period, every unit observed in every period (a balanced panel).

The units named by --treated (comma-separated) are the test markets; every
other unit is a donor. Periods before --start are the pre-period, from --start
on the post-period (--start is compared with the --time values as numbers when
they all are, else as text, so ISO dates work). With several test markets the
synthetic control is fitted to their average (GeoLift's aggregation), and with
--per-market (the default) also to each market alone.

--method scm is Abadie, Diamond & Hainmueller's (2010) synthetic control:
non-negative donor weights summing to one that minimize the pre-period squared
error, solved exactly. --method augmented adds Ben-Michael, Feller &
Rothstein's (2021) ridge correction, with the penalty chosen by
leave-one-period-out cross-validation (augsynth's rule) unless --lambda is
given. --intercept removes each unit's pre-period mean first.

It prints the weights, the effect path (treated − synthetic in each period),
the average post-period effect, the lift (Σ effect / Σ synthetic), and:
conformal inference (Chernozhukov, Wüthrich & Zhu 2021: a p-value and an
interval for the average effect and for each post period); the in-space
placebo test (every donor in turn as if treated, ranked by post/pre RMSPE
ratio: its p-value and interval); and diagnostics (pre-period RMSPE, the share
of pre-period variance explained, the periods where the treated series is
outside the donors' range, hence their convex hull, with a warning).

With --plot DIR it also writes the charts of the (average) fit into DIR, in
each of --plot-formats: synthetic (treated vs synthetic, the first treated
period marked), effect (the effect path with its conformal band), placebo
(every donor's placebo gap in grey, the treated's in colour) and weights; and
geo.html, a page with the summary, the weights, the path and the charts.

"lift geo power" plans a geo experiment instead: see "lift geo power --help".`

type geoFlags struct {
	data, unit, time, outcome, treated, start, method, format string
	plot, plotFormats                                         string
	intercept, noPlacebo, noConformal, perMarket              bool
	lambda, alpha                                             float64
}

func runGeo(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "power" {
		return runGeoPower(ctx, e, args[1:])
	}
	var f geoFlags
	fs := e.flags("geo", "--data FILE --unit COL --time COL --outcome COL --treated UNITS --start PERIOD [flags]", geoDescription)
	fs.StringVar(&f.data, "data", "", "CSV file, one row per unit and period (required)")
	fs.StringVar(&f.unit, "unit", "", "column identifying the unit (market) (required)")
	fs.StringVar(&f.time, "time", "", "column with the period (required)")
	fs.StringVar(&f.outcome, "outcome", "", "column with the outcome (required)")
	fs.StringVar(&f.treated, "treated", "", "comma-separated test markets, values of --unit (required)")
	fs.StringVar(&f.start, "start", "", "first treated period, a value of --time (required)")
	fs.StringVar(&f.method, "method", "scm", "scm (synthetic control) or augmented (ridge-augmented)")
	fs.BoolVar(&f.intercept, "intercept", false, "remove each unit's pre-period mean before weighting")
	fs.Float64Var(&f.lambda, "lambda", 0, "ridge penalty of --method augmented (0: cross-validated)")
	fs.BoolVar(&f.noPlacebo, "no-placebo", false, "skip the in-space placebo test")
	fs.BoolVar(&f.noConformal, "no-conformal", false, "skip the conformal inference")
	fs.BoolVar(&f.perMarket, "per-market", true, "with several test markets, also fit each one")
	fs.Float64Var(&f.alpha, "alpha", 0.05, "significance level; intervals have coverage 1-alpha")
	fs.StringVar(&f.format, "format", "json", "output format: json or text")
	fs.StringVar(&f.plot, "plot", "", "write the charts into DIR: synthetic, effect, placebo (unless --no-placebo) and weights, and the page geo.html")
	fs.StringVar(&f.plotFormats, "plot-formats", "png,svg", "formats of the --plot charts: comma-separated png, svg, pdf")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	formats, err := geoPlotFormats(f)
	if err != nil {
		return err
	}
	out, err := geoFile(ctx, f)
	if err != nil {
		return err
	}
	if f.plot != "" {
		if err := writeGeoPlots(f, out, formats); err != nil {
			return err
		}
	}
	if f.format == "text" {
		return writeGeoText(e.stdout, out)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// geoOutput is what "lift geo" prints: the pipeline's report and the panel's
// size.
type geoOutput struct {
	*synth.Report
	NUnits   int `json:"n_units"`
	NPeriods int `json:"n_periods"`
}

const geoOp = "geo"

func geoFile(ctx context.Context, f geoFlags) (*geoOutput, error) {
	for _, req := range []struct{ flag, v string }{
		{"--data", f.data}, {"--unit", f.unit}, {"--time", f.time}, {"--outcome", f.outcome}, {"--treated", f.treated}, {"--start", f.start},
	} {
		if strings.TrimSpace(req.v) == "" {
			return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field(req.flag), experiment.Errorf("is required"))
		}
	}
	if f.format != "json" && f.format != "text" {
		return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--format"), experiment.Errorf("must be json or text, got %q", f.format))
	}
	if !(f.alpha > 0 && f.alpha < 1) {
		return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--alpha"), experiment.Errorf("must be in (0, 1), got %g", f.alpha))
	}
	method := synth.Method(f.method)
	if method != synth.SCM && method != synth.Augmented {
		return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--method"), experiment.Errorf("must be scm or augmented, got %q", f.method))
	}
	if !(f.lambda >= 0) || math.IsInf(f.lambda, 0) {
		return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--lambda"), experiment.Errorf("must be a finite number ≥ 0, got %g", f.lambda))
	}
	t, err := readTableFile(ctx, geoOp, f.data)
	if err != nil {
		return nil, err
	}
	if t.rows() == 0 {
		return nil, experiment.E(geoOp, experiment.InsufficientData, experiment.Field("--data"), experiment.Errorf("%s has no data rows", f.data))
	}
	units, err := t.strings(geoOp, "--unit", f.unit)
	if err != nil {
		return nil, err
	}
	times, err := t.strings(geoOp, "--time", f.time)
	if err != nil {
		return nil, err
	}
	y, err := t.floats(geoOp, "--outcome", f.outcome)
	if err != nil {
		return nil, err
	}
	p, err := geoPanel(t, units, times, y)
	if err != nil {
		return nil, err
	}
	o := synth.Options{Method: method, Intercept: f.intercept, Lambda: f.lambda, Alpha: f.alpha,
		Conformal: !f.noConformal, Placebo: !f.noPlacebo, PerMarket: f.perMarket}
	if o.Treated, _, err = synth.UnitIndexes(p, strings.Split(f.treated, ",")); err != nil {
		return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--treated"), experiment.Errorf("%v (column %q)", err, f.unit))
	}
	if o.Start, err = synth.StartIndex(p.Periods, f.start); err != nil {
		return nil, experiment.E(geoOp, experiment.InsufficientData, experiment.Field("--start"), err)
	}
	rep, err := synth.Run(p, o)
	if err != nil {
		if errors.Is(err, synth.ErrInsufficient) {
			return nil, experiment.E(geoOp, experiment.InsufficientData, experiment.Field("--data"), err)
		}
		return nil, pipelineError(ctx, geoOp, err)
	}
	return &geoOutput{Report: rep, NUnits: len(p.Units), NPeriods: len(p.Periods)}, nil
}

// geoPlotFormats checks --plot and --plot-formats before the fit.
func geoPlotFormats(f geoFlags) ([]reports.Format, error) {
	if f.plot == "" {
		return nil, nil
	}
	var out []reports.Format
	for _, s := range strings.Split(f.plotFormats, ",") {
		ft, err := reports.ParseFormat(strings.TrimSpace(s))
		if err != nil {
			return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--plot-formats"), experiment.Errorf("must list png, svg or pdf, got %q", s))
		}
		out = append(out, ft)
	}
	if st, err := os.Stat(f.plot); err != nil || !st.IsDir() {
		return nil, experiment.E(geoOp, experiment.Invalid, experiment.Field("--plot"), experiment.Errorf("%q is not a directory", f.plot))
	}
	return out, nil
}

// writeGeoPlots writes the charts of the average fit into the --plot
// directory, NAME.FORMAT each (the placebo chart only with the placebo test),
// and geo.html, the page POST /v1/analyses/geo?format=html answers.
func writeGeoPlots(f geoFlags, o *geoOutput, formats []reports.Format) error {
	g, err := api.GeoPage(o.Report, f.outcome, o.NUnits, o.NPeriods)
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, ch := range g.Charts {
		for _, ft := range formats {
			b, err := reports.Bytes(ch, ft, reports.RenderOptions{})
			if err != nil {
				return err
			}
			files[ch.Name()+"."+string(ft)] = b
		}
	}
	var page bytes.Buffer
	if err := g.HTML(&page, reports.RenderOptions{}); err != nil {
		return err
	}
	files["geo.html"] = page.Bytes()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(f.plot, name), b, 0o644); err != nil {
			return experiment.E(geoOp, experiment.Invalid, experiment.Field("--plot"), err)
		}
	}
	return nil
}

// geoPanel builds the wide panel (synth.FromLong, as POST
// /v1/analyses/geo does), naming the file's line of a bad row.
func geoPanel(t *table, units, times []string, y []float64) (synth.Panel, error) {
	p, err := synth.FromLong(units, times, y)
	var re *synth.RowError
	switch {
	case errors.As(err, &re) && strings.HasPrefix(re.Msg, "missing"):
		return p, experiment.E(geoOp, experiment.Invalid, experiment.Field("--outcome"), experiment.Errorf("%s line %d: %s", t.name, t.line(re.Row), re.Msg))
	case errors.As(err, &re):
		return p, experiment.E(geoOp, experiment.Invalid, experiment.Field("--data"), experiment.Errorf("%s line %d: %s", t.name, t.line(re.Row), re.Msg))
	case err != nil:
		return p, experiment.E(geoOp, experiment.Invalid, experiment.Field("--data"), err)
	}
	return p, nil
}

func fmtInterval(iv *synth.Interval) string {
	if iv == nil {
		return ""
	}
	if iv.Empty {
		return "empty"
	}
	side := func(v *float64, inf string) string {
		if v == nil {
			return inf
		}
		return fmt.Sprintf("%.4f", *v)
	}
	return "[" + side(iv.Low, "-inf") + ", " + side(iv.High, "+inf") + "]"
}

func writeGeoText(w io.Writer, o *geoOutput) error {
	var b strings.Builder
	level := 100 * (1 - o.Alpha)
	fmt.Fprintf(&b, "Synthetic control (%s%s): %d units × %d periods, %d donors; pre-period %d periods, post-period %d from %s\n",
		o.Method, map[bool]string{true: ", intercept", false: ""}[o.Intercept], o.NUnits, o.NPeriods, o.Donors, o.NPre, o.NPost, o.Start)
	ests := append([]synth.Estimate{o.Average}, o.Markets...)
	for i, e := range ests {
		if i == 1 {
			fmt.Fprintf(&b, "\n--- per market ---\n")
		}
		fmt.Fprintf(&b, "\n%s\n", e.Unit)
		fmt.Fprintf(&b, "effect %.4f per period (cumulative %.4f, lift %.2f%%)\n", e.Effect, e.Cumulative, 100*e.Lift)
		if c := e.Conformal; c != nil {
			fmt.Fprintf(&b, "conformal: p %.4g, %g%% interval %s (%d permutations)\n", c.PValue, level, fmtInterval(&c.Interval), c.Permutations)
		}
		if pl := e.Placebo; pl != nil {
			fmt.Fprintf(&b, "placebo: post/pre RMSPE ratio %.4f, rank %d of %d, p %.4g, %g%% interval %s\n", pl.Ratio, pl.Rank, pl.N+1, pl.PValue, level, fmtInterval(&pl.Interval))
		}
		fmt.Fprintf(&b, "pre-period RMSPE %.4f, R² %.4f, post RMSPE %.4f, outside the donors' range in %d pre-periods\n", e.PreRMSPE, e.R2, e.PostRMSPE, e.HullPeriods)
		if e.Lambda != 0 {
			fmt.Fprintf(&b, "ridge λ %.6g\n", e.Lambda)
		}
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "donor\tweight\t\n")
		for _, wt := range e.Weights {
			fmt.Fprintf(tw, "%s\t%.4f\t\n", wt.Unit, wt.Weight)
		}
		tw.Flush()
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "period\ttreated\tsynthetic\teffect\tp_value\tinterval\t\n")
		for _, pt := range e.Path[o.NPre:] {
			pv := ""
			if pt.PValue != nil {
				pv = fmt.Sprintf("%.4g", *pt.PValue)
			}
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%s\t%s\t\n", pt.Period, pt.Treated, pt.Synthetic, pt.Effect, pv, fmtInterval(pt.Interval))
		}
		tw.Flush()
		for _, wn := range e.Warnings {
			fmt.Fprintf(&b, "WARNING: %s\n", wn)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
