package synth

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// ErrInsufficient is returned (wrapped) when the panel is too small for what
// was asked: too few donors, pre-periods or post-periods.
var ErrInsufficient = errors.New("synth: insufficient data")

// Panel is a balanced wide panel: Y[u][t] is the outcome of unit Units[u] in
// period Periods[t], the periods in time order.
type Panel struct {
	Units   []string
	Periods []string
	Y       [][]float64
}

// Options configure Run.
type Options struct {
	// Treated are the indexes (into Panel.Units) of the test markets; the
	// other units are the donors.
	Treated []int
	// Start is the index of the first treated period: periods [0, Start) are
	// the pre-period, [Start, T) the post-period.
	Start  int
	Method Method // SCM when empty
	// Intercept removes each unit's pre-period mean before weighting (a unit
	// fixed effect, GeoLift's fixed_effects = TRUE, augsynth's fixedeff).
	Intercept bool
	// Lambda fixes the ridge penalty of Augmented; 0 chooses it by
	// cross-validation.
	Lambda float64
	// Predictors, when set, are K values per unit (Predictors[u]) that the
	// SCM weights match instead of the pre-period outcomes, minimizing
	// Σₖ Vₖ (x₁ₖ − Σⱼ wⱼ xⱼₖ)² (Abadie, Diamond & Hainmueller 2010, eq. 3
	// with a diagonal V; V all ones when nil). The augmentation, the fit
	// diagnostics and the inference still use the outcomes.
	Predictors [][]float64
	V          []float64
	Alpha      float64 // 1 − confidence level; 0.05 when zero
	// Conformal adds conformal inference (Chernozhukov, Wüthrich & Zhu 2021);
	// Placebo the in-space placebo test.
	Conformal, Placebo bool
	// PerMarket adds one fit per treated unit when there are several.
	PerMarket bool
}

// Weight is one donor's weight.
type Weight struct {
	Unit   string  `json:"unit"`
	Weight float64 `json:"weight"`
}

// Interval is a confidence set from inverting a test. Low or High is nil
// when the set is unbounded on that side; Empty is set when the test rejects
// every value searched.
type Interval struct {
	Low   *float64 `json:"low"`
	High  *float64 `json:"high"`
	Empty bool     `json:"empty,omitempty"`
}

// PathPoint is the effect in one post period with its conformal inference.
type PathPoint struct {
	Period    string    `json:"period"`
	Treated   float64   `json:"treated"`
	Synthetic float64   `json:"synthetic"`
	Effect    float64   `json:"effect"`
	PValue    *float64  `json:"p_value,omitempty"`
	Interval  *Interval `json:"interval,omitempty"`
}

// Conformal is the conformal inference on the average effect.
type Conformal struct {
	PValue       float64  `json:"p_value" doc:"of the null of no effect in any post period, moving-block permutations"`
	Interval     Interval `json:"interval" doc:"constant effects not rejected at alpha"`
	Permutations int      `json:"permutations"`
}

// Placebo is the in-space placebo test (Abadie, Diamond & Hainmueller 2010,
// §III.D): every donor in turn as if treated.
type Placebo struct {
	Ratio    float64  `json:"ratio" doc:"the treated unit's post/pre RMSPE ratio"`
	Rank     int      `json:"rank" doc:"1 + placebos whose ratio is at least the treated's"`
	N        int      `json:"n_placebos"`
	PValue   float64  `json:"p_value" doc:"rank / (n_placebos + 1)"`
	Interval Interval `json:"interval" doc:"constant effects whose shifted ratio keeps the p-value above alpha"`
	Ratios   []Weight `json:"placebo_ratios" doc:"each donor's ratio as a placebo, largest first"`
	Skipped  []string `json:"skipped,omitempty" doc:"donors whose placebo fit failed"`
	// Gaps is each placebo's gap path (the donor minus its own synthetic, every
	// period), in donor order: the placebo chart draws them. Left out of the
	// JSON, which would grow with units × periods.
	Gaps []Series `json:"-"`
}

// Series is a unit's values over the panel's periods.
type Series struct {
	Unit   string
	Values []float64
}

