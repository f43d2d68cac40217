package synth

import (
	"math"
)

// conformalAverage is the conformal test of Chernozhukov, Wüthrich & Zhu
// (2021, JASA 116(536):1849–1864, §2–3) for the sharp null that the effect is
// θ in every post period: subtract θ from the treated's post-period outcomes,
// refit the weights on all T periods (the null makes them exchangeable with
// the pre-period), take the residuals u, and compare
//
//	S(u) = (1/T₁) Σ_{t ≥ T₀} |uₜ|                        (q = 1)
//
// with its value under the T moving-block permutations (cyclic shifts
// u_{(t+s) mod T}): p(θ) = (1/T) Σₛ 1{S(uₛ) ≥ S(u)}. The p-value of "no
// effect" is p(0); the interval is {θ : p(θ) > α}, found by bisection from
// the estimate outward (a connected set is assumed, as in CWZ's and
// augsynth's grids). The ridge penalty of the augmented method is the one
// chosen on the pre-period.
func conformalAverage(f *fitter, T0 int, y []float64, est, alpha, scale float64) (*Conformal, error) {
	pv := func(theta float64) (float64, error) { return conformalP(f, T0, y, theta) }
	p0, err := pv(0)
	if err != nil {
		return nil, err
	}
	iv, err := invert(pv, est, scale, alpha)
	if err != nil {
		return nil, err
	}
	return &Conformal{PValue: p0, Interval: iv, Permutations: len(y)}, nil
}

// conformalPeriod is the same test for the effect in one post period t
// alone: the weights are refitted on the pre-period and t, and S(u) = |u_t|
// is ranked among the T₀ + 1 residuals (every cyclic shift of the one
// post-period slot), so p(θ) = #{s : |uₛ| ≥ |u_t|}/(T₀ + 1) (CWZ 2021, §2.3,
// pointwise intervals).
func conformalPeriod(f *fitter, T0, t int, y []float64, est, alpha, scale float64) (float64, *Interval, error) {
	rows := append(seq(0, T0), t)
	yy := make([]float64, len(y))
	pv := func(theta float64) (float64, error) {
		copy(yy, y)
		yy[t] -= theta
		res, err := f.fit(rows, yy)
		if err != nil {
			return 0, err
		}
		last := math.Abs(yy[t] - res.Synthetic[t])
		n := 0
		for _, r := range rows {
			if math.Abs(yy[r]-res.Synthetic[r]) >= last*(1-1e-12) {
				n++
			}
		}
		return float64(n) / float64(len(rows)), nil
	}
	p0, err := pv(0)
	if err != nil {
		return 0, nil, err
	}
	iv, err := invert(pv, est, scale, alpha)
	if err != nil {
		return 0, nil, err
	}
	return p0, &iv, nil
}

// invert returns {θ : p(θ) > α} as an interval around est: from est it
// doubles a step (scale, the pre-period RMSPE) outward until p ≤ α, then
// bisects 30 times between the last kept and the first rejected value. After
// 60 doublings without a rejection that side is unbounded; when est itself
// is rejected the set is reported empty.
func invert(p func(float64) (float64, error), est, scale, alpha float64) (Interval, error) {
	if !(scale > 0) {
		scale = 1e-6 * (1 + math.Abs(est))
	}
	p0, err := p(est)
	if err != nil {
		return Interval{}, err
	}
	if p0 <= alpha {
		return Interval{Empty: true}, nil
	}
	var out Interval
	for _, sgn := range []float64{-1, 1} {
		in, step := est, scale
		var outside float64
		found := false
		for range 60 {
			th := est + sgn*step
			pv, err := p(th)
			if err != nil {
				return Interval{}, err
			}
			if pv <= alpha {
				outside, found = th, true
				break
			}
			in, step = th, 2*step
		}
		if !found {
			continue
		}
		for range 30 {
			mid := (in + outside) / 2
			pv, err := p(mid)
			if err != nil {
				return Interval{}, err
			}
			if pv > alpha {
				in = mid
			} else {
				outside = mid
			}
		}
		v := in
		if sgn < 0 {
			out.Low = &v
		} else {
			out.High = &v
		}
	}
	return out, nil
}

// conformalP is p(θ) of conformalAverage.
func conformalP(f *fitter, T0 int, y []float64, theta float64) (float64, error) {
	T := len(y)
	yy := make([]float64, T)
	copy(yy, y)
	for t := T0; t < T; t++ {
		yy[t] -= theta
	}
	res, err := f.fit(seq(0, T), yy)
	if err != nil {
		return 0, err
	}
	u := make([]float64, T)
	for t := range T {
		u[t] = math.Abs(yy[t] - res.Synthetic[t])
	}
	stat := func(s int) float64 {
		v := 0.0
		for t := T0; t < T; t++ {
			v += u[(t+s)%T]
		}
		return v
	}
	s0 := stat(0)
	n := 0
	for s := range T {
		if stat(s) >= s0*(1-1e-12) {
			n++
		}
	}
	return float64(n) / float64(T), nil
}
