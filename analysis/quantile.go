package analysis

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"

	"github.com/liftlab/lift/experiment"
	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// Quantile metrics: the difference of an arm's quantiles (p50, p90, p99 of a
// per-unit value) with a large-sample interval. QuantileRun is the one pipeline
// of "lift quantiles" and POST /v1/analyses/quantiles. It is a row-level
// estimator: quantiles have no sufficient statistics.

// DefaultQuantiles are the quantiles QuantileRun reports when none are asked.
var defaultQuantiles = [...]float64{0.5, 0.9, 0.99}

// DefaultQuantiles returns p50, p90 and p99.
func DefaultQuantiles() []float64 { return slices.Clone(defaultQuantiles[:]) }

// FlagQuantileTooFew: an arm has too few units for the quantile's standard
// error (Maritz–Jarrett needs 2 ≤ ⌊pn + ½⌋ < n); the effect holds the
// uninformative default (estimate 0, interval [0, 0], p 1).
const FlagQuantileTooFew = "quantile_too_few_units"

// ArmQuantile is one arm's sample quantile and its standard error.
type ArmQuantile struct {
	Arm string `json:"arm"`
	N   int    `json:"n"`
	// Units, for quantiles of events, is the number of units the N events
	// belong to (the clusters of the standard error).
	Units    int     `json:"units,omitempty"`
	Estimate float64 `json:"estimate"`
	SE       float64 `json:"se"`
}

// QuantileEffect compares one quantile of the treated arm with the control's.
type QuantileEffect struct {
	Quantile float64     `json:"quantile"`
	Control  ArmQuantile `json:"control"`
	Treated  ArmQuantile `json:"treated"`
	Absolute Effect      `json:"absolute"` // q_b − q_a
	Relative Effect      `json:"relative"` // (q_b − q_a)/|q_a|, delta method
	Flags    []string    `json:"flags,omitempty"`
}

// QuantileReport is the answer of QuantileRun.
type QuantileReport struct {
	Metric    string           `json:"metric,omitempty"`
	Control   string           `json:"control"`
	Treatment string           `json:"treatment"`
	Alpha     float64          `json:"alpha"`
	Method    string           `json:"method"`
	Quantiles []QuantileEffect `json:"quantiles"`
}

// QuantileMethod names the method in the report.
const QuantileMethod = "sample quantile (Hyndman & Fan type 6), Maritz-Jarrett standard errors, normal interval for the difference"

// QuantileEventMethod names the method of quantiles of events.
const QuantileEventMethod = "sample quantile of the events (Hyndman & Fan type 6), Woodruff (1952) interval with the events clustered by unit (R survey's svyquantile, interval.type \"mean\"), normal interval for the difference"

// QuantileOptions configure QuantileRun.
type QuantileOptions struct {
	Metric    string
	Control   string    // required
	Treatment string    // required
	Quantiles []float64 // each in (0, 1); default 0.5, 0.9, 0.99
	Alpha     float64   // default 0.05
	// Clusters, when not nil, makes the values events: Clusters[i] is the
	// unit of values[i], and each arm's standard error is Woodruff's with the
	// events clustered by unit (WoodruffSE) instead of Maritz–Jarrett's.
	Clusters []string
}

