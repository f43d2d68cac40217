package assign

import (
	"math"

	"github.com/liftlab/lift/experiment"
)

// EqualWeights returns n weights of 1/n each, or an empty slice when n <= 0
// (GrowthBook's getEqualWeights).
func EqualWeights(n int) []float64 {
	if n <= 0 {
		return []float64{}
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / float64(n)
	}
	return w
}

// usableWeights reports whether weights can be used for n variants as they are:
// one per variant, each finite and non-negative, summing to within [0.99, 1.01].
// GrowthBook's JavaScript SDK checks only the length and the sum; the Go and
// Python SDKs also reject negative and non-finite weights, and so do we.
func usableWeights(n int, weights []float64) bool {
	if len(weights) != n {
		return false
	}
	sum := 0.0
	for _, w := range weights {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return false
		}
		sum += w
	}
	return sum >= 0.99 && sum <= 1.01
}

// BucketRanges turns n variants with the given weights and coverage into their
// bucket ranges, GrowthBook's getBucketRanges: variant i owns
//
//	[cᵢ, cᵢ + coverage·wᵢ)   with cᵢ = w₀ + … + wᵢ₋₁,
//
// so each range starts where the variant's full-coverage range starts and only
// its end moves with coverage. Raising coverage therefore only lengthens ranges:
// a unit already in variant i stays in variant i.
//
// Coverage is clamped to [0, 1] (NaN counts as 0). When weights do not fit (nil,
// a length other than n, a negative or non-finite weight, or a sum outside
// [0.99, 1.01]) equal weights are used, as GrowthBook does.
//
// The end is computed as start + float64(coverage*w). The Go specification
// (https://go.dev/ref/spec#Floating_point_operators) lets an implementation fuse
// x*y + z into one operation, even across statements, and states: "An explicit
// floating-point type conversion rounds to the precision of the target type,
// preventing fusion that would discard that rounding." Without the conversion
// the compiler emits a fused multiply-add on arm64 (FMADDD), ppc64 and s390x;
// JavaScript never fuses, so a unit hashed exactly on a range end could land in
// a different variant than in a browser.
func BucketRanges(n int, coverage float64, weights []float64) []experiment.Range {
	if !(coverage > 0) {
		coverage = 0
	} else if coverage > 1 {
		coverage = 1
	}
	if n < 0 {
		n = 0
	}
	if !usableWeights(n, weights) {
		weights = EqualWeights(n)
	}
	ranges := make([]experiment.Range, n)
	cumulative := 0.0
	for i, w := range weights {
		start := cumulative
		cumulative += w
		ranges[i] = experiment.Range{Start: start, End: start + float64(coverage*w)}
	}
	return ranges
}

// ChooseVariation returns the index of the first range holding n (Start <= n < End),
// or -1 when none does: the unit is outside the experiment's coverage.
func ChooseVariation(n float64, ranges []experiment.Range) int {
	for i, r := range ranges {
		if n >= r.Start && n < r.End {
			return i
		}
	}
	return -1
}

// Namespace is a slice [Range.Start, Range.End) of a named namespace, GrowthBook's
// name for what Lift calls a layer.
type Namespace struct {
	Name  string
	Range experiment.Range
}

// InNamespace reports whether unit falls in the namespace slice: whether
//
//	Hash("__"+ns.Name, unit, 1) = fnv(unit + "__" + name) mod 1000 / 1000
//
// lies in [Start, End). Experiments of one namespace with disjoint slices are
// mutually exclusive: every unit has one point in the namespace.
func InNamespace(unit string, ns Namespace) bool {
	return ns.Range.Contains(namespacePoint(unit, ns.Name))
}

// namespacePoint is Hash("__"+name, unit, 1), hashed without joining strings.
func namespacePoint(unit, name string) float64 {
	h := fnvString(fnvOffset, unit)
	h = fnvString(h, "__")
	return hashV1(h, name)
}