// Estimate is the synthetic control of one treated series: a market, or the
// average of the test markets.
type Estimate struct {
	Unit       string        `json:"unit"`
	Weights    []Weight      `json:"weights" doc:"non-zero donor weights (|w| > 1e-6), largest first"`
	SCMWeights []Weight      `json:"scm_weights,omitempty" doc:"augmented only: the simplex weights before the ridge correction"`
	Lambda     float64       `json:"lambda,omitempty" doc:"augmented only: the ridge penalty"`
	LambdaCV   []LambdaError `json:"lambda_cv,omitempty"`
	Effect     float64       `json:"effect" doc:"average post-period gap, treated − synthetic"`
	Lift       float64       `json:"lift" doc:"Σ post gap / Σ post synthetic"`
	Cumulative float64       `json:"cumulative" doc:"Σ post gap"`
	PreRMSPE   float64       `json:"pre_rmspe"`
	PostRMSPE  float64       `json:"post_rmspe"`
	R2         float64       `json:"pre_r2" doc:"share of the treated's pre-period variance the synthetic explains"`
	// HullPeriods counts pre-periods where the treated series (after the
	// intercept, if any) is above every donor or below every donor: there
	// it lies outside the donors' convex hull and no simplex weights match it.
	HullPeriods int         `json:"outside_hull_periods"`
	Path        []PathPoint `json:"path" doc:"every period: treated, synthetic, gap; post periods with conformal inference"`
	Conformal   *Conformal  `json:"conformal,omitempty"`
	Placebo     *Placebo    `json:"placebo,omitempty"`
	Warnings    []string    `json:"warnings,omitempty"`
	fit         *fitResult
}

// Report is the result of Run.
type Report struct {
	Method    Method     `json:"method"`
	Intercept bool       `json:"intercept"`
	Alpha     float64    `json:"alpha"`
	Treated   []string   `json:"treated"`
	Donors    int        `json:"n_donors"`
	Start     string     `json:"start" doc:"first post period"`
	NPre      int        `json:"n_pre"`
	NPost     int        `json:"n_post"`
	Average   Estimate   `json:"average" doc:"the average of the test markets (the market itself when one)"`
	Markets   []Estimate `json:"markets,omitempty" doc:"one fit per test market"`
}

// Run fits the synthetic control of the average of the treated units (the
// test markets, GeoLift's aggregation) from the other units, and with
// o.PerMarket one per treated unit, over the pre-period [0, o.Start), and
// reports the effect path, the average effect, the diagnostics and the
// inference asked for. Caller bugs (a ragged panel, indexes out of range)
// panic; data conditions are errors.
func Run(p Panel, o Options) (*Report, error) {
	U, T := len(p.Units), len(p.Periods)
	if len(p.Y) != U {
		panic(fmt.Sprintf("synth: Run: %d units, %d rows", U, len(p.Y)))
	}
	for u := range p.Y {
		if len(p.Y[u]) != T {
			panic(fmt.Sprintf("synth: Run: unit %d has %d periods, want %d", u, len(p.Y[u]), T))
		}
	}
	if o.Method == "" {
		o.Method = SCM
	}
	if o.Method != SCM && o.Method != Augmented {
		panic(fmt.Sprintf("synth: Run: unknown method %q", o.Method))
	}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	isTreated := make([]bool, U)
	for _, u := range o.Treated {
		if u < 0 || u >= U {
			panic(fmt.Sprintf("synth: Run: treated index %d out of range", u))
		}
		isTreated[u] = true
	}
	var donors []int
	for u := range U {
		if !isTreated[u] {
			donors = append(donors, u)
		}
	}
	switch {
	case len(o.Treated) == 0:
		return nil, fmt.Errorf("%w: no treated unit", ErrInsufficient)
	case len(donors) < 2:
		return nil, fmt.Errorf("%w: %d donor units, need at least 2", ErrInsufficient, len(donors))
	case o.Start < 2:
		return nil, fmt.Errorf("%w: %d pre-periods, need at least 2", ErrInsufficient, o.Start)
	case o.Start >= T:
		return nil, fmt.Errorf("%w: no post-period (start %d of %d periods)", ErrInsufficient, o.Start, T)
	}
	if o.Predictors != nil {
		if len(o.Predictors) != U {
			panic("synth: Run: predictors for a different number of units")
		}
		if o.V == nil {
			o.V = make([]float64, len(o.Predictors[0]))
			for k := range o.V {
				o.V[k] = 1
			}
		}
	}
	rep := &Report{Method: o.Method, Intercept: o.Intercept, Alpha: o.Alpha, Donors: len(donors),
		Start: p.Periods[o.Start], NPre: o.Start, NPost: T - o.Start}
	for _, u := range o.Treated {
		rep.Treated = append(rep.Treated, p.Units[u])
	}
	avg := make([]float64, T)
	for _, u := range o.Treated {
		for t := range T {
			avg[t] += p.Y[u][t] / float64(len(o.Treated))
		}
	}
	var avgPred []float64
	if o.Predictors != nil {
		avgPred = make([]float64, len(o.V))
		for _, u := range o.Treated {
			for k := range avgPred {
				avgPred[k] += o.Predictors[u][k] / float64(len(o.Treated))
			}
		}
	}
	name := p.Units[o.Treated[0]]
	if len(o.Treated) > 1 {
		name = fmt.Sprintf("average of %d markets (%s)", len(o.Treated), strings.Join(rep.Treated, ", "))
	}
	e, err := estimate(p, o, donors, name, avg, avgPred)
	if err != nil {
		return nil, err
	}
	rep.Average = *e
	if o.PerMarket && len(o.Treated) > 1 {
		for _, u := range o.Treated {
			var pr []float64
			if o.Predictors != nil {
				pr = o.Predictors[u]
			}
			m, err := estimate(p, o, donors, p.Units[u], p.Y[u], pr)
			if err != nil {
				return nil, fmt.Errorf("market %s: %w", p.Units[u], err)
			}
			rep.Markets = append(rep.Markets, *m)
		}
	}
	return rep, nil
}

