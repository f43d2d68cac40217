package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
)

const quantilesDescription = `Compare quantiles (p50, p90, p99, ...) of a per-unit value between two arms.

One row per unit: its arm (--treatment) and value (--outcome). Rows of other
arms are left out. Each quantile is the sample quantile of Hyndman & Fan's
type 6 (R's type = 6, scipy's mquantiles(alphap=0, betap=0)); its standard
error is Maritz & Jarrett's (1978); the difference treated − control has the
normal large-sample interval with the arms' variances added, and the relative
difference its delta-method interval. With --cluster COL the rows are events
and COL their unit: each arm's standard error is then Woodruff's (1952), with
the events clustered by unit (R survey's svyquantile, interval.type "mean").
POST /v1/analyses/quantiles runs the same pipeline on an experiment in the store
("per_event": true for events).`

type quantilesFlags struct {
	data, treatment, outcome, control, treated, quantiles, format, cluster string
	alpha                                                                  float64
}

const quantilesOp = "quantiles"

func runQuantiles(ctx context.Context, e *env, args []string) error {
	var f quantilesFlags
	fs := e.flags("quantiles", "--data FILE --treatment COL --outcome COL [flags]", quantilesDescription)
	fs.StringVar(&f.data, "data", "", "CSV file, one row per unit (required)")
	fs.StringVar(&f.treatment, "treatment", "", "column naming each unit's arm (required)")
	fs.StringVar(&f.outcome, "outcome", "", "numeric value column (required)")
	fs.StringVar(&f.control, "control", "", `control arm value (default: "control", else "0" when the arms are 0 and 1)`)
	fs.StringVar(&f.treated, "treated", "", "treated arm value (default: the only other value)")
	fs.StringVar(&f.quantiles, "quantiles", "0.5,0.9,0.99", "comma-separated quantiles in (0, 1)")
	fs.Float64Var(&f.alpha, "alpha", 0.05, "significance level; intervals have coverage 1-alpha")
	fs.StringVar(&f.cluster, "cluster", "", "column of each row's unit: the rows are events, clustered by unit")
	fs.StringVar(&f.format, "format", "json", "output format: json or text")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	rep, err := quantilesFile(ctx, f)
	if err != nil {
		return err
	}
	if f.format == "text" {
		return writeQuantilesText(e.stdout, rep)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func quantilesInvalid(flag, format string, args ...any) error {
	return experiment.E(quantilesOp, experiment.Invalid, experiment.Field(flag), experiment.Errorf(format, args...))
}

func quantilesFile(ctx context.Context, f quantilesFlags) (*analysis.QuantileReport, error) {
	for _, req := range []struct{ flag, v string }{{"--data", f.data}, {"--treatment", f.treatment}, {"--outcome", f.outcome}} {
		if req.v == "" {
			return nil, quantilesInvalid(req.flag, "is required")
		}
	}
	if !(f.alpha > 0 && f.alpha < 1) {
		return nil, quantilesInvalid("--alpha", "must be in (0, 1), got %g", f.alpha)
	}
	if f.format != "json" && f.format != "text" {
		return nil, quantilesInvalid("--format", "must be json or text, got %q", f.format)
	}
	var ps []float64
	for _, s := range strings.Split(f.quantiles, ",") {
		p, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, quantilesInvalid("--quantiles", "%q is not a number", s)
		}
		ps = append(ps, p)
	}
	t, err := readTableFile(ctx, quantilesOp, f.data)
	if err != nil {
		return nil, err
	}
	armCol, err := t.strings(quantilesOp, "--treatment", f.treatment)
	if err != nil {
		return nil, err
	}
	control, treated, err := upliftArms(armCol, f.control, f.treated)
	if err != nil {
		return nil, err
	}
	y, err := t.floats(quantilesOp, "--outcome", f.outcome)
	if err != nil {
		return nil, err
	}
	var unitCol []string
	if f.cluster != "" {
		if unitCol, err = t.strings(quantilesOp, "--cluster", f.cluster); err != nil {
			return nil, err
		}
	}
	var arms, clusters []string
	var values []float64
	for i, a := range armCol {
		if a != control && a != treated {
			continue
		}
		if math.IsNaN(y[i]) {
			return nil, quantilesInvalid("--outcome", "%s line %d, column %q: missing value", f.data, t.line(i), f.outcome)
		}
		arms, values = append(arms, a), append(values, y[i])
		if unitCol != nil {
			if missing(unitCol[i]) {
				return nil, quantilesInvalid("--cluster", "%s line %d, column %q: missing value", f.data, t.line(i), f.cluster)
			}
			clusters = append(clusters, unitCol[i])
		}
	}
	if unitCol != nil && clusters == nil {
		clusters = []string{}
	}
	rep, err := analysis.QuantileRun(ctx, arms, values, analysis.QuantileOptions{Metric: f.outcome, Control: control, Treatment: treated, Quantiles: ps, Alpha: f.alpha,
		Clusters: clusters})
	if err != nil {
		var e *experiment.Error
		if experiment.KindOf(err) == experiment.Invalid && errors.As(err, &e) {
			msg := strings.TrimPrefix(e.Message(), e.Field+": ")
			switch {
			case e.Field == "alpha":
				return nil, quantilesInvalid("--alpha", "%s", msg)
			case strings.HasPrefix(e.Field, "quantiles["):
				return nil, quantilesInvalid("--quantiles", "%s: %s", e.Field, msg)
			}
		}
		return nil, pipelineError(ctx, quantilesOp, err)
	}
	return rep, nil
}

func writeQuantilesText(w io.Writer, r *analysis.QuantileReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Quantiles of %s: %q vs %q (%s)\n\n", r.Metric, r.Treatment, r.Control, r.Method)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "quantile\tcontrol\ttreated\tdifference\tCI\tp\trelative\t\n")
	for _, q := range r.Quantiles {
		a := q.Absolute
		fmt.Fprintf(tw, "p%g\t%.4g\t%.4g\t%.4g\t[%.4g, %.4g]\t%.4g\t%+.2f%%\t%s\n", 100*q.Quantile, q.Control.Estimate, q.Treated.Estimate, a.Estimate, a.CILow, a.CIHigh, a.PValue, 100*q.Relative.Estimate, strings.Join(q.Flags, " "))
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
