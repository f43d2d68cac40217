package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
	"gonum.org/v1/gonum/mat"
)

const analyzeDescription = `Analyze an A/B test from a CSV or Parquet file with one row per unit: a column
naming each unit's variant and a metric column (plus, optionally, a pre-period
covariate for CUPED or a denominator for a ratio metric). The file is read by
DuckDB, which computes per-variant sums in one GROUP BY; the statistics run on
those sums.

With --covariates a,b,c it also estimates each comparison by Lin's (2013)
regression adjustment: OLS of the metric on the treatment indicator, the
covariates centered at the two arms' mean and their interactions with the
treatment, with HC2 standard errors and t on n − 2 − 2k degrees of freedom
(under "lin"). This estimator needs the rows, which are then read into memory.

Every variant is compared with the control: absolute and relative effects with
Welch t intervals and p-values (or always-valid sequential intervals), a
sample-ratio-mismatch check against the weights, and with --covariate the
CUPED-adjusted effects. The metric type is "proportion" when every value is 0
or 1, "ratio" with --denominator, and "mean" otherwise.

"lift analyze health --db PATH --experiment KEY" (or --holdout NAME) runs the
health checks of a stored experiment or holdout instead: see
"lift analyze health --help".`

// analyzeFlags are the parsed flags of "lift analyze".
type analyzeFlags struct {
	data, variant, metric, covariate, denominator, covariates string
	control, typ, weights, format, alternative, engine        string
	alpha, tuning, srmThreshold, priorMean, priorStddev       float64
	sequential, priorProper, lowerIsBetter                    bool
}

