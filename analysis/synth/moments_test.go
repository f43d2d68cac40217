package synth

import (
	"math/rand/v2"
	"testing"
)

// TestFitMomentsAgrees checks that the refits of the inference (fitMoments,
// from cached cross products) give the weights of the direct fit (the
// matrices of the fitted periods, SimplexLS and the ridge correction through
// the eigendecomposition used by the cross-validation), on panels with a
// large common level (1e4) to exercise the pilot shift, with and without the
// intercept, over contiguous and non-contiguous sets of periods.
func TestFitMomentsAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 40 {
		p, _ := simPanel(rng, 1)
		for u := range p.Y {
			for t := range p.Y[u] {
				p.Y[u][t] += 1e4
			}
		}
		intercept := trial%2 == 0
		f := Options{Method: Augmented, Intercept: intercept}.fitter(p, seq(1, len(p.Units)), p.Y[0], nil)
		rows := seq(0, 30)
		if trial%4 >= 2 {
			rows = append(seq(0, 30), 33)
		}
		direct, err := f.fit(rows, nil) // λ = 0: the direct path with cross-validation
		if err != nil {
			t.Fatal(err)
		}
		f.Lambda = direct.Lambda
		mom, err := f.fitMoments(rows, p.Y[0])
		if err != nil {
			t.Fatal(err)
		}
		for j := range direct.W {
			near(t, "scm weight", mom.SCMW[j], direct.SCMW[j], 1e-7)
			near(t, "augmented weight", mom.W[j], direct.W[j], 1e-7)
		}
		for tt := range direct.Synthetic {
			near(t, "synthetic", mom.Synthetic[tt], direct.Synthetic[tt], 1e-6)
		}
	}
}
