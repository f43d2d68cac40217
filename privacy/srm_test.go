package privacy

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/analysis"
)

// TestSRMTestExample: the counts of an exact 400/400 split released with Laplace
// noise of sd √2/0.02 = 70.7 as 633/396. The plain chi-square test says p = 1.5e-13
// (scipy: stats.chi2.sf(2*(633-514.5)**2/514.5, 1) = 1.4879e-13), a false alarm;
// with the noise in the null distribution p = 0.03882, by numerical integration:
//
//	d, s, b = 633-514.5, (1029*.25)**.5, (70.71**2*.5/2)**.5
//	g = lambda l: stats.laplace.pdf(l, scale=b)*stats.norm.sf((d-l)/s)
//	2*integrate.quad(g, -80*b, 80*b, limit=500, points=[0, d])[0]  # 0.038821
func TestSRMTestExample(t *testing.T) {
	sd := math.Sqrt2 / 0.02
	got := SRMTest([]NoisyCount{{"control", 633, sd}, {"treatment", 396, sd}}, []float64{0.5, 0.5}, 0)
	if math.Abs(got.PValue-0.038821) > 1e-5 || got.Mismatch || got.Threshold != 0.001 {
		t.Errorf("SRMTest = %+v, want p = 0.038821 (scipy), no mismatch at 0.001", got)
	}
	if p := analysis.SRM([]float64{633, 396}, []float64{0.5, 0.5}); math.Abs(p-1.4879e-13)/1.4879e-13 > 1e-3 {
		t.Errorf("the plain chi-square on the noised counts: p = %g, want 1.4879e-13 (scipy)", p)
	}
	// Without noise the test is the chi-square test (analysis.SRM).
	exact := SRMTest([]NoisyCount{{"a", 5200, 0}, {"b", 4800, 0}}, []float64{0.5, 0.5}, 0)
	if want := analysis.SRM([]float64{5200, 4800}, []float64{0.5, 0.5}); math.Abs(exact.PValue-want) > 1e-12 {
		t.Errorf("noise-free SRMTest p = %g, want the chi-square's %g", exact.PValue, want)
	}
}

// TestSRMFalseAlarms simulates releases of counts with no sample-ratio mismatch
// (binomial or multinomial splits, Laplace count noise at ε/5 per count as in a
// release with two metrics) at ε ∈ {0.05, 0.1, 1} and 100 to 4,000 units. The rate
// of p < 0.001 must stay at most 0.001 and the rate of p < 0.05 at most 0.05, each
// plus 4 binomial standard errors of 20,000 releases (0.0009 and 0.0062). The plain
// chi-square test on the same noised counts must exceed those rates somewhere, or
// the simulation could not tell.
func TestSRMFalseAlarms(t *testing.T) {
	if testing.Short() {
		t.Skip("Monte-Carlo simulation; skipped with -short")
	}
	const sims = 20000
	tol001 := 4 * math.Sqrt(0.001*0.999/sims)
	tol05 := 4 * math.Sqrt(0.05*0.95/sims)
	worstPlain := 0.0
	seed := uint64(10)
	for _, w := range [][]float64{{0.5, 0.5}, {0.05, 0.95}, {1.0 / 3, 1.0 / 3, 1.0 / 3}} {
		for _, eps := range []float64{0.05, 0.1, 1} {
			for _, total := range []int{100, 400, 4000} {
				if len(w) > 2 && total > 400 {
					continue // three arms: the small corners only, to keep the test short
				}
				seed++
				name := fmt.Sprintf("w=%.2g/eps=%g/N=%d", w[0], eps, total)
				rng := rand.New(rand.NewPCG(seed, 3))
				sd := math.Sqrt2 * 5 / eps
				var a001, a05, plain int
				units := make([]NoisyCount, len(w))
				counts := make([]float64, len(w))
				for range sims {
					raw := make([]int64, len(w))
					multi := total // units still to draw one by one
					switch {
					case w[0] == 0.5: // Binomial(N, ½): the ones among N random bits
						for left := total; left > 0; left -= 64 {
							x := rng.Uint64()
							if left < 64 {
								x &= 1<<left - 1
							}
							raw[0] += int64(bits.OnesCount64(x))
						}
						raw[1] = int64(total) - raw[0]
						multi = 0
					case len(w) == 2:
						for range total {
							if rng.Float64() < w[0] {
								raw[0]++
							}
						}
						raw[1] = int64(total) - raw[0]
						multi = 0
					}
					for range multi {
						u, acc := rng.Float64(), 0.0
						for i, wi := range w {
							acc += wi
							if u < acc || i == len(w)-1 {
								raw[i]++
								break
							}
						}
					}
					for i := range w {
						nz := int64(math.Round(sd / math.Sqrt2 * (rng.ExpFloat64() - rng.ExpFloat64())))
						units[i] = NoisyCount{Variant: fmt.Sprint(i), N: max(raw[i]+nz, 0), NoiseSD: sd}
						counts[i] = float64(units[i].N)
					}
					r := SRMTest(units, w, 0)
					if r.PValue < 0.001 {
						a001++
					}
					if r.PValue < 0.05 {
						a05++
					}
					if analysis.SRM(counts, w) < 0.001 {
						plain++
					}
				}
				r001, r05, rp := float64(a001)/sims, float64(a05)/sims, float64(plain)/sims
				if r001 > 0.001+tol001 || r05 > 0.05+tol05 {
					t.Errorf("%s: false alarms at 0.001: %.4f, at 0.05: %.4f; want ≤ %.4f and ≤ %.4f", name, r001, r05, 0.001+tol001, 0.05+tol05)
				}
				worstPlain = max(worstPlain, rp)
				t.Logf("%s: false alarms %.4f at 0.001, %.4f at 0.05 (plain chi-square %.4f)", name, r001, r05, rp)
			}
		}
	}
	if worstPlain < 0.01 {
		t.Errorf("the plain chi-square's false alarms stayed below %.4f: the simulation cannot tell", worstPlain)
	}
}
