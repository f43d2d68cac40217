package privacy

import (
	"fmt"
	"math"
	"time"

	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/liftlab/lift/experiment"
)

// Mechanism names the noise distribution of a release.
type Mechanism string

// The mechanisms.
const (
	Laplace  Mechanism = "laplace"  // pure ε-DP; δ is not used by the noise
	Gaussian Mechanism = "gaussian" // (ε, δ)-DP, calibrated by Balle and Wang (2018)
)

// Options configure releases.
type Options struct {
	// Mechanism is the noise distribution, Laplace by default. It also fixes the
	// noise variance that confidence intervals account for.
	Mechanism Mechanism
	// Noise draws the noise. nil means the library's noise for Mechanism
	// (noise.Laplace() or noise.Gaussian()); tests inject a zero-noise or seeded one
	// with the same scale.
	Noise noise.Noise
	// Alpha is the significance level of confidence intervals, default 0.05.
	Alpha float64
	// Now is the clock that picks the release period (Ledger.Release callers),
	// default time.Now.
	Now func() time.Time
}

// DefaultOptions returns Laplace noise from the library and α = 0.05.
func DefaultOptions() Options { return Options{Mechanism: Laplace, Alpha: 0.05} }

func (o Options) withDefaults() (Options, error) {
	if o.Mechanism == "" {
		o.Mechanism = Laplace
	}
	switch o.Mechanism {
	case Laplace, Gaussian:
	default:
		return o, experiment.E(experiment.Invalid, experiment.Field("mechanism"),
			experiment.Errorf(`must be "laplace" or "gaussian", got %q`, o.Mechanism))
	}
	if o.Noise == nil {
		if o.Mechanism == Gaussian {
			o.Noise = noise.Gaussian()
		} else {
			o.Noise = noise.Laplace()
		}
	}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return o, experiment.E(experiment.Invalid, experiment.Field("alpha"), experiment.Errorf("must be in (0, 1), got %g", o.Alpha))
	}
	return o, nil
}

// Params are the privacy parameters one release may spend.
type Params struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

func (p Params) validate(mech Mechanism) error {
	if !(p.Epsilon > 0) || math.IsInf(p.Epsilon, 0) {
		return experiment.E(experiment.Invalid, experiment.Field("epsilon"), experiment.Errorf("must be positive and finite, got %g", p.Epsilon))
	}
	if !(p.Delta >= 0 && p.Delta < 1) {
		return experiment.E(experiment.Invalid, experiment.Field("delta"), experiment.Errorf("must be in [0, 1), got %g", p.Delta))
	}
	if mech == Gaussian && p.Delta == 0 {
		return experiment.E(experiment.Invalid, experiment.Field("delta"), experiment.Errorf("Gaussian noise needs δ > 0"))
	}
	return nil
}

// Count is the number of units of a variant.
type Count struct {
	Variant string `json:"variant"`
	N       int64  `json:"n"`
}

// Stats are the sufficient statistics of one metric in one variant, computed over
// per-unit values already clamped to the metric's bounds (see Summarize).
type Stats struct {
	Variant string  `json:"variant"`
	N       int64   `json:"n"`      // units with a value
	Sum     float64 `json:"sum"`    // Σ y
	SumSq   float64 `json:"sum_sq"` // Σ y²
}

// Summarize clamps each per-unit value to b and returns its sufficient statistics.
// Values must already be aggregated per unit (one value per unit).
func Summarize(variant string, values []float64, b experiment.Bounds) Stats {
	s := Stats{Variant: variant, N: int64(len(values))}
	for _, v := range values {
		v = min(max(v, b.Lower), b.Upper)
		s.Sum += v
		s.SumSq += v * v
	}
	return s
}

