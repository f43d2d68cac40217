package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/liftlab/lift/analysis/uplift"
	"github.com/liftlab/lift/experiment"
	"gonum.org/v1/gonum/mat"
)

const upliftDescription = `Fit an uplift model on a randomized test and evaluate it on held-out rows.

Rows whose --treatment value is neither --control nor --treated are left out.
The rows are split at random (seeded by --seed) into a training part and a
held-out part (--test-share). A meta-learner (t, s or x) over a base learner
(boosted trees or ridge regression) is trained on the first and scores the
second, which gives the Qini coefficient and AUUC (causalml's normalized
definitions), the observed uplift by decile of predicted uplift, and the value
of targeting the top 10%, 20%, …, 100% with bootstrap intervals.

"ate" is the Welch difference in means, treated − control, on all rows of the
two arms. Numeric feature columns are used as they are; a column with any
non-numeric value is one-hot encoded (one indicator per distinct value).
Missing values are errors.`

type upliftFlags struct {
	data, treatment, outcome, features, control, treated, learner, base, format string
	seed                                                                        uint64
	testShare, alpha, learningRate                                              float64
	bootstrap, rounds, depth, minLeaf                                           int
}

func runUplift(ctx context.Context, e *env, args []string) error {
	var f upliftFlags
	fs := e.flags("uplift", "--data FILE --treatment COL --outcome COL --features COLS [flags]", upliftDescription)
	fs.StringVar(&f.data, "data", "", "CSV file, one row per unit (required)")
	fs.StringVar(&f.treatment, "treatment", "", "column naming each unit's arm (required)")
	fs.StringVar(&f.outcome, "outcome", "", "numeric outcome column (required)")
	fs.StringVar(&f.features, "features", "", "comma-separated feature columns (required)")
	fs.StringVar(&f.control, "control", "", `control arm value (default: "control", else "0" when the arms are 0 and 1)`)
	fs.StringVar(&f.treated, "treated", "", "treated arm value (default: the only other value)")
	fs.StringVar(&f.learner, "learner", "x", "meta-learner: t, s or x")
	fs.StringVar(&f.base, "base", "trees", "base learner: trees (gradient boosting) or ridge")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the train/test split and the bootstrap")
	fs.Float64Var(&f.testShare, "test-share", 0.3, "share of rows held out for evaluation")
	fs.IntVar(&f.bootstrap, "bootstrap", 200, "bootstrap replicates for the intervals")
	fs.Float64Var(&f.alpha, "alpha", 0.05, "significance level; intervals have coverage 1-alpha")
	fs.IntVar(&f.rounds, "rounds", 100, "boosting rounds")
	fs.IntVar(&f.depth, "depth", 4, "tree depth")
	fs.Float64Var(&f.learningRate, "learning-rate", 0.1, "boosting learning rate")
	fs.IntVar(&f.minLeaf, "min-leaf", 20, "minimum rows per tree leaf")
	fs.StringVar(&f.format, "format", "json", "output format: json or text")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	out, err := upliftFile(ctx, f)
	if err != nil {
		return err
	}
	if f.format == "text" {
		return writeUpliftText(e.stdout, out)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// upliftOutput is what "lift uplift" prints: the pipeline's report and the
// two arms.
type upliftOutput struct {
	*uplift.Report
	Control string `json:"control"`
	Treated string `json:"treated"`
}

const upliftOp = "uplift"

func upliftInvalid(flag, format string, args ...any) error {
	return experiment.E(upliftOp, experiment.Invalid, experiment.Field(flag), experiment.Errorf(format, args...))
}

func upliftFile(ctx context.Context, f upliftFlags) (*upliftOutput, error) {
	for _, req := range []struct{ flag, v string }{{"--data", f.data}, {"--treatment", f.treatment}, {"--outcome", f.outcome}, {"--features", f.features}} {
		if req.v == "" {
			return nil, upliftInvalid(req.flag, "is required")
		}
	}
	switch f.learner {
	case "t", "s", "x":
	default:
		return nil, upliftInvalid("--learner", "must be t, s or x, got %q", f.learner)
	}
	switch f.base {
	case "trees":
		if f.rounds < 1 || f.depth < 1 || f.depth > 16 || !(f.learningRate > 0 && f.learningRate <= 1) || f.minLeaf < 1 {
			return nil, upliftInvalid("--rounds", "boosting needs rounds ≥ 1, depth in [1, 16], learning rate in (0, 1] and min leaf ≥ 1; got %d, %d, %g, %d", f.rounds, f.depth, f.learningRate, f.minLeaf)
		}
	case "ridge":
	default:
		return nil, upliftInvalid("--base", "must be trees or ridge, got %q", f.base)
	}
	if !(f.testShare > 0 && f.testShare < 1) {
		return nil, upliftInvalid("--test-share", "must be in (0, 1), got %g", f.testShare)
	}
	if !(f.alpha > 0 && f.alpha < 1) {
		return nil, upliftInvalid("--alpha", "must be in (0, 1), got %g", f.alpha)
	}
	if f.bootstrap < 0 {
		return nil, upliftInvalid("--bootstrap", "must be ≥ 0, got %d", f.bootstrap)
	}
	if f.format != "json" && f.format != "text" {
		return nil, upliftInvalid("--format", "must be json or text, got %q", f.format)
	}
	t, err := readTableFile(ctx, upliftOp, f.data)
	if err != nil {
		return nil, err
	}
	arms, err := t.strings(upliftOp, "--treatment", f.treatment)
	if err != nil {
		return nil, err
	}
	control, treated, err := upliftArms(arms, f.control, f.treated)
	if err != nil {
		return nil, err
	}
	var rows []int
	for i, a := range arms {
		if a == control || a == treated {
			rows = append(rows, i)
		}
	}
	yAll, err := t.floats(upliftOp, "--outcome", f.outcome)
	if err != nil {
		return nil, err
	}
	y := make([]float64, len(rows))
	w := make([]bool, len(rows))
	for k, i := range rows {
		if math.IsNaN(yAll[i]) {
			return nil, upliftInvalid("--outcome", "%s line %d, column %q: missing value", f.data, t.line(i), f.outcome)
		}
		y[k], w[k] = yAll[i], arms[i] == treated
	}
	x, names, err := upliftFeatures(t, rows, f.features)
	if err != nil {
		return nil, err
	}
	rep, err := uplift.Run(ctx, x, names, y, w, uplift.RunOptions{
		Learner: f.learner, Base: f.base, Seed: f.seed, TestShare: f.testShare, Bootstrap: f.bootstrap, Alpha: f.alpha,
		Boosting: uplift.Boosting{Rounds: f.rounds, Depth: f.depth, LearningRate: f.learningRate, MinLeaf: f.minLeaf, MaxBins: 255, L2: 1, Subsample: 1},
	})
	if err != nil {
		return nil, pipelineError(ctx, upliftOp, err)
	}
	return &upliftOutput{Report: rep, Control: control, Treated: treated}, nil
}

// pipelineError wraps an error of a shared analysis pipeline: a context
// error as it is, an error with a kind keeps it, any other is a data condition.
func pipelineError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if experiment.KindOf(err) == experiment.Internal {
		return experiment.E(op, experiment.InsufficientData, err)
	}
	return experiment.E(op, err)
}

// upliftArms resolves the control and treated values of the arm column.
func upliftArms(arms []string, control, treated string) (string, string, error) {
	seen := map[string]bool{}
	for _, a := range arms {
		seen[a] = true
	}
	values := make([]string, 0, len(seen))
	for a := range seen {
		values = append(values, a)
	}
	slices.Sort(values)
	if control == "" {
		switch {
		case seen["control"]:
			control = "control"
		case len(values) == 2 && seen["0"] && seen["1"]:
			control = "0"
		default:
			return "", "", upliftInvalid("--control", "is required: the arm column has values %s", strings.Join(quoteAll(values), ", "))
		}
	}
	if !seen[control] {
		return "", "", upliftInvalid("--control", "no row has arm %q (values: %s)", control, strings.Join(quoteAll(values), ", "))
	}
	if treated == "" {
		if len(values) != 2 {
			return "", "", upliftInvalid("--treated", "is required when the arm column has %d values: %s", len(values), strings.Join(quoteAll(values), ", "))
		}
		treated = values[0]
		if treated == control {
			treated = values[1]
		}
	}
	if !seen[treated] {
		return "", "", upliftInvalid("--treated", "no row has arm %q (values: %s)", treated, strings.Join(quoteAll(values), ", "))
	}
	if treated == control {
		return "", "", upliftInvalid("--treated", "is the same arm as --control (%q)", control)
	}
	return control, treated, nil
}

func quoteAll(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = strconv.Quote(s)
	}
	return out
}

