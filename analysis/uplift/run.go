package uplift

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/liftlab/lift/analysis"
)

// RunOptions configure Run, the pipeline behind "lift uplift" and
// POST /v1/analyses/uplift. Callers check and default them; Run panics on a
// learner or base it does not know.
type RunOptions struct {
	Learner   string   // "t", "s" or "x"
	Base      string   // "trees" (gradient boosting, Boosting) or "ridge" (λ = 1)
	Boosting  Boosting // the trees; its Seed is replaced by Seed
	Seed      uint64   // seed of the train/test split, the trees and the bootstrap
	TestShare float64  // share of units held out for evaluation, in (0, 1)
	Bootstrap int      // bootstrap replicates of the intervals; 0 for none
	Alpha     float64  // 1 − interval coverage
}

// Decile is the observed uplift in one decile of predicted uplift.
type Decile struct {
	Decile    int      `json:"decile"`
	N         int      `json:"n"`
	NTreated  int      `json:"n_treated"`
	NControl  int      `json:"n_control"`
	Predicted float64  `json:"predicted_uplift"`
	Observed  *float64 `json:"observed_uplift"`
}

// PolicyValue is the value of treating the top Fraction of units by predicted
// uplift.
type PolicyValue struct {
	Fraction  float64  `json:"fraction"`
	NTargeted int      `json:"n_targeted"`
	Value     float64  `json:"value"`
	ValueLow  *float64 `json:"value_ci_low"`
	ValueHigh *float64 `json:"value_ci_high"`
	Gain      float64  `json:"gain"`
	GainLow   *float64 `json:"gain_ci_low"`
	GainHigh  *float64 `json:"gain_ci_high"`
	Random    float64  `json:"random_value"`
}

// Report is the result of Run. Undefined interval ends are nil in JSON.
type Report struct {
	ATE       analysis.Effect `json:"ate" doc:"Welch difference in means, treated − control, over all units of the two arms"`
	Qini      float64         `json:"qini"`
	QiniLow   *float64        `json:"qini_ci_low"`
	QiniHigh  *float64        `json:"qini_ci_high"`
	AUUC      float64         `json:"auuc"`
	Deciles   []Decile        `json:"deciles"`
	Policy    []PolicyValue   `json:"policy"`
	Learner   string          `json:"learner"`
	Base      string          `json:"base"`
	NTrain    int             `json:"n_train"`
	NTest     int             `json:"n_test"`
	Features  []string        `json:"features" doc:"the encoded feature columns"`
	Seed      uint64          `json:"seed"`
	Bootstrap int             `json:"bootstrap"`

	// The evaluation's curves, for charts: QiniCurve and Gain at k = 0…NTest
	// units targeted (see Evaluation).
	QiniCurve []float64 `json:"-"`
	Gain      []float64 `json:"-"`
}

// Run is the uplift pipeline: the Welch ATE on all n units; a seeded
// train/test split (a permutation from PCG(Seed, 0x5eed), the first
// round(TestShare·n) units held out); the meta-learner over the base learner
// fit on the training part; and Evaluate on the held-out part with a bootstrap
// seeded by PCG(Seed, 0xb007). x is n×p with the feature names names; w marks
// the treated units. Errors are data conditions (too few units, a fit that
// fails, an undefined Qini); ctx is checked between the stages.
func Run(ctx context.Context, x *mat.Dense, names []string, y []float64, w []bool, o RunOptions) (*Report, error) {
	n := len(y)
	if r, c := x.Dims(); r != n || len(w) != n || c != len(names) {
		panic(fmt.Sprintf("uplift: Run: %d×%d features (%d names), %d outcomes, %d flags", r, c, len(names), n, len(w)))
	}
	var meta func(Learner) MetaLearner
	switch o.Learner {
	case "t":
		meta = func(b Learner) MetaLearner { return TLearner{Base: b} }
	case "s":
		meta = func(b Learner) MetaLearner { return SLearner{Base: b} }
	case "x":
		meta = func(b Learner) MetaLearner { return XLearner{Outcome: b} }
	default:
		panic(fmt.Sprintf("uplift: Run: unknown learner %q", o.Learner))
	}
	var base Learner
	switch o.Base {
	case "trees":
		b := o.Boosting
		b.Seed = o.Seed
		base = b
	case "ridge":
		base = Ridge{Lambda: 1}
	default:
		panic(fmt.Sprintf("uplift: Run: unknown base %q", o.Base))
	}
	out := &Report{Learner: o.Learner, Base: o.Base, Features: names, Seed: o.Seed, Bootstrap: o.Bootstrap}
	var err error
	if out.ATE, err = ATE(y, w, o.Alpha); err != nil {
		return nil, fmt.Errorf("%d units in the two arms: %w", n, err)
	}
	perm := rand.New(rand.NewPCG(o.Seed, 0x5eed)).Perm(n)
	nTest := int(math.Round(o.TestShare * float64(n)))
	if nTest < 10 || n-nTest < 10 {
		return nil, fmt.Errorf("%d units in the two arms are too few to split into training and held-out parts of at least 10 each", n)
	}
	_, p := x.Dims()
	pick := func(idx []int) (*mat.Dense, []bool, []float64) {
		xs := mat.NewDense(len(idx), p, nil)
		ws, ys := make([]bool, len(idx)), make([]float64, len(idx))
		for k, i := range idx {
			copy(xs.RawRowView(k), x.RawRowView(i))
			ws[k], ys[k] = w[i], y[i]
		}
		return xs, ws, ys
	}
	xTest, wTest, yTest := pick(perm[:nTest])
	xTrain, wTrain, yTrain := pick(perm[nTest:])
	out.NTrain, out.NTest = n-nTest, nTest
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	model, err := meta(base).Fit(xTrain, wTrain, yTrain)
	if err != nil {
		return nil, fmt.Errorf("training on %d units: %w", n-nTest, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	score := make([]float64, nTest)
	model.Predict(xTest, score)
	bs := o.Bootstrap
	if bs == 0 {
		bs = -1
	}
	ev, err := Evaluate(score, yTest, wTest, EvalOptions{Bootstrap: bs, Alpha: o.Alpha, Src: rand.NewPCG(o.Seed, 0xb007)})
	if err != nil {
		return nil, fmt.Errorf("evaluation on %d held-out units: %w", nTest, err)
	}
	if !finite(ev.Qini) || !finite(ev.AUUC) {
		return nil, errors.New("the held-out uplift of the whole group is 0, so the normalized Qini and AUUC are undefined")
	}
	out.Qini, out.AUUC, out.QiniLow, out.QiniHigh = ev.Qini, ev.AUUC, finiteOrNil(ev.QiniLow), finiteOrNil(ev.QiniHigh)
	for _, b := range ev.Bins {
		out.Deciles = append(out.Deciles, Decile{b.Bin, b.N, b.NTreated, b.NControl, b.MeanScore, finiteOrNil(b.Uplift)})
	}
	for _, p := range ev.Policy {
		out.Policy = append(out.Policy, PolicyValue{p.Fraction, p.Treated, p.Value, finiteOrNil(p.ValueLow), finiteOrNil(p.ValueHigh),
			p.Gain, finiteOrNil(p.GainLow), finiteOrNil(p.GainHigh), p.Random})
	}
	out.QiniCurve, out.Gain = ev.QiniCurve, ev.Gain
	return out, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func finiteOrNil(v float64) *float64 {
	if !finite(v) {
		return nil
	}
	return &v
}
