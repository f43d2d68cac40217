package privacy

import (
	"math"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func segment(name string, n int64) Segment {
	b := experiment.Bounds{Lower: 0, Upper: 1}
	half := n / 2
	return Segment{Name: name, Input: Input{Control: "c", Units: []Count{{"c", half}, {"t", n - half}}, Metrics: []MetricStats{{
		Metric: "converted", Bounds: b, Variants: []Stats{{"c", half, float64(half) / 4, float64(half) / 4}, {"t", n - half, float64(n-half) / 2, float64(n-half) / 2}},
	}}}}
}

func TestSegmentsSuppressSmall(t *testing.T) {
	segs := []Segment{segment("FR", 5000), segment("LU", 12), segment("DE", 3000), segment("MC", 30)}
	got, err := ReleaseSegments(segs, Params{Epsilon: 1, Delta: 1e-5}, Options{Noise: zeroNoise{}})
	if err != nil {
		t.Fatal(err)
	}
	// Laplace thresholding (the library's Threshold, Wilson et al. 2020): with ε/2 = 0.5
	// on the counts, L∞ = 1 and δ = 1e-5, k = 1 − ln(2δ)/0.5 = 1 + 2 ln(5e4) ≈ 22.64.
	near(t, "threshold", got.Threshold, 1+2*math.Log(5e4), 1e-6)
	if len(got.Kept) != 3 || got.Kept[0].Name != "FR" || got.Kept[1].Name != "DE" || got.Kept[2].Name != "MC" || got.Suppressed != 1 {
		t.Fatalf("kept %+v, suppressed %d; want FR, DE, MC kept and LU (12 units) suppressed", got.Kept, got.Suppressed)
	}
	r := got.Kept[0].Release
	near(t, "FR control rate", r.Metrics[0].Variants[0].Mean, 0.25, 1e-12)
	near(t, "FR treatment rate", r.Metrics[0].Variants[1].Mean, 0.5, 1e-12)
	if r.Epsilon != 0.5 {
		t.Errorf("per-segment release ε = %g, want ε/2 = 0.5", r.Epsilon)
	}
}

func TestSegmentsSuppressionRate(t *testing.T) {
	// A segment of a single unit must be released with probability ≤ δ; one of
	// threshold+20 units nearly always. 20,000 seeded draws each.
	nz := newSeeded(5, false)
	p := Params{Epsilon: 1, Delta: 1e-3}
	one, big := 0, 0
	for range 20000 {
		s, err := ReleaseSegments([]Segment{segment("one", 1)}, p, Options{Noise: nz})
		if err != nil {
			t.Fatal(err)
		}
		one += len(s.Kept)
		s, err = ReleaseSegments([]Segment{segment("big", int64(math.Ceil(s.Threshold))+20)}, p, Options{Noise: nz})
		if err != nil {
			t.Fatal(err)
		}
		big += len(s.Kept)
	}
	// δ = 1e-3 over 20,000 draws: expect ≤ 20 releases; allow 40 (Poisson tail).
	if one > 40 {
		t.Errorf("single-unit segment released %d times in 20000, want ≈ δ·20000 = 20 at most", one)
	}
	if big < 19900 {
		t.Errorf("large segment released %d times in 20000, want almost always", big)
	}
}

func TestSegmentsNeedDelta(t *testing.T) {
	_, err := ReleaseSegments([]Segment{segment("FR", 100)}, Params{Epsilon: 1}, Options{Noise: zeroNoise{}})
	if !experiment.Is(err, experiment.Invalid) {
		t.Fatalf("err = %v, want Invalid about δ", err)
	}
	_, err = ReleaseSegments([]Segment{segment("FR", 100), segment("FR", 10)}, Params{Epsilon: 1, Delta: 1e-5}, Options{Noise: zeroNoise{}})
	if !experiment.Is(err, experiment.Invalid) {
		t.Fatalf("err = %v, want Invalid about the duplicate", err)
	}
}