// upliftFeatures builds the feature matrix of the given rows: numeric
// columns as they are, others one-hot encoded as "col=value" indicators.
func upliftFeatures(t *table, rows []int, spec string) (*mat.Dense, []string, error) {
	var cols [][]float64
	var names []string
	seen := map[string]bool{}
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, nil, upliftInvalid("--features", "has an empty column name in %q", spec)
		}
		if seen[name] {
			return nil, nil, upliftInvalid("--features", "lists column %q twice", name)
		}
		seen[name] = true
		raw, err := t.strings(upliftOp, "--features", name)
		if err != nil {
			return nil, nil, err
		}
		numeric := true
		for _, i := range rows {
			if missing(raw[i]) {
				return nil, nil, upliftInvalid("--features", "%s line %d, column %q: missing value", t.name, t.line(i), name)
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(raw[i]), 64); err != nil || math.IsInf(v, 0) {
				numeric = false
			}
		}
		if numeric {
			c := make([]float64, len(rows))
			for k, i := range rows {
				c[k], _ = strconv.ParseFloat(strings.TrimSpace(raw[i]), 64)
			}
			cols, names = append(cols, c), append(names, name)
			continue
		}
		levels := map[string]bool{}
		for _, i := range rows {
			levels[raw[i]] = true
		}
		keys := make([]string, 0, len(levels))
		for k := range levels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) > 1000 {
			return nil, nil, upliftInvalid("--features", "column %q has %d distinct text values; one-hot encoding is limited to 1,000", name, len(keys))
		}
		for _, lv := range keys {
			c := make([]float64, len(rows))
			for k, i := range rows {
				if raw[i] == lv {
					c[k] = 1
				}
			}
			cols, names = append(cols, c), append(names, name+"="+lv)
		}
	}
	x := mat.NewDense(len(rows), len(cols), nil)
	for j, c := range cols {
		for k, v := range c {
			x.Set(k, j, v)
		}
	}
	return x, names, nil
}