// MetricStats are one metric's statistics for every variant.
type MetricStats struct {
	Metric string            `json:"metric"`
	Bounds experiment.Bounds `json:"bounds"` // per-unit contribution bounds the values were clamped to
	// OwnCount is set when the metric's n is not the variant's number of units (a
	// mean metric that leaves out units without events): its n is then noised as a
	// query of its own. Otherwise Stats.N must equal the variant's unit count and the
	// noised unit count is reused.
	OwnCount bool    `json:"own_count,omitempty"`
	Variants []Stats `json:"variants"`
}

// Input is what a release reads: units per variant and the metrics' statistics.
type Input struct {
	Control string        `json:"control"`
	Units   []Count       `json:"units"`
	Metrics []MetricStats `json:"metrics"`
}

// NoisyCount is a released unit count.
type NoisyCount struct {
	Variant string  `json:"variant"`
	N       int64   `json:"n"`        // noised, clamped at 0
	NoiseSD float64 `json:"noise_sd"` // standard deviation of the added noise
}

// VariantRelease is one metric's released numbers for one variant.
type VariantRelease struct {
	Variant string  `json:"name"`
	N       int64   `json:"n"`    // noised n, at least 1
	Sum     float64 `json:"sum"`  // noised Σ y
	Mean    float64 `json:"mean"` // noised Σ y / n, within the bounds
	// Variance is the per-unit variance the intervals use: the estimate from the
	// noised sums plus z_{0.975} standard deviations of its own noise, in (0, h²]
	// (see releaseMetric). It is never 0 when there is noise.
	Variance float64 `json:"variance"`
	// SamplingVar is Variance/N, the sampling variance of Mean; NoiseVar is the
	// variance of Mean due to the added noise (delta method, see meanNoiseVar).
	SamplingVar float64 `json:"sampling_var"`
	NoiseVar    float64 `json:"noise_var"`
	// FewUnits is set when the noised count is within five noise standard
	// deviations of zero: the mean is then mostly noise, and comparisons say so.
	FewUnits bool `json:"few_units,omitempty"`
}

// MetricRelease is one metric's release: variants and comparisons with control.
type MetricRelease struct {
	Metric      string            `json:"metric"`
	Bounds      experiment.Bounds `json:"bounds"`
	Variants    []VariantRelease  `json:"variants"`
	Comparisons []Comparison      `json:"comparisons"`
}

// Release is a differentially private release of an experiment's results.
type Release struct {
	Mechanism Mechanism       `json:"mechanism"`
	Epsilon   float64         `json:"epsilon"` // ε spent
	Delta     float64         `json:"delta"`   // δ spent (0 for Laplace)
	Alpha     float64         `json:"alpha"`
	Control   string          `json:"control"`
	Units     []NoisyCount    `json:"units"`
	Metrics   []MetricRelease `json:"metrics"`
}

// query is one noised quantity's share of the budget.
type query struct {
	eps, delta float64
}

// mechanism adds noise and knows its variance.
type mechanism struct {
	opt Options
	q   query
}

func (m mechanism) delta() float64 {
	if m.opt.Mechanism == Laplace {
		return 0
	}
	return m.q.delta
}

// variance of the noise added to a query of L0 sensitivity 1 and L∞ sensitivity
// lInf: 2(lInf/ε)² for Laplace (scale b = lInf/ε), σ² for Gaussian with σ from
// noise.SigmaForGaussian.
func (m mechanism) variance(lInf float64) float64 {
	if m.opt.Mechanism == Gaussian {
		s := noise.SigmaForGaussian(1, lInf, m.q.eps, m.q.delta)
		return s * s
	}
	b := lInf / m.q.eps
	return 2 * b * b
}

func (m mechanism) float(x, lInf float64) (float64, error) {
	if lInf == 0 {
		return x, nil
	}
	return m.opt.Noise.AddNoiseFloat64(x, 1, lInf, m.q.eps, m.delta())
}

func (m mechanism) int(x int64) (int64, error) {
	return m.opt.Noise.AddNoiseInt64(x, 1, 1, m.q.eps, m.delta())
}

