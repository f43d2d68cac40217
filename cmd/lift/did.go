package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/liftlab/lift/analysis/did"
	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
)

const didDescription = `Difference-in-differences on a long-format panel file (CSV with a header, one
row per unit and period). By default it fits the regression

    outcome ~ treated + post + treated×post

on all rows with a non-missing outcome, with standard errors clustered by
--cluster (default: the --unit column; Stata's CR1 correction, t on G−1 degrees
of freedom), and prints the treated×post coefficient with the four cell means.

With --event-study (or --chart) it also fits a two-way fixed-effects event
study (unit and period effects absorbed): one coefficient per period relative
to each unit's treatment start (the first period where treated and post are
both 1), the period before the start (−1) as reference, and a joint F test
that the leads (−2, −3, …) are zero, with a warning when it rejects at 5%.

When the treated units start in different periods (staggered timing), it says
so in "warning" (the regression and the event study are biased then) and adds
the Callaway & Sant'Anna (2021) estimator under "staggered": the group-time
effects ATT(g,t) with not-yet-treated units as controls and the varying base
period, and their simple, dynamic (event-time) and group aggregations, as R's
did::att_gt and aggte with analytic standard errors (bstrap = FALSE); it needs
a balanced panel. --staggered asks for it when timing is not staggered (one
cohort) and makes its failure an error. treated marks the ever-treated units
and post the periods from each unit's own start.

treated and post take 0/1, true/false or yes/no. Missing outcomes (empty, NA,
NaN, ".") are dropped and counted; a missing value anywhere else is an error.
Periods are integers, or strings ordered as text (e.g. ISO dates).`

type didFlags struct {
	data, unit, time, outcome, treated, post, cluster, vce, format, chart string
	eventStudy, staggered                                                 bool
	alpha                                                                 float64
}