func writeUpliftText(w io.Writer, o *upliftOutput) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Uplift: %s-learner over %s, %q vs %q; %d training rows, %d held out (seed %d)\n\n", strings.ToUpper(o.Learner), o.Base, o.Treated, o.Control, o.NTrain, o.NTest, o.Seed)
	fmt.Fprintf(&b, "ATE (Welch, all rows)  %.6g   se %.4g   CI [%.6g, %.6g]   p %.4g\n", o.ATE.Estimate, o.ATE.SE, o.ATE.CILow, o.ATE.CIHigh, o.ATE.PValue)
	fmt.Fprintf(&b, "Qini coefficient       %.4f", o.Qini)
	if o.QiniLow != nil && o.QiniHigh != nil {
		fmt.Fprintf(&b, "   bootstrap CI [%.4f, %.4f]", *o.QiniLow, *o.QiniHigh)
	}
	fmt.Fprintf(&b, "\nAUUC                   %.4f\n\n", o.AUUC)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "decile\tn\ttreated\tcontrol\tpredicted\tobserved\t\n")
	for _, d := range o.Deciles {
		obs := "n/a"
		if d.Observed != nil {
			obs = fmt.Sprintf("%.4f", *d.Observed)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.4f\t%s\t\n", d.Decile, d.N, d.NTreated, d.NControl, d.Predicted, obs)
	}
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "target top\tvalue\tgain vs none\tgain CI\trandom value\t\n")
	for _, p := range o.Policy {
		ci := "n/a"
		if p.GainLow != nil && p.GainHigh != nil {
			ci = fmt.Sprintf("[%.4f, %.4f]", *p.GainLow, *p.GainHigh)
		}
		fmt.Fprintf(tw, "%.0f%%\t%.4f\t%.4f\t%s\t%.4f\t\n", 100*p.Fraction, p.Value, p.Gain, ci, p.Random)
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
