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
	"github.com/liftlab/lift/experiment"
)

const didDescription = `Difference-in-differences on a long-format panel file (CSV with a header, one
row per unit and period). By default it fits the regression

    outcome ~ treated + post + treated×post

on all rows with a non-missing outcome, with standard errors clustered by
--cluster (default: the --unit column; Stata's CR1 correction, t on G−1 degrees
of freedom), and prints the treated×post coefficient with the four cell means.

With --event-study it also fits a two-way fixed-effects event study (unit and
period effects absorbed): one coefficient per period relative to each unit's
treatment start (the first period where treated and post are both 1), the
period before the start (−1) as reference, and a joint F test that the leads
(−2, −3, …) are zero, with a warning when it rejects at 5%.

treated and post take 0/1, true/false or yes/no. Missing outcomes (empty, NA,
NaN, ".") are dropped and counted; a missing value anywhere else is an error.
Periods are integers, or strings ordered as text (e.g. ISO dates).`

type didFlags struct {
	data, unit, time, outcome, treated, post, cluster, vce, format string
	eventStudy                                                     bool
	alpha                                                          float64
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
	fs.Float64Var(&f.alpha, "alpha", 0.05, "significance level; intervals have coverage 1-alpha")
	fs.StringVar(&f.format, "format", "json", "output format: json or text")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	out, err := didFile(ctx, f)
	if err != nil {
		return err
	}
	if f.format == "text" {
		return writeDiDText(e.stdout, out)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// didOutput is what "lift did" prints.
type didOutput struct {
	Estimate  float64            `json:"estimate"`
	SE        float64            `json:"se"`
	CILow     float64            `json:"ci_low"`
	CIHigh    float64            `json:"ci_high"`
	PValue    float64            `json:"p_value"`
	DOF       float64            `json:"dof"`
	NObs      int                `json:"n_obs"`
	NClusters int                `json:"n_clusters"`
	NMissing  int                `json:"n_missing_outcome"`
	VCE       string             `json:"vce"`
	Alpha     float64            `json:"alpha"`
	Cells     map[string]float64 `json:"cells"`
	CellN     map[string]int     `json:"cell_n"`
	Events    []didEvent         `json:"event_study,omitempty"`
	PreTrend  *didPreTrend       `json:"pretrend,omitempty"`
}

type didEvent struct {
	RelTime  int     `json:"rel_time"`
	Estimate float64 `json:"estimate"`
	SE       float64 `json:"se"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	PValue   float64 `json:"p_value"`
}

type didPreTrend struct {
	Tested  bool     `json:"tested"`
	F       *float64 `json:"f"`
	Q       int      `json:"q"`
	DOF     *float64 `json:"dof"`
	PValue  *float64 `json:"p_value"`
	Warning string   `json:"warning,omitempty"`
	Note    string   `json:"note,omitempty"`
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
	out := &didOutput{VCE: f.vce, Alpha: f.alpha}
	keep := 0
	for i := range y {
		if math.IsNaN(y[i]) {
			out.NMissing++
			continue
		}
		y[keep], unit[keep], period[keep], treated[keep], post[keep], cluster[keep] = y[i], unit[i], period[i], treated[i], post[i], cluster[i]
		keep++
	}
	y, unit, period, treated, post, cluster = y[:keep], unit[:keep], period[:keep], treated[:keep], post[:keep], cluster[:keep]

	r, err := did.Regress(y, treated, post, cluster, vce, f.alpha)
	if err != nil {
		return nil, experiment.E(didOp, experiment.InsufficientData, err)
	}
	c := r.Effect
	if err := didFinite("treated×post", c); err != nil {
		return nil, err
	}
	out.Estimate, out.SE, out.CILow, out.CIHigh, out.PValue, out.DOF = c.Estimate, c.SE, c.CILow, c.CIHigh, c.PValue, r.Fit.DF
	out.NObs, out.NClusters = r.Fit.N, r.Fit.G
	cells := []struct {
		k string
		c did.Cell
	}{{"treated_pre", r.Cells.TreatedPre}, {"treated_post", r.Cells.TreatedPost}, {"control_pre", r.Cells.ControlPre}, {"control_post", r.Cells.ControlPost}}
	out.Cells, out.CellN = map[string]float64{}, map[string]int{}
	for _, x := range cells {
		out.Cells[x.k], out.CellN[x.k] = x.c.Mean, x.c.N
	}
	if !f.eventStudy {
		return out, nil
	}
	inForce := make([]bool, len(y))
	for i := range y {
		inForce[i] = treated[i] && post[i]
	}
	cohort := did.Cohorts(unit, period, inForce)
	opt := did.EventStudyOptions{TWFEOptions: did.TWFEOptions{VCE: vce, Cluster: cluster, Alpha: f.alpha}}
	es, err := did.EventStudy(did.Panel{Unit: unit, Time: period, Y: y}, cohort, opt)
	if err != nil {
		return nil, experiment.E(didOp, experiment.InsufficientData, experiment.Errorf("event study: %w", err))
	}
	for _, k := range es.Coefs {
		if err := didFinite(fmt.Sprintf("event-study coefficient %d", k.RelTime), k.Coef); err != nil {
			return nil, err
		}
		out.Events = append(out.Events, didEvent{k.RelTime, k.Estimate, k.SE, k.CILow, k.CIHigh, k.PValue})
	}
	pt := &didPreTrend{Tested: es.PreTrend.Tested, Q: es.PreTrend.Q, Warning: es.PreTrend.Warning}
	if pt.Tested {
		pt.F, pt.DOF, pt.PValue = &es.PreTrend.F, &es.PreTrend.DF, &es.PreTrend.PValue
	} else {
		pt.Note = "no lead to test: no treated unit is observed two or more periods before its start"
	}
	out.PreTrend = pt
	return out, nil
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
	_, err := io.WriteString(w, b.String())
	return err
}

// didFinite rejects a coefficient whose standard error is zero or undefined,
// which happens when the outcome is fit exactly (e.g. a constant outcome).
func didFinite(what string, c did.Coef) error {
	for _, v := range []float64{c.Estimate, c.SE, c.CILow, c.CIHigh, c.PValue} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return experiment.E(didOp, experiment.InsufficientData, experiment.Errorf("%s: standard error is zero or undefined (estimate %g, se %g): the model fits the outcome exactly", what, c.Estimate, c.SE))
		}
	}
	if !(c.SE > 0) {
		return experiment.E(didOp, experiment.InsufficientData, experiment.Errorf("%s: standard error is zero (estimate %g): the model fits the outcome exactly", what, c.Estimate))
	}
	return nil
}