func (o Options) fitter(p Panel, donors []int, y, pred []float64) *fitter {
	f := &fitter{Treated: y, Method: o.Method, Intercept: o.Intercept, Lambda: o.Lambda}
	for _, d := range donors {
		f.Donors = append(f.Donors, p.Y[d])
	}
	if o.Predictors != nil {
		f.PredTreated, f.V = pred, o.V
		for _, d := range donors {
			f.Pred = append(f.Pred, o.Predictors[d])
		}
	}
	return f
}

func seq(a, b int) []int {
	s := make([]int, 0, b-a)
	for i := a; i < b; i++ {
		s = append(s, i)
	}
	return s
}

// estimate fits one treated series y and adds its diagnostics and inference.
func estimate(p Panel, o Options, donors []int, name string, y, pred []float64) (*Estimate, error) {
	T, T0 := len(y), o.Start
	f := o.fitter(p, donors, y, pred)
	res, err := f.fit(seq(0, T0), nil)
	if err != nil {
		return nil, err
	}
	e := &Estimate{Unit: name, fit: res, Lambda: res.Lambda, LambdaCV: res.CV}
	e.Weights = weightList(p, donors, res.W)
	if o.Method == Augmented {
		e.SCMWeights = weightList(p, donors, res.SCMW)
		f.Lambda = res.Lambda // inference refits with the chosen λ
	}
	gap := make([]float64, T)
	for t := range T {
		gap[t] = y[t] - res.Synthetic[t]
		e.Path = append(e.Path, PathPoint{Period: p.Periods[t], Treated: y[t], Synthetic: res.Synthetic[t], Effect: gap[t]})
	}
	e.PreRMSPE, e.PostRMSPE = rms(gap[:T0]), rms(gap[T0:])
	synPost := 0.0
	for t := T0; t < T; t++ {
		e.Cumulative += gap[t]
		synPost += res.Synthetic[t]
	}
	e.Effect = e.Cumulative / float64(T-T0)
	if synPost != 0 {
		e.Lift = e.Cumulative / synPost
	}
	my, _ := meanVar(y[:T0])
	sst := 0.0
	for t := range T0 {
		sst += (y[t] - my) * (y[t] - my)
	}
	if sst > 0 {
		e.R2 = 1 - e.PreRMSPE*e.PreRMSPE*float64(T0)/sst
	}
	e.HullPeriods = outsideHull(f, T0)
	if e.HullPeriods > 0 {
		e.Warnings = append(e.Warnings, fmt.Sprintf("the treated series lies outside the donors' convex hull: in %d of %d pre-periods it is above every donor or below every donor%s, so no non-negative weights summing to one can match it there and the synthetic control is biased toward the donors; the augmented method (or the intercept) corrects for it by extrapolation",
			e.HullPeriods, T0, map[bool]string{true: " (after removing each unit's pre-period mean)", false: ""}[o.Intercept]))
	}
	if e.R2 < 0.8 && sst > 0 {
		e.Warnings = append(e.Warnings, fmt.Sprintf("poor pre-period fit: the synthetic explains %.0f%% of the treated's pre-period variance", 100*e.R2))
	}
	if o.Conformal {
		if e.Conformal, err = conformalAverage(f, T0, y, e.Effect, o.Alpha, e.PreRMSPE); err != nil {
			return nil, fmt.Errorf("conformal inference: %w", err)
		}
		for t := T0; t < T; t++ {
			pv, iv, err := conformalPeriod(f, T0, t, y, gap[t], o.Alpha, e.PreRMSPE)
			if err != nil {
				return nil, fmt.Errorf("conformal inference, period %s: %w", p.Periods[t], err)
			}
			e.Path[t].PValue, e.Path[t].Interval = &pv, iv
		}
	}
	if o.Placebo {
		e.Placebo = placebo(p, o, donors, f.Lambda, T0, gap)
	}
	return e, nil
}