func runAnalyze(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "health" {
		return runAnalyzeHealth(ctx, e, args[1:])
	}
	var f analyzeFlags
	fs := e.flags("analyze", "--data FILE --variant COL --metric COL [flags]", analyzeDescription)
	fs.StringVar(&f.data, "data", "", "CSV (.csv, .tsv, .csv.gz) or Parquet file, one row per unit (required)")
	fs.StringVar(&f.variant, "variant", "", "column with each unit's variant name (required)")
	fs.StringVar(&f.metric, "metric", "", "column with the metric value (required)")
	fs.StringVar(&f.covariate, "covariate", "", "column with a pre-exposure covariate: CUPED-adjusted comparisons")
	fs.StringVar(&f.covariates, "covariates", "", "comma-separated pre-exposure covariates: adds Lin's (2013) regression adjustment with HC2 errors (reads the rows)")
	fs.StringVar(&f.denominator, "denominator", "", "column with the denominator of a ratio metric (Σmetric/Σdenominator)")
	fs.StringVar(&f.control, "control", "", `control variant (default: the variant named "control", else the first by name)`)
	fs.StringVar(&f.typ, "type", "", "metric type: mean or proportion (default: proportion when every value is 0 or 1)")
	fs.StringVar(&f.weights, "weights", "", "configured traffic weights for the SRM check, e.g. a=0.5,b=0.5 (default: equal)")
	fs.Float64Var(&f.alpha, "alpha", analysis.DefaultAlpha, "significance level; intervals have coverage 1-alpha")
	fs.BoolVar(&f.sequential, "sequential", false, "always-valid sequential intervals (may be read at any time)")
	fs.Float64Var(&f.tuning, "tuning", analysis.DefaultSequentialTuning, "sequential tuning parameter N*: the total sample size where intervals are tightest")
	fs.StringVar(&f.alternative, "alternative", "two-sided", "alternative hypothesis: two-sided, greater or less")
	fs.Float64Var(&f.srmThreshold, "srm-threshold", analysis.DefaultSRMThreshold, "SRM p-value below which a mismatch is flagged")
	fs.StringVar(&f.engine, "engine", "frequentist", "frequentist, or bayesian: adds GrowthBook's Bayesian view (chance to win, risk, credible intervals) to each comparison")
	fs.Float64Var(&f.priorMean, "prior-mean", 0, "with --engine bayesian: prior mean of the relative effect")
	fs.Float64Var(&f.priorStddev, "prior-stddev", analysis.DefaultPriorStddev, "with --engine bayesian: prior standard deviation of the relative effect")
	fs.BoolVar(&f.priorProper, "prior-proper", false, "with --engine bayesian: use the prior (default: flat, GrowthBook's default)")
	fs.BoolVar(&f.lowerIsBetter, "lower-is-better", false, "with --engine bayesian: the metric should go down (chance to win is P(effect < 0), risks swapped)")
	fs.StringVar(&f.format, "format", "json", "output format: json or text")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	res, arms, err := analyzeFile(ctx, f)
	if err != nil {
		return err
	}
	if f.covariates != "" || f.covariate != "" {
		out := analyzeOutput{MetricResult: res}
		if f.covariate != "" {
			// The CUPED covariate's balance: a check of the randomization.
			if out.Imbalance, err = analysis.PreExposureImbalance(arms, f.alpha); err != nil {
				out.ImbalanceError = err.Error()
			}
		}
		if f.covariates != "" {
			if out.Lin, err = linComparisons(ctx, f, res); err != nil {
				return err
			}
		}
		if f.format == "text" {
			if err := writeAnalysisText(e.stdout, res); err != nil {
				return err
			}
			if f.covariate != "" {
				writeImbalanceText(e.stdout, f.covariate, out.Imbalance, out.ImbalanceError)
			}
			if out.Lin == nil {
				return nil
			}
			return writeLinText(e.stdout, out.Lin)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if f.format == "text" {
		return writeAnalysisText(e.stdout, res)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func usageError(field, format string, args ...any) error {
	return experiment.E("analyze", experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
}

// analyzeFile checks the flags, reads the sums and runs the analysis; it
// returns the arms' sums too.
func analyzeFile(ctx context.Context, f analyzeFlags) (analysis.MetricResult, []analysis.Arm, error) {
	res, in, err := analyzeFileInput(ctx, f)
	return res, in.Arms, err
}

func analyzeFileInput(ctx context.Context, f analyzeFlags) (analysis.MetricResult, analysis.Input, error) {
	var none analysis.MetricResult
	var in analysis.Input
	for _, req := range []struct{ name, v string }{{"--data", f.data}, {"--variant", f.variant}, {"--metric", f.metric}} {
		if req.v == "" {
			return none, in, usageError(req.name, "is required")
		}
	}
	if f.format != "json" && f.format != "text" {
		return none, in, usageError("--format", `must be "json" or "text", got %q`, f.format)
	}
	switch f.typ {
	case "", "mean", "proportion", "ratio":
	default:
		return none, in, usageError("--type", `must be "mean" or "proportion", got %q`, f.typ)
	}
	if f.denominator != "" && f.typ != "" && f.typ != "ratio" {
		return none, in, usageError("--type", "a metric with --denominator is a ratio metric; leave --type out")
	}
	if f.denominator == "" && f.typ == "ratio" {
		return none, in, usageError("--type", "a ratio metric needs --denominator")
	}
	if f.denominator != "" && f.covariate != "" {
		return none, in, usageError("--covariate", "CUPED for a ratio metric needs the denominator's pre-period too; use --covariate without --denominator")
	}
	if f.covariates != "" && f.denominator != "" {
		return none, in, usageError("--covariates", "Lin's regression adjustment is for a per-unit metric; leave --denominator out")
	}
	if f.covariates != "" && f.alternative != "" && f.alternative != string(analysis.TwoSided) {
		return none, in, usageError("--covariates", "Lin's regression adjustment is two-sided; leave --alternative out")
	}
	if _, err := covariateList(f.covariates); err != nil {
		return none, in, err
	}
	if !(f.alpha > 0 && f.alpha < 1) {
		return none, in, usageError("--alpha", "must be in (0, 1), got %g", f.alpha)
	}
	if f.sequential && !(f.tuning > 0) {
		return none, in, usageError("--tuning", "must be positive, got %g", f.tuning)
	}
	weights, err := parseWeights(f.weights)
	if err != nil {
		return none, in, err
	}
	sums, err := store.ReadFileStats(ctx, store.FileStatsQuery{Path: f.data, Variant: f.variant, Metric: f.metric, Covariate: f.covariate, Denominator: f.denominator})
	if err != nil {
		return none, in, err
	}
	names := make([]string, len(sums.Arms))
	for i, a := range sums.Arms {
		names[i] = a.Name
	}
	if len(sums.Arms) < 2 {
		return none, in, experiment.E("analyze", experiment.InsufficientData, experiment.Field(f.variant),
			experiment.Errorf("column %q has a single variant %q; need a control and at least one treatment", f.variant, names[0]))
	}
	in = analysis.Input{
		Metric: f.metric, Alpha: f.alpha, Alternative: analysis.Alternative(f.alternative),
		Covariate: f.covariate, SRMThreshold: f.srmThreshold,
	}
	switch {
	case f.denominator != "":
		in.Type = analysis.Ratio
	case f.typ == "proportion" && !sums.MetricBinary:
		return none, in, usageError(f.metric, "--type proportion needs every value of column %q to be 0 or 1", f.metric)
	case f.typ == "mean" || (f.typ == "" && !sums.MetricBinary):
		in.Type = analysis.Mean
	default:
		in.Type = analysis.Proportion
	}
	in.CovariateType = analysis.Mean
	if in.Type == analysis.Proportion && sums.CovariateBinary {
		in.CovariateType = analysis.Proportion
	}
	if f.sequential {
		in.SequentialTuning = f.tuning
	}
	switch f.engine {
	case "frequentist":
	case "bayesian":
		if !(f.priorStddev > 0) || math.IsInf(f.priorStddev, 0) {
			return none, in, usageError("--prior-stddev", "must be positive and finite, got %g", f.priorStddev)
		}
		in.Bayesian = analysis.PriorOf(f.priorMean, f.priorStddev, f.priorProper)
		in.LowerIsBetter = f.lowerIsBetter
	default:
		return none, in, usageError("--engine", "must be frequentist or bayesian, got %q", f.engine)
	}
	in.Control = f.control
	if in.Control == "" {
		in.Control = names[0]
		for _, n := range names {
			if strings.EqualFold(n, "control") {
				in.Control = n
				break
			}
		}
	} else if !contains(names, in.Control) {
		return none, in, usageError("--control", "no variant %q in column %q (variants: %s)", in.Control, f.variant, strings.Join(names, ", "))
	}
	for name := range weights {
		if !contains(names, name) {
			return none, in, usageError("--weights", "no variant %q in column %q (variants: %s)", name, f.variant, strings.Join(names, ", "))
		}
	}
	for _, a := range sums.Arms {
		in.Arms = append(in.Arms, fileArm(a, weights[a.Name]))
	}
	res, err := analysis.Analyze(in)
	if err != nil {
		return none, in, err
	}
	return res, in, nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// parseWeights parses "a=0.5,b=0.5"; variants left out get weight 0 (skipped by
// the SRM check). An empty string means equal weights.
func parseWeights(s string) (map[string]float64, error) {
	w := map[string]float64{}
	if strings.TrimSpace(s) == "" {
		return w, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" {
			return nil, usageError("--weights", "want NAME=WEIGHT pairs separated by commas, got %q", part)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || !(v >= 0) || math.IsInf(v, 0) {
			return nil, usageError("--weights", "weight of %q must be a number ≥ 0, got %q", name, val)
		}
		if _, dup := w[name]; dup {
			return nil, usageError("--weights", "variant %q given twice", name)
		}
		w[name] = v
	}
	return w, nil
}

// writeAnalysisText prints a result as readable tables.
func writeAnalysisText(out io.Writer, r analysis.MetricResult) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	seq := "fixed horizon"
	if r.Sequential {
		seq = fmt.Sprintf("sequential (N* = %g)", r.Tuning)
	}
	fmt.Fprintf(w, "metric %s (%s), control %s, alpha %g, %s, %s\n", r.Metric, r.Type, r.Control, r.Alpha, r.Alternative, seq)
	srm := "ok"
	if r.SRM.Mismatch {
		srm = "MISMATCH: the traffic split differs from the weights; do not trust the effects"
	}
	fmt.Fprintf(w, "sample ratio: p = %.4g (%s)\n", r.SRM.PValue, srm)
	if r.CUPED != nil {
		fmt.Fprintf(w, "CUPED on %s: theta = %.4g, variance reduction %.1f%%\n", r.CUPED.Covariate, r.CUPED.Theta, 100*r.CUPED.VarianceReduction)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "variant\tn\tmean\tvariance\tweight\t")
	for _, v := range r.Variants {
		fmt.Fprintf(w, "%s\t%d\t%.6g\t%.6g\t%.4g\t\n", v.Name, v.N, v.Mean, v.Variance, v.Weight)
	}
	fmt.Fprintln(w)
	level := fmt.Sprintf("%g%% CI", 100*(1-r.Alpha))
	fmt.Fprintf(w, "comparison\teffect\testimate\t%s\tp-value\tnotes\t\n", level)
	for _, c := range r.Comparisons {
		notes := strings.Join(c.Flags, ", ")
		if c.CUPED != nil && len(r.Comparisons) > 1 {
			notes = strings.TrimPrefix(notes+fmt.Sprintf(", theta %.4g", c.CUPED.Theta), ", ")
		}
		vs := c.Variant + " vs " + r.Control
		fmt.Fprintf(w, "%s\tabsolute\t%.6g\t%s\t%s\t%s\t\n", vs, c.Absolute.Estimate, interval(c.Absolute, false), pText(c.Absolute.PValue, c.Adjusted, false), notes)
		fmt.Fprintf(w, "\trelative\t%+.2f%%\t%s\t%s\t\t\n", 100*c.Relative.Estimate, interval(c.Relative, true), pText(c.Relative.PValue, c.Adjusted, true))
	}
	header := false
	for _, c := range r.Comparisons {
		if c.Bayesian == nil {
			continue
		}
		if !header {
			header = true
			fmt.Fprintln(w)
			fmt.Fprintf(w, "Bayesian (GrowthBook)\teffect\tposterior mean\t%g%% credible\tchance to win\trisk (control / treatment)\t\n", 100*(1-r.Alpha))
		}
		b := c.Bayesian.Relative
		fmt.Fprintf(w, "%s vs %s\trelative\t%+.2f%%\t[%+.2f%%, %+.2f%%]\t%.1f%%\t%.3g%% / %.3g%%\t\n", c.Variant, r.Control, 100*b.Expected, 100*b.CILow, 100*b.CIHigh, 100*b.ChanceToWin, 100*b.RiskControl, 100*b.RiskTreatment)
	}
	return w.Flush()
}

func interval(e analysis.Effect, relative bool) string {
	b := func(x float64) string {
		switch {
		case math.IsInf(x, -1):
			return "-inf"
		case math.IsInf(x, 1):
			return "+inf"
		case relative:
			return fmt.Sprintf("%+.2f%%", 100*x)
		}
		return strconv.FormatFloat(x, 'g', 4, 64)
	}
	return "[" + b(e.CILow) + ", " + b(e.CIHigh) + "]"
}

func pText(p float64, adj *analysis.Adjusted, relative bool) string {
	s := strconv.FormatFloat(p, 'g', 4, 64)
	if adj != nil {
		a := adj.Absolute
		if relative {
			a = adj.Relative
		}
		s += fmt.Sprintf(" (%s %.4g)", adj.Method, a)
	}
	return s
}

// analyzeOutput is what "lift analyze --covariates" prints: the analysis and
// Lin's regression-adjusted comparisons.
type analyzeOutput struct {
	analysis.MetricResult
	Lin []linComparison `json:"lin,omitempty"`
	// With --covariate: the covariate's means by arm and the test of their
	// equality (analysis.PreExposureImbalance), or why it could not be run.
	Imbalance      *analysis.Imbalance `json:"imbalance,omitempty"`
	ImbalanceError string              `json:"imbalance_error,omitempty"`
}

// writeImbalanceText prints the pre-exposure balance line of --format text.
func writeImbalanceText(out io.Writer, covariate string, im *analysis.Imbalance, errText string) {
	if im == nil {
		fmt.Fprintf(out, "\npre-exposure balance of %s: not tested (%s)\n", covariate, errText)
		return
	}
	verdict := "balanced"
	if im.Imbalanced {
		verdict = "IMBALANCED: the arms differed before exposure; check assignment and exposure logging"
	}
	fmt.Fprintf(out, "\npre-exposure balance of %s: chi-square %.4g (df %d), p = %.4g (%s)\n", covariate, im.Statistic, im.DF, im.PValue, verdict)
}

// linComparison is one variant against the control by Lin's (2013) estimator.
type linComparison struct {
	Variant    string          `json:"variant"`
	Covariates []string        `json:"covariates"`
	HC         string          `json:"hc"`
	N          int             `json:"n"`
	Absolute   analysis.Effect `json:"absolute"`
}

// covariateList splits --covariates.
func covariateList(spec string) ([]string, error) {
	if spec == "" {
		return nil, nil
	}
	var out []string
	for _, c := range strings.Split(spec, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			return nil, usageError("--covariates", "has an empty column name in %q", spec)
		}
		if contains(out, c) {
			return nil, usageError("--covariates", "lists column %q twice", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// linComparisons reads the metric and covariate columns and runs
// analysis.LinRegression for every variant against the control, on the rows
// of those two arms.
func linComparisons(ctx context.Context, f analyzeFlags, res analysis.MetricResult) ([]linComparison, error) {
	covs, err := covariateList(f.covariates)
	if err != nil {
		return nil, err
	}
	rows, err := store.ReadFileRows(ctx, store.FileRowsQuery{Path: f.data, Variant: f.variant, Columns: append([]string{f.metric}, covs...)})
	if err != nil {
		return nil, err
	}
	var out []linComparison
	for _, c := range res.Comparisons {
		var idx []int
		for i, v := range rows.Variant {
			if v == c.Variant || v == res.Control {
				idx = append(idx, i)
			}
		}
		y, treated := make([]float64, len(idx)), make([]bool, len(idx))
		x := mat.NewDense(max(len(idx), 1), len(covs), nil)
		for k, i := range idx {
			y[k], treated[k] = rows.Values[0][i], rows.Variant[i] == c.Variant
			for j := range covs {
				x.Set(k, j, rows.Values[1+j][i])
			}
		}
		var xm mat.Matrix = x
		if len(idx) == 0 {
			xm = nil
		}
		eff, err := analysis.LinRegression(y, treated, xm, analysis.LinOptions{Alpha: f.alpha, HC: analysis.HC2})
		if err != nil {
			return nil, experiment.E("analyze", experiment.Field("--covariates"), experiment.Errorf("%s vs %s: %w", c.Variant, res.Control, err))
		}
		out = append(out, linComparison{Variant: c.Variant, Covariates: covs, HC: "HC2", N: len(idx), Absolute: eff})
	}
	return out, nil
}

func writeLinText(out io.Writer, lin []linComparison) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Lin (2013) regression adjustment, HC2 standard errors")
	fmt.Fprintln(w, "comparison\tcovariates\tn\testimate\tCI\tp-value\t")
	for _, l := range lin {
		fmt.Fprintf(w, "%s\t%s\t%d\t%.6g\t%s\t%.4g\t\n", l.Variant, strings.Join(l.Covariates, ","), l.N, l.Absolute.Estimate, interval(l.Absolute, false), l.Absolute.PValue)
	}
	return w.Flush()
}

// fileArm is the analysis.Arm of a file's per-variant sums, with weight w.
func fileArm(a store.ArmSums, w float64) analysis.Arm {
	return analysis.Arm{
		Name: a.Name, Weight: w, N: a.N,
		Shift: a.Shift, Sum: a.Sum, SumSquares: a.SumSquares,
		CovariateShift: a.CovariateShift, CovariateSum: a.CovariateSum, CovariateSumSquares: a.CovariateSumSquares, CrossSum: a.CrossSum,
		DenominatorShift: a.DenominatorShift, DenominatorSum: a.DenominatorSum, DenominatorSumSquares: a.DenominatorSumSquares, MetricDenominatorSum: a.MetricDenominatorSum,
	}
}
