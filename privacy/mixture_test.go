package privacy

import (
	"math"
	"testing"
)

// TestMixQuantile checks the critical values of the normal-Laplace error against
// scipy, computed by numerical integration of the convolution:
//
//	from scipy import stats, integrate, optimize
//	def cdf(x, f):
//	    s, b = (1-f)**.5, (f/2)**.5
//	    g = lambda l: stats.laplace.pdf(l, scale=b)*stats.norm.cdf((x-l)/s)
//	    return integrate.quad(g, -60*b, 60*b, limit=400, points=[0, x])[0]
//	optimize.brentq(lambda x: cdf(x, f) - (1 - a/2), 0.5, 20)
func TestMixQuantile(t *testing.T) {
	for _, c := range []struct{ alpha, f, want float64 }{
		{0.05, 0, 1.96},
		{0.05, 0.1, 1.9615},
		{0.05, 0.3, 1.9703},
		{0.05, 0.5, 1.9886},
		{0.05, 0.7, 2.0257},
		{0.05, 0.9, 2.0841},
		{0.05, 0.99, 2.1148},
		{0.05, 1, 2.1183},
		{0.001, 0.1, 3.3245},
		{0.001, 0.5, 3.9539},
		{0.001, 0.9, 4.7084},
		{0.001, 1, 4.8845},
	} {
		if got := mixQuantile(c.alpha, c.f); math.Abs(got-c.want) > 6e-5 {
			t.Errorf("mixQuantile(%g, %g) = %.5f, want %.4f (scipy)", c.alpha, c.f, got, c.want)
		}
		if p := mixPValue(c.want, c.f); math.Abs(p-c.alpha) > 0.01*c.alpha {
			t.Errorf("mixPValue(%g, %g) = %.6f, want %g", c.want, c.f, p, c.alpha)
		}
	}
	// Small noise shares must not overflow (σ/b large).
	if p := mixPValue(1.96, 1e-12); math.Abs(p-0.05) > 1e-4 {
		t.Errorf("mixPValue(1.96, 1e-12) = %g, want 0.05", p)
	}
}