// WoodruffSE is the standard error of the p-quantile q of x from Woodruff's
// (1952) interval with the values clustered (R survey's svyquantile with
// interval.type "mean" and qrule "hf6", one-stage cluster design, normal
// critical value): p̂ = the share of values ≤ q, its variance
// c/(c−1)·Σ_k (Σ_{i∈k} (1{x_i ≤ q} − p̂))² / n² over the c clusters k, the
// interval [Q(p̂ − z·se), Q(p̂ + z·se)] with Q the type-6 quantile of x
// (SampleQuantile), and SE its length over 2z. sorted is x in increasing
// order and cluster[i] the cluster of sorted[i]; z is the critical value.
// ok is false below two clusters or when the interval for p̂ leaves [0, 1].
func WoodruffSE(sorted []float64, cluster []int, q, z float64) (se float64, ok bool) {
	n := float64(len(sorted))
	below := 0
	for _, x := range sorted {
		if x <= q {
			below++
		}
	}
	ph := float64(below) / n
	tot := map[int]float64{}
	for i, x := range sorted {
		d := -ph
		if x <= q {
			d = 1 - ph
		}
		tot[cluster[i]] += d
	}
	c := float64(len(tot))
	if c < 2 {
		return 0, false
	}
	var ss float64
	for _, t := range tot {
		ss += t * t
	}
	sp := math.Sqrt(c / (c - 1) * ss / (n * n))
	lo, hi := ph-z*sp, ph+z*sp
	if lo < 0 || hi > 1 {
		return 0, false
	}
	return (SampleQuantile(sorted, hi) - SampleQuantile(sorted, lo)) / (2 * z), true
}

// SampleQuantile is the sample quantile of sorted x, Hyndman & Fan's (1996)
// type 6 (R's quantile(type = 6), scipy's mquantiles(alphap=0, betap=0)): with
// h = (n+1)p clamped to [1, n], the linear interpolation between the order
// statistics x_(⌊h⌋) and x_(⌊h⌋+1).
func SampleQuantile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 1 {
		return sorted[0]
	}
	h := float64(n+1) * p
	k := math.Floor(math.Min(math.Max(h, 1), float64(n-1)))
	g := math.Min(math.Max(h-k, 0), 1)
	i := int(k)
	return (1-g)*sorted[i-1] + g*sorted[i]
}

// MaritzJarrettSE is the Maritz & Jarrett (1978) estimate of the standard error
// of the p-quantile of sorted x (Wilcox 2012, §3.5.1; scipy's mstats.mjci):
// with m = ⌊pn + ½⌋, A = m − 1, B = n − m and W_i = I_{i/n}(A, B) − I_{(i−1)/n}(A, B)
// (the regularized incomplete beta), C_k = Σ W_i x_(i)^k and SE = √(C₂ − C₁²).
// ok is false when m < 2 or m ≥ n (too few units for that quantile).
func MaritzJarrettSE(sorted []float64, p float64) (se float64, ok bool) {
	n := len(sorted)
	m := int(p*float64(n) + 0.5)
	if m < 2 || m >= n {
		return 0, false
	}
	a, b := float64(m-1), float64(n-m)
	// Centre on the m-th order statistic so that C₂ − C₁² keeps its digits.
	c := sorted[m-1]
	var c1, c2 float64
	prev := 0.0
	for i, x := range sorted {
		cur := mathext.RegIncBeta(a, b, float64(i+1)/float64(n))
		w := cur - prev
		prev = cur
		d := x - c
		c1 += w * d
		c2 += w * d * d
	}
	return math.Sqrt(math.Max(0, c2-c1*c1)), true
}