// Queries returns how many noised queries a release of in makes: one unit count per
// variant (disjoint partitions, so one query), and per metric Σ(y−c), Σ(y−c)² and,
// with OwnCount, n. The release ε and δ are split equally over them.
func (in *Input) Queries() int {
	q := 1
	for _, m := range in.Metrics {
		q += 2
		if m.OwnCount {
			q++
		}
	}
	return q
}

func (in *Input) validate() error {
	const op = "privacy.Release"
	if len(in.Units) < 2 {
		return experiment.E(op, experiment.Invalid, experiment.Field("units"), experiment.Errorf("need at least two variants, got %d", len(in.Units)))
	}
	idx := map[string]int{}
	for i, u := range in.Units {
		if _, dup := idx[u.Variant]; dup {
			return experiment.E(op, experiment.Invalid, experiment.Field(fmt.Sprintf("units[%d].variant", i)), experiment.Errorf("variant %q listed twice", u.Variant))
		}
		if u.N < 0 {
			return experiment.E(op, experiment.Invalid, experiment.Field(fmt.Sprintf("units[%d].n", i)), experiment.Errorf("must not be negative, got %d", u.N))
		}
		idx[u.Variant] = i
	}
	if _, ok := idx[in.Control]; !ok {
		return experiment.E(op, experiment.Invalid, experiment.Field("control"), experiment.Errorf("control variant %q is not among the units' variants", in.Control))
	}
	for i, m := range in.Metrics {
		f := fmt.Sprintf("metrics[%d]", i)
		b := m.Bounds
		if !(b.Lower < b.Upper) || math.IsInf(b.Lower, 0) || math.IsInf(b.Upper, 0) {
			return experiment.E(op, experiment.Invalid, experiment.Field(f+".bounds"),
				experiment.Errorf("metric %q needs finite per-unit bounds lower < upper to be released privately, got [%g, %g]", m.Metric, b.Lower, b.Upper))
		}
		if len(m.Variants) != len(in.Units) {
			return experiment.E(op, experiment.Invalid, experiment.Field(f+".variants"), experiment.Errorf("metric %q has %d variants, the units have %d", m.Metric, len(m.Variants), len(in.Units)))
		}
		for j, s := range m.Variants {
			k, ok := idx[s.Variant]
			if !ok {
				return experiment.E(op, experiment.Invalid, experiment.Field(fmt.Sprintf("%s.variants[%d].variant", f, j)), experiment.Errorf("unknown variant %q", s.Variant))
			}
			if !m.OwnCount && s.N != in.Units[k].N {
				return experiment.E(op, experiment.Invalid, experiment.Field(fmt.Sprintf("%s.variants[%d].n", f, j)),
					experiment.Errorf("metric %q has n = %d in variant %q but the variant has %d units; set own_count for metrics over a subset of units", m.Metric, s.N, s.Variant, in.Units[k].N))
			}
			if s.N < 0 || math.IsNaN(s.Sum) || math.IsNaN(s.SumSq) {
				return experiment.E(op, experiment.Invalid, experiment.Field(fmt.Sprintf("%s.variants[%d]", f, j)), experiment.Errorf("bad statistics n=%d sum=%g sum_sq=%g", s.N, s.Sum, s.SumSq))
			}
		}
	}
	return nil
}