func runDiD(ctx context.Context, e *env, args []string) error {
	var f didFlags
	fs := e.flags("did", "--data FILE --unit COL --time COL --outcome COL --treated COL --post COL [flags]", didDescription)
	fs.StringVar(&f.data, "data", "", "CSV file, one row per unit and period (required)")
	fs.StringVar(&f.unit, "unit", "", "column identifying the unit (required)")
	fs.StringVar(&f.time, "time", "", "column with the period (required)")
	fs.StringVar(&f.outcome, "outcome", "", "column with the outcome (required)")
	fs.StringVar(&f.treated, "treated", "", "column flagging units in the treated group (required)")
	fs.StringVar(&f.post, "post", "", "column flagging periods after the treatment start (required)")
	fs.StringVar(&f.cluster, "cluster", "", "column to cluster standard errors by (default: --unit)")
	fs.StringVar(&f.vce, "vce", "cr1", "standard errors: cr1 (clustered), hc1 (robust) or classical")
	fs.BoolVar(&f.eventStudy, "event-study", false, "add event-study coefficients and the pre-trend test")
	fs.BoolVar(&f.staggered, "staggered", false, "add Callaway & Sant'Anna group-time effects (automatic when timing is staggered)")
	fs.StringVar(&f.chart, "chart", "", "write the event-study chart to FILE (.svg, .png or .pdf): Callaway & Sant'Anna's θ(e) when present, else the TWFE event study")
	fs.Float64Var(&f.alpha, "alpha", 0.05, "significance level; intervals have coverage 1-alpha")
	fs.StringVar(&f.format, "format", "json", "output format: json or text")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	out, err := didFile(ctx, f)
	if err != nil {
		return err
	}
	if f.chart != "" {
		ch := api.DiDEventChart(out.Report, f.outcome, f.outcome+" per unit-period", out.Staggered != nil)
		if err := writeChart(f.chart, ch); err != nil {
			return err
		}
	}
	if f.format == "text" {
		return writeDiDText(e.stdout, out)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// didOutput is what "lift did" prints: the pipeline's report (did.Run, the
// one POST /v1/analyses/did runs) and the rows dropped for a missing outcome.
type didOutput struct {
	*did.Report
	NMissing int `json:"n_missing_outcome"`
}

const didOp = "did"

func didFile(ctx context.Context, f didFlags) (*didOutput, error) {
	for _, req := range []struct{ flag, v string }{
		{"--data", f.data}, {"--unit", f.unit}, {"--time", f.time}, {"--outcome", f.outcome}, {"--treated", f.treated}, {"--post", f.post},
	} {
		if req.v == "" {
			return nil, experiment.E(didOp, experiment.Invalid, experiment.Field(req.flag), experiment.Errorf("is required"))
		}
	}
	if f.chart != "" {
		if _, err := chartFormat(f.chart); err != nil {
			return nil, err
		}
	}
	if f.format != "json" && f.format != "text" {
		return nil, experiment.E(didOp, experiment.Invalid, experiment.Field("--format"), experiment.Errorf("must be json or text, got %q", f.format))
	}
	if !(f.alpha > 0 && f.alpha < 1) {
		return nil, experiment.E(didOp, experiment.Invalid, experiment.Field("--alpha"), experiment.Errorf("must be in (0, 1), got %g", f.alpha))
	}
	var vce did.VCE
	switch f.vce {
	case "cr1":
		vce = did.CR1
	case "hc1":
		vce = did.HC1
	case "classical":
		vce = did.Classical
	default:
		return nil, experiment.E(didOp, experiment.Invalid, experiment.Field("--vce"), experiment.Errorf("must be cr1, hc1 or classical, got %q", f.vce))
	}
	t, err := readTableFile(ctx, didOp, f.data)
	if err != nil {
		return nil, err
	}
	if t.rows() == 0 {
		return nil, experiment.E(didOp, experiment.InsufficientData, experiment.Field("--data"), experiment.Errorf("%s has no data rows", f.data))
	}
	if f.cluster == "" {
		f.cluster = f.unit
	}
	unit, err := t.codes(didOp, "--unit", f.unit)
	if err != nil {
		return nil, err
	}
	period, err := t.ordinals(didOp, "--time", f.time)
	if err != nil {
		return nil, err
	}
	y, err := t.floats(didOp, "--outcome", f.outcome)
	if err != nil {
		return nil, err
	}
	treated, err := t.bools(didOp, "--treated", f.treated)
	if err != nil {
		return nil, err
	}
	post, err := t.bools(didOp, "--post", f.post)
	if err != nil {
		return nil, err
	}
	cluster, err := t.codes(didOp, "--cluster", f.cluster)
	if err != nil {
		return nil, err
	}
	// Keep the rows with an outcome.
	nMissing, keep := 0, 0
	for i := range y {
		if math.IsNaN(y[i]) {
			nMissing++
			continue
		}
		y[keep], unit[keep], period[keep], treated[keep], post[keep], cluster[keep] = y[i], unit[i], period[i], treated[i], post[i], cluster[i]
		keep++
	}
	y, unit, period, treated, post, cluster = y[:keep], unit[:keep], period[:keep], treated[:keep], post[:keep], cluster[:keep]
	rep, err := did.Run(did.Data{Y: y, Unit: unit, Time: period, Treated: treated, Post: post, Cluster: cluster},
		did.RunOptions{VCE: vce, Alpha: f.alpha, EventStudy: f.eventStudy || f.chart != "", Staggered: f.staggered})
	if err != nil {
		return nil, pipelineError(ctx, didOp, err)
	}
	return &didOutput{Report: rep, NMissing: nMissing}, nil
}

func writeDiDText(w io.Writer, o *didOutput) error {
	var b strings.Builder
	level := 100 * (1 - o.Alpha)
	fmt.Fprintf(&b, "Difference-in-differences: outcome ~ treated + post + treated×post\n")
	fmt.Fprintf(&b, "%d rows (%d with a missing outcome dropped), %d clusters, %s standard errors\n\n", o.NObs, o.NMissing, o.NClusters, strings.ToUpper(o.VCE))
	fmt.Fprintf(&b, "estimate %.4f   se %.4f   %g%% CI [%.4f, %.4f]   p %.4g   dof %g\n\n", o.Estimate, o.SE, level, o.CILow, o.CIHigh, o.PValue, o.DOF)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "cell\tmean\tn")
	for _, k := range []string{"treated_pre", "treated_post", "control_pre", "control_post"} {
		fmt.Fprintf(tw, "%s\t%.4f\t%d\n", k, o.Cells[k], o.CellN[k])
	}
	tw.Flush()
	if o.PreTrend != nil {
		fmt.Fprintf(&b, "\nEvent study (reference period -1, unit and period effects absorbed)\n")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "rel_time\testimate\tse\tci_low\tci_high\tp_value\t\n")
		for _, k := range o.Events {
			fmt.Fprintf(tw, "%d\t%.4f\t%.4f\t%.4f\t%.4f\t%.4g\t\n", k.RelTime, k.Estimate, k.SE, k.CILow, k.CIHigh, k.PValue)
		}
		tw.Flush()
		if o.PreTrend.Tested {
			fmt.Fprintf(&b, "pre-trend test: F(%d, %g) = %.4f, p = %.4g\n", o.PreTrend.Q, *o.PreTrend.DOF, *o.PreTrend.F, *o.PreTrend.PValue)
		} else {
			fmt.Fprintf(&b, "pre-trend test: not run (%s)\n", o.PreTrend.Note)
		}
		if o.PreTrend.Warning != "" {
			fmt.Fprintf(&b, "WARNING: %s\n", o.PreTrend.Warning)
		}
	}
	if o.Warning != "" {
		fmt.Fprintf(&b, "\nWARNING: %s\n", o.Warning)
	}
	if cs := o.Staggered; cs != nil {
		fmt.Fprintf(&b, "\nCallaway & Sant'Anna (%d units, %d treated in the first period dropped; controls %s, %s base period)\n", cs.NUnits, cs.Dropped, cs.Control, cs.BasePeriod)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "group\ttime\testimate\tse\tci_low\tci_high\tp_value\t\n")
		for _, a := range cs.ATT {
			fmt.Fprintf(tw, "%d\t%d\t%.4f\t%.4f\t%.4f\t%.4f\t%.4g\t\n", a.Group, a.Time, a.Estimate, a.SE, a.CILow, a.CIHigh, a.PValue)
		}
		tw.Flush()
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "\naggregation\testimate\tse\tci_low\tci_high\tp_value\t\n")
		row := func(name string, e did.Effect) {
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4g\t\n", name, e.Estimate, e.SE, e.CILow, e.CIHigh, e.PValue)
		}
		row("simple", cs.Simple)
		for _, d := range cs.Dynamic {
			row(fmt.Sprintf("dynamic e=%d", d.RelTime), d.Effect)
		}
		row("dynamic overall", cs.DynamicOverall)
		for _, g := range cs.Group {
			row(fmt.Sprintf("group g=%d", g.Group), g.Effect)
		}
		row("group overall", cs.GroupOverall)
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}