// QuantileRun compares the quantiles of o.Treatment's values with o.Control's.
// values[i] belongs to arms[i]; rows of other arms are left out. Bad options
// give an Invalid error naming the field.
func QuantileRun(ctx context.Context, arms []string, values []float64, o QuantileOptions) (*QuantileReport, error) {
	const op = "analysis.QuantileRun"
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if err := checkAlpha(op, o.Alpha); err != nil {
		return nil, err
	}
	if len(o.Quantiles) == 0 {
		o.Quantiles = DefaultQuantiles()
	}
	for i, p := range o.Quantiles {
		if !(p > 0 && p < 1) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("quantiles["+strconv.Itoa(i)+"]"), experiment.Errorf("must be in (0, 1), got %g", p))
		}
	}
	if o.Control == "" || o.Treatment == "" || o.Control == o.Treatment {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("treatment"), experiment.Errorf("control and treatment must be two different arms, got %q and %q", o.Control, o.Treatment))
	}
	if len(arms) != len(values) {
		panic("analysis.QuantileRun: arms and values differ in length")
	}
	if o.Clusters != nil && len(o.Clusters) != len(values) {
		panic("analysis.QuantileRun: clusters and values differ in length")
	}
	type obs struct {
		x float64
		c int
	}
	ids := map[string]int{}
	var xa, xb []float64
	var oa, ob []obs
	for i, v := range values {
		var ob2 *[]obs
		switch arms[i] {
		case o.Control:
			xa = append(xa, v)
			ob2 = &oa
		case o.Treatment:
			xb = append(xb, v)
			ob2 = &ob
		default:
			continue
		}
		if o.Clusters != nil {
			id, ok := ids[o.Clusters[i]]
			if !ok {
				id = len(ids)
				ids[o.Clusters[i]] = id
			}
			*ob2 = append(*ob2, obs{v, id})
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("value"), experiment.Errorf("row %d: value %g is not finite", i, v))
		}
	}
	if len(xa) == 0 || len(xb) == 0 {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Errorf("arms %q and %q need units, have %d and %d", o.Control, o.Treatment, len(xa), len(xb)))
	}
	slices.Sort(xa)
	slices.Sort(xb)
	z := distuv.UnitNormal
	q := z.Quantile(1 - o.Alpha/2)
	rep := &QuantileReport{Metric: o.Metric, Control: o.Control, Treatment: o.Treatment, Alpha: o.Alpha, Method: QuantileMethod}
	// Events: each arm's clusters in the order of its sorted values, and its units.
	var ca, cb []int
	unitsA, unitsB := 0, 0
	if o.Clusters != nil {
		rep.Method = QuantileEventMethod
		order := func(os []obs) ([]int, int) {
			slices.SortStableFunc(os, func(a, b obs) int { return cmp.Compare(a.x, b.x) })
			cs := make([]int, len(os))
			seen := map[int]bool{}
			for i, v := range os {
				cs[i] = v.c
				seen[v.c] = true
			}
			return cs, len(seen)
		}
		ca, unitsA = order(oa)
		cb, unitsB = order(ob)
	}
	for _, p := range o.Quantiles {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e := QuantileEffect{Quantile: p,
			Control: ArmQuantile{Arm: o.Control, N: len(xa), Estimate: SampleQuantile(xa, p)},
			Treated: ArmQuantile{Arm: o.Treatment, N: len(xb), Estimate: SampleQuantile(xb, p)},
		}
		var okA, okB bool
		if o.Clusters != nil {
			e.Control.Units, e.Treated.Units = unitsA, unitsB
			e.Control.SE, okA = WoodruffSE(xa, ca, e.Control.Estimate, q)
			e.Treated.SE, okB = WoodruffSE(xb, cb, e.Treated.Estimate, q)
		} else {
			e.Control.SE, okA = MaritzJarrettSE(xa, p)
			e.Treated.SE, okB = MaritzJarrettSE(xb, p)
		}
		e.Absolute, e.Relative = Effect{PValue: 1}, Effect{PValue: 1}
		normal := func(est, se float64) Effect {
			return Effect{Estimate: est, SE: se, CILow: est - q*se, CIHigh: est + q*se, PValue: 2 * z.Survival(math.Abs(est)/se)}
		}
		switch {
		case !okA || !okB:
			e.Flags = append(e.Flags, FlagQuantileTooFew)
		default:
			qa, qb := e.Control.Estimate, e.Treated.Estimate
			va, vb := e.Control.SE*e.Control.SE, e.Treated.SE*e.Treated.SE
			if va+vb == 0 {
				e.Flags = append(e.Flags, FlagZeroVariance)
				break
			}
			e.Absolute = normal(qb-qa, math.Sqrt(va+vb))
			if qa == 0 {
				e.Flags = append(e.Flags, FlagZeroControlMean)
				break
			}
			// Delta method for (q_b − q_a)/|q_a|, the arms independent.
			vr := vb/(qa*qa) + va*qb*qb/(qa*qa*qa*qa)
			if vr > 0 {
				e.Relative = normal((qb-qa)/math.Abs(qa), math.Sqrt(vr))
			}
		}
		rep.Quantiles = append(rep.Quantiles, e)
	}
	return rep, nil
}