func weightList(p Panel, donors []int, w []float64) []Weight {
	var out []Weight
	for j, v := range w {
		if math.Abs(v) > 1e-6 {
			out = append(out, Weight{p.Units[donors[j]], v})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Weight > out[b].Weight })
	return out
}

func rms(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(len(x)))
}

// outsideHull counts the pre-periods where the treated value (less its
// pre-period mean with an intercept) is outside the donors' range.
func outsideHull(f *fitter, T0 int) int {
	shift := func(x []float64) float64 {
		if !f.Intercept {
			return 0
		}
		m, _ := meanVar(x[:T0])
		return m
	}
	ms := make([]float64, len(f.Donors))
	for j, d := range f.Donors {
		ms[j] = shift(d)
	}
	my := shift(f.Treated)
	n := 0
	for t := range T0 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for j, d := range f.Donors {
			lo, hi = math.Min(lo, d[t]-ms[j]), math.Max(hi, d[t]-ms[j])
		}
		if v := f.Treated[t] - my; v > hi+1e-9*math.Abs(hi) || v < lo-1e-9*math.Abs(lo) {
			n++
		}
	}
	return n
}

// placebo runs the in-space placebo test: each donor in turn is fitted from
// the other donors with the same method (and λ), and its post/pre RMSPE ratio
// compared with the treated's. The interval inverts the test for a constant
// effect θ: subtracting θ from the treated's post-period leaves its weights
// and pre-period fit unchanged, so its ratio is
// r(θ) = √((ḡ − θ)² + s²)/RMSPE_pre, with ḡ and s² the mean and the
// (population) variance of the post gaps, and θ is kept while
// (1 + #{placebo ratios ≥ r(θ)})/(n + 1) > α, i.e. while r(θ) ≤ R₍ₖ₎, the k-th
// largest placebo ratio for the smallest k with k + 1 > α(n + 1).
func placebo(p Panel, o Options, donors []int, lambda float64, T0 int, gap []float64) *Placebo {
	T := len(gap)
	pre := rms(gap[:T0])
	tiny := 1e-12 * (1 + rms(gap))
	ratio := rms(gap[T0:]) / math.Max(pre, tiny)
	pl := &Placebo{Ratio: ratio}
	var ratios []float64
	for j, d := range donors {
		others := slices.Concat(donors[:j:j], donors[j+1:])
		var pred []float64
		if o.Predictors != nil {
			pred = o.Predictors[d]
		}
		f := o.fitter(p, others, p.Y[d], pred)
		f.Lambda = lambda
		res, err := f.fit(seq(0, T0), nil)
		if err != nil {
			pl.Skipped = append(pl.Skipped, p.Units[d])
			continue
		}
		g := make([]float64, T)
		for t := range T {
			g[t] = p.Y[d][t] - res.Synthetic[t]
		}
		r := rms(g[T0:]) / math.Max(rms(g[:T0]), tiny)
		ratios = append(ratios, r)
		pl.Ratios = append(pl.Ratios, Weight{p.Units[d], r})
		pl.Gaps = append(pl.Gaps, Series{p.Units[d], g})
	}
	sort.SliceStable(pl.Ratios, func(a, b int) bool { return pl.Ratios[a].Weight > pl.Ratios[b].Weight })
	n := len(ratios)
	pl.N = n
	pl.Rank = 1
	for _, r := range ratios {
		if r >= ratio {
			pl.Rank++
		}
	}
	pl.PValue = float64(pl.Rank) / float64(n+1)
	slices.Sort(ratios)
	slices.Reverse(ratios)
	k := int(math.Floor(o.Alpha*float64(n+1)-1)) + 1
	if k < 0 {
		k = 0
	}
	switch {
	case k == 0:
		// every θ has p ≥ 1/(n+1) > α: unbounded
	case k > n:
		pl.Interval.Empty = true
	default:
		mean, v := 0.0, 0.0
		post := gap[T0:]
		for _, x := range post {
			mean += x
		}
		mean /= float64(len(post))
		for _, x := range post {
			v += (x - mean) * (x - mean)
		}
		v /= float64(len(post))
		rhs := ratios[k-1]*ratios[k-1]*pre*pre - v
		if rhs < 0 {
			pl.Interval.Empty = true
		} else {
			lo, hi := mean-math.Sqrt(rhs), mean+math.Sqrt(rhs)
			pl.Interval.Low, pl.Interval.High = &lo, &hi
		}
	}
	return pl
}