// NewRelease noises in with the parameters p. The unit counts per variant get one
// query; each metric gets Σ(y−c) with L∞ sensitivity h = (U−L)/2 and Σ((y−c)² − h²/2)
// with L∞ sensitivity h²/2, plus its own count when OwnCount; every query gets
// ε/Queries() (and δ/Queries() with Gaussian noise). Means are c + Σ̃(y−c)/ñ and
// variances (Σ̃(y−c)² − Σ̃(y−c)²/ñ)/(ñ−1) clamped to [0, h²].
func NewRelease(in *Input, p Params, opt Options) (*Release, error) {
	const op = "privacy.Release"
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, experiment.E(op, err)
	}
	if err := p.validate(opt.Mechanism); err != nil {
		return nil, experiment.E(op, err)
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	nq := float64(in.Queries())
	mech := mechanism{opt: opt, q: query{eps: p.Epsilon / nq, delta: p.Delta / nq}}
	r := &Release{Mechanism: opt.Mechanism, Epsilon: p.Epsilon, Delta: mech.delta() * nq, Alpha: opt.Alpha, Control: in.Control}

	countVar := mech.variance(1)
	units := map[string]int64{}
	for _, u := range in.Units {
		n, err := mech.int(u.N)
		if err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		n = max(n, 0)
		units[u.Variant] = n
		r.Units = append(r.Units, NoisyCount{Variant: u.Variant, N: n, NoiseSD: math.Sqrt(countVar)})
	}
	for _, m := range in.Metrics {
		mr, err := releaseMetric(m, units, countVar, mech)
		if err != nil {
			return nil, experiment.E(op, experiment.Field(m.Metric), err)
		}
		mr.Comparisons = compareAll(mr.Variants, in.Control, m.Bounds, opt.Alpha)
		r.Metrics = append(r.Metrics, *mr)
	}
	return r, nil
}

func releaseMetric(m MetricStats, units map[string]int64, countVar float64, mech mechanism) (*MetricRelease, error) {
	c := (m.Bounds.Lower + m.Bounds.Upper) / 2
	h := (m.Bounds.Upper - m.Bounds.Lower) / 2
	sumVar := mech.variance(h)
	sqVar := mech.variance(h * h / 2)
	countSD := math.Sqrt(countVar)
	mr := &MetricRelease{Metric: m.Metric, Bounds: m.Bounds}
	for _, s := range m.Variants {
		n := units[s.Variant]
		if m.OwnCount {
			var err error
			if n, err = mech.int(s.N); err != nil {
				return nil, err
			}
		}
		nf := float64(s.N)
		// Centre: Σ(y−c) = Σy − n c; Σ(y−c)² = Σy² − 2cΣy + n c².
		t := s.Sum - nf*c
		q := s.SumSq - 2*c*s.Sum + nf*c*c
		tn, err := mech.float(t, h)
		if err != nil {
			return nil, err
		}
		qn, err := mech.float(q-nf*h*h/2, h*h/2)
		if err != nil {
			return nil, err
		}
		nn := float64(max(n, 1))
		qn += nn * h * h / 2
		dev := tn / nn // mean of y−c
		dev = min(max(dev, -h), h)
		v := 0.0
		if nn > 1 {
			v = (qn - nn*dev*dev) / (nn - 1)
		}
		// The estimate v is noisy too: by the delta method its noise variance is
		// (σ²_Q + (2·dev)²·σ²_T)/n². Clamped at 0 it would often be exactly 0 when the
		// noise dominates, and the intervals would ignore the sampling error; the
		// intervals use instead the upper confidence bound v + z_{0.975}·sd(v) (a
		// margin for the nuisance parameter, in the manner of Berger and Boos 1994,
		// JASA 89, 1012–1016), at most h², the largest variance of a value in [L, U].
		vsd := math.Sqrt(sqVar+4*dev*dev*sumVar) / nn
		v = min(max(v, 0)+1.959963984540054*vsd, h*h)
		mr.Variants = append(mr.Variants, VariantRelease{
			Variant:     s.Variant,
			N:           int64(nn),
			Sum:         tn + nn*c,
			Mean:        c + dev,
			Variance:    v,
			SamplingVar: v / nn,
			NoiseVar:    meanNoiseVar(nn, dev, sumVar, countVar),
			FewUnits:    countSD > 0 && float64(n) < 5*countSD,
		})
	}
	return mr, nil
}

// meanNoiseVar is the variance that the noise adds to the mean c + T̃/ñ, by the delta
// method around the true (T, n):
//
//	Var ≈ (σ²_T + (T/n)² σ²_n) / n²
//
// where σ²_T and σ²_n are the noise variances of the centred sum and of the count.
func meanNoiseVar(n, dev, sumVar, countVar float64) float64 {
	return (sumVar + dev*dev*countVar) / (n * n)
}
