package uplift

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Evaluation definitions (causalml, causalml/metrics/visualize.py, as of its
// 2026 sources)
//
// Rows are sorted by predicted uplift, highest first; ties keep row order
// (causalml leaves the order of ties to pandas' sort). For the top k rows,
// with N_T(k), N_C(k) treated and control rows and Y_T(k), Y_C(k) their
// outcome sums:
//
//	lift             l(k) = Y_T(k)/N_T(k) − Y_C(k)/N_C(k)           (get_cumlift)
//	cumulative gain  g(k) = l(k) · k                                (get_cumgain)
//	Qini             q(k) = Y_T(k) − Y_C(k) · N_T(k)/N_C(k)         (get_qini)
//
// for k = 0, 1, …, n with l(0) = q(0) = 0. Points where an arm is still empty
// are undefined and filled as causalml's DataFrame.interpolate() fills them:
// linearly from (0, 0) to the first defined point f — the lift for the gain
// curve, so g(k) = g(f)·k²/f² there, and the Qini curve itself, q(k) = q(f)·k/f.
// With normalize=True (causalml's default for the scores) each curve is
// divided by |its value at k = n|, and
//
//	AUUC = Σ_k g(k)/|g(n)| / (n+1)                                 (auuc_score)
//	Qini coefficient = [Σ_k q(k) − Σ_k r(k)] / |q(n)| / (n+1)       (qini_score)
//
// where r is causalml's random-targeting baseline, the straight line from
// q(0) to q(n) (numpy.linspace over the n+1 points), r(k) = k/n · q(n): its
// part is exactly sign(q(n))/2. The Qini coefficient is 0 for random targeting
// and positive when the ranking puts responders first.

// ranking is the evaluation data sorted by score, highest first.
type ranking struct {
	y       []float64
	treated []bool
	score   []float64
}

func rank(score, y []float64, treated []bool) (*ranking, error) {
	if len(y) != len(score) || len(treated) != len(score) {
		panic(fmt.Sprintf("uplift: %d scores, %d outcomes, %d treatment flags", len(score), len(y), len(treated)))
	}
	var n1 int
	for i, t := range treated {
		if t {
			n1++
		}
		if math.IsNaN(score[i]) || math.IsNaN(y[i]) {
			return nil, fmt.Errorf("uplift: row %d has a NaN score or outcome", i)
		}
	}
	if n1 == 0 || n1 == len(treated) {
		return nil, ErrEmptyArm
	}
	ord := make([]int, len(score))
	for i := range ord {
		ord[i] = i
	}
	sort.SliceStable(ord, func(a, b int) bool { return score[ord[a]] > score[ord[b]] })
	r := &ranking{y: make([]float64, len(ord)), treated: make([]bool, len(ord)), score: make([]float64, len(ord))}
	for k, i := range ord {
		r.y[k], r.treated[k], r.score[k] = y[i], treated[i], score[i]
	}
	return r, nil
}

// Curves returns the raw (unnormalized) cumulative gain and Qini curves at
// k = 0, …, n as defined above.
func Curves(score, y []float64, treated []bool) (gain, qini []float64, err error) {
	r, err := rank(score, y, treated)
	if err != nil {
		return nil, nil, err
	}
	s := r.pass(nil, nil)
	return s.gain, s.qini, nil
}

// passStats is what one pass over a (possibly resampled) ranking gives.
type passStats struct {
	gain, qini []float64 // only when asked
	qiniScore  float64
	auuc       float64
	value      []float64 // policy value per fraction
	none, all  float64   // value of treating no one / everyone
}

// pass walks the ranking once. counts, when not nil, gives the multiplicity
// of each position (a bootstrap resample); fractions are targeting shares.
func (r *ranking) pass(counts []int32, fractions []float64) passStats {
	n := len(r.y)
	var total, nt, sumTY, sumCY float64
	for k := range r.y {
		c := 1.0
		if counts != nil {
			c = float64(counts[k])
		}
		total += c
		if r.treated[k] {
			nt += c
			sumTY += c * r.y[k]
		} else {
			sumCY += c * r.y[k]
		}
	}
	e := nt / total
	st := passStats{none: sumCY / (1 - e) / total, all: sumTY / e / total}
	keep := counts == nil
	m := int(total)
	if keep {
		st.gain, st.qini = make([]float64, m+1), make([]float64, m+1)
	}
	cut := make([]int, len(fractions))
	for j, f := range fractions {
		cut[j] = int(math.Ceil(f*total - 1e-9))
	}
	st.value = make([]float64, len(fractions))
	var sumG, sumQ float64
	var cT, cC, yT, yC float64
	k := 0
	firstG, firstQ := -1, -1 // first k where each curve is defined
	var gAtFirst, qAtFirst float64
	nextCut := 0 // fractions are sorted ascending
	for nextCut < len(cut) && cut[nextCut] <= 0 {
		st.value[nextCut] = st.none
		nextCut++
	}
	for pos := 0; pos < n; pos++ {
		c := 1
		if counts != nil {
			c = int(counts[pos])
		}
		for ; c > 0; c-- {
			k++
			if r.treated[pos] {
				cT++
				yT += r.y[pos]
			} else {
				cC++
				yC += r.y[pos]
			}
			var g, q float64
			gDef, qDef := cT > 0 && cC > 0, cC > 0
			if gDef {
				g = (yT/cT - yC/cC) * float64(k)
			}
			if qDef {
				q = yT - yC*cT/cC
			}
			if gDef && firstG < 0 {
				firstG, gAtFirst = k, g
			}
			if qDef && firstQ < 0 {
				firstQ, qAtFirst = k, q
			}
			if gDef {
				sumG += g
			}
			if qDef {
				sumQ += q
			}
			if keep {
				st.gain[k], st.qini[k] = g, q
			}
			for nextCut < len(cut) && cut[nextCut] <= k {
				// Treat the top k: IPW value (1/n)Σ[π T Y/e + (1−π)(1−T) Y/(1−e)].
				st.value[nextCut] = (yT/e + (sumCY-yC)/(1-e)) / total
				nextCut++
			}
		}
	}
	for ; nextCut < len(cut); nextCut++ {
		st.value[nextCut] = st.all
	}
	// Interpolated points before the first defined one. causalml interpolates
	// the Qini curve, q(k) = q(f)·k/f, but for the gain it interpolates the lift
	// g/k and multiplies back: g(k) = (g(f)/f · k/f)·k = g(f)·k²/f², whose sum
	// over k = 1 … f−1 is g(f)·(f−1)(2f−1)/(6f).
	if f := float64(firstG); firstG > 1 {
		sumG += gAtFirst * (f - 1) * (2*f - 1) / (6 * f)
	}
	sumQ += qAtFirst * float64(firstQ-1) / 2
	if keep {
		for k := 1; k < firstG; k++ {
			r := float64(k) / float64(firstG)
			st.gain[k] = gAtFirst * r * r
		}
		for k := 1; k < firstQ; k++ {
			st.qini[k] = qAtFirst * float64(k) / float64(firstQ)
		}
	}
	gN := (yT/cT - yC/cC) * total
	qN := yT - yC*cT/cC
	st.auuc = sumG / math.Abs(gN) / (total + 1)
	st.qiniScore = sumQ/math.Abs(qN)/(total+1) - math.Copysign(0.5, qN)
	return st
}

// QiniScore returns the normalized Qini coefficient defined above
// (causalml's qini_score with normalize=True, random curve in expectation).
func QiniScore(score, y []float64, treated []bool) (float64, error) {
	r, err := rank(score, y, treated)
	if err != nil {
		return math.NaN(), err
	}
	return r.pass(nil, nil).qiniScore, nil
}

// AUUC returns the normalized area under the cumulative gain curve
// (causalml's auuc_score with normalize=True).
func AUUC(score, y []float64, treated []bool) (float64, error) {
	r, err := rank(score, y, treated)
	if err != nil {
		return math.NaN(), err
	}
	return r.pass(nil, nil).auuc, nil
}

// Bin is one quantile group of the ranking (bin 1 holds the highest scores).
type Bin struct {
	Bin       int
	N         int
	NTreated  int
	NControl  int
	MeanScore float64 // mean predicted uplift
	Uplift    float64 // observed mean(y|treated) − mean(y|control); NaN if an arm is empty
}

// Policy is the estimated value of treating the top Fraction of units by
// predicted uplift and no one else.
type Policy struct {
	Fraction float64
	Treated  int // units treated, ⌈Fraction·n⌉
	// Value is the inverse-probability-weighted mean outcome per unit under the
	// policy, (1/n)Σ[πᵢTᵢYᵢ/e + (1−πᵢ)(1−Tᵢ)Yᵢ/(1−e)], e the treated share.
	Value, ValueLow, ValueHigh float64
	// Gain is Value minus the value of treating no one, with its interval.
	Gain, GainLow, GainHigh float64
	// Random is the expected value of treating a random Fraction of units.
	Random float64
}

// EvalOptions configures Evaluate.
type EvalOptions struct {
	Bins      int         // quantile bins of the uplift table; default 10
	Fractions []float64   // targeting shares; default 0.1, 0.2, …, 1.0
	Bootstrap int         // bootstrap replicates; default 200; negative for none
	Alpha     float64     // 1 − interval coverage; default 0.05
	Src       rand.Source // randomness for the bootstrap (required when bootstrapping)
}

// Evaluation is the held-out evaluation of an uplift ranking.
type Evaluation struct {
	N, NTreated, NControl int
	Qini                  float64 // normalized Qini coefficient
	QiniLow, QiniHigh     float64 // percentile bootstrap interval (NaN without bootstrap)
	AUUC                  float64 // normalized AUUC
	Gain, QiniCurve       []float64
	Bins                  []Bin
	Policy                []Policy
}

// Evaluate scores a ranking on randomized held-out data: score is the
// predicted uplift of each row. The bootstrap resamples rows with
// replacement (the ranking's scores are kept) and gives percentile intervals
// for the Qini coefficient and the policy values.
func Evaluate(score, y []float64, treated []bool, opt EvalOptions) (*Evaluation, error) {
	if opt.Bins == 0 {
		opt.Bins = 10
	}
	if opt.Fractions == nil {
		for k := 1; k <= 10; k++ {
			opt.Fractions = append(opt.Fractions, float64(k)/10)
		}
	}
	if opt.Bootstrap == 0 {
		opt.Bootstrap = 200
	}
	if opt.Alpha == 0 {
		opt.Alpha = 0.05
	}
	opt.Fractions = slices.Clone(opt.Fractions)
	slices.Sort(opt.Fractions)
	for _, f := range opt.Fractions {
		if !(f >= 0 && f <= 1) {
			return nil, fmt.Errorf("uplift: targeting fraction %g is outside [0, 1]", f)
		}
	}
	if opt.Bootstrap > 0 && opt.Src == nil {
		return nil, errors.New("uplift: Evaluate needs a rand.Source to bootstrap")
	}
	r, err := rank(score, y, treated)
	if err != nil {
		return nil, err
	}
	n := len(r.y)
	if n < opt.Bins {
		return nil, fmt.Errorf("uplift: %d rows cannot fill %d bins", n, opt.Bins)
	}
	st := r.pass(nil, opt.Fractions)
	ev := &Evaluation{N: n, Qini: st.qiniScore, AUUC: st.auuc, Gain: st.gain, QiniCurve: st.qini, QiniLow: math.NaN(), QiniHigh: math.NaN()}
	for _, t := range r.treated {
		if t {
			ev.NTreated++
		}
	}
	ev.NControl = n - ev.NTreated
	for b := 0; b < opt.Bins; b++ {
		lo, hi := b*n/opt.Bins, (b+1)*n/opt.Bins
		bin := Bin{Bin: b + 1, N: hi - lo}
		var s, yt, yc float64
		for k := lo; k < hi; k++ {
			s += r.score[k]
			if r.treated[k] {
				bin.NTreated++
				yt += r.y[k]
			} else {
				bin.NControl++
				yc += r.y[k]
			}
		}
		bin.MeanScore = s / float64(bin.N)
		bin.Uplift = math.NaN()
		if bin.NTreated > 0 && bin.NControl > 0 {
			bin.Uplift = yt/float64(bin.NTreated) - yc/float64(bin.NControl)
		}
		ev.Bins = append(ev.Bins, bin)
	}
	for j, f := range opt.Fractions {
		ev.Policy = append(ev.Policy, Policy{
			Fraction: f, Treated: int(math.Ceil(f*float64(n) - 1e-9)),
			Value: st.value[j], Gain: st.value[j] - st.none,
			Random:   st.none + f*(st.all-st.none),
			ValueLow: math.NaN(), ValueHigh: math.NaN(), GainLow: math.NaN(), GainHigh: math.NaN(),
		})
	}
	if opt.Bootstrap < 0 {
		return ev, nil
	}
	rng := rand.New(opt.Src)
	qs := make([]float64, 0, opt.Bootstrap)
	vs := make([][]float64, len(opt.Fractions))
	gs := make([][]float64, len(opt.Fractions))
	counts := make([]int32, n)
	for b := 0; b < opt.Bootstrap; b++ {
		clear(counts)
		for range n {
			counts[rng.IntN(n)]++
		}
		if !bothArms(r.treated, counts) {
			continue
		}
		s := r.pass(counts, opt.Fractions)
		qs = append(qs, s.qiniScore)
		for j := range opt.Fractions {
			vs[j] = append(vs[j], s.value[j])
			gs[j] = append(gs[j], s.value[j]-s.none)
		}
	}
	ev.QiniLow, ev.QiniHigh = percentiles(qs, opt.Alpha)
	for j := range ev.Policy {
		ev.Policy[j].ValueLow, ev.Policy[j].ValueHigh = percentiles(vs[j], opt.Alpha)
		ev.Policy[j].GainLow, ev.Policy[j].GainHigh = percentiles(gs[j], opt.Alpha)
	}
	return ev, nil
}

func bothArms(treated []bool, counts []int32) bool {
	var t, c bool
	for k, n := range counts {
		if n > 0 {
			if treated[k] {
				t = true
			} else {
				c = true
			}
		}
	}
	return t && c
}

// percentiles returns the α/2 and 1−α/2 empirical quantiles (type 7, as R's
// quantile default) of v.
func percentiles(v []float64, alpha float64) (lo, hi float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	q := func(p float64) float64 {
		h := p * float64(len(s)-1)
		i := int(math.Floor(h))
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (h-float64(i))*(s[i+1]-s[i])
	}
	return q(alpha / 2), q(1 - alpha/2)
}
