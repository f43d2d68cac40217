package privacy

import (
	"errors"
	"math"
	"math/rand/v2"

	"github.com/google/differential-privacy/go/v3/noise"
)

// zeroNoise adds nothing, for exact checks; its thresholds are Laplace's.
type zeroNoise struct{}

func (zeroNoise) AddNoiseInt64(x, _, _ int64, _, _ float64) (int64, error)             { return x, nil }
func (zeroNoise) AddNoiseFloat64(x float64, _ int64, _, _, _ float64) (float64, error) { return x, nil }
func (zeroNoise) Threshold(l0 int64, lInf, eps, nd, td float64) (float64, error) {
	return noise.Laplace().Threshold(l0, lInf, eps, nd, td)
}
func (zeroNoise) ComputeConfidenceIntervalInt64(int64, int64, int64, float64, float64, float64) (noise.ConfidenceInterval, error) {
	return noise.ConfidenceInterval{}, errors.New("not used")
}
func (zeroNoise) ComputeConfidenceIntervalFloat64(float64, int64, float64, float64, float64, float64) (noise.ConfidenceInterval, error) {
	return noise.ConfidenceInterval{}, errors.New("not used")
}

// seededNoise draws Laplace noise of scale b = L0·L∞/ε (Dwork and Roth 2014, Def. 3.3)
// or Gaussian noise of σ = noise.SigmaForGaussian from a seeded source, so that
// statistical tests are reproducible. The library's own noise reads crypto/rand.
type seededNoise struct {
	r     *rand.Rand
	gauss bool
}

func newSeeded(seed uint64, gauss bool) *seededNoise {
	return &seededNoise{r: rand.New(rand.NewPCG(seed, 2)), gauss: gauss}
}

func (s *seededNoise) draw(l0 int64, lInf, eps, delta float64) float64 {
	if s.gauss {
		return noise.SigmaForGaussian(l0, lInf, eps, delta) * s.r.NormFloat64()
	}
	b := float64(l0) * lInf / eps
	return b * (s.r.ExpFloat64() - s.r.ExpFloat64()) // difference of exponentials is Laplace(b)
}

func (s *seededNoise) AddNoiseInt64(x, l0, lInf int64, eps, delta float64) (int64, error) {
	return x + int64(math.Round(s.draw(l0, float64(lInf), eps, delta))), nil
}
func (s *seededNoise) AddNoiseFloat64(x float64, l0 int64, lInf, eps, delta float64) (float64, error) {
	return x + s.draw(l0, lInf, eps, delta), nil
}
func (s *seededNoise) Threshold(l0 int64, lInf, eps, nd, td float64) (float64, error) {
	if s.gauss {
		return noise.Gaussian().Threshold(l0, lInf, eps, nd, td)
	}
	return noise.Laplace().Threshold(l0, lInf, eps, nd, td)
}
func (s *seededNoise) ComputeConfidenceIntervalInt64(int64, int64, int64, float64, float64, float64) (noise.ConfidenceInterval, error) {
	return noise.ConfidenceInterval{}, errors.New("not used")
}
func (s *seededNoise) ComputeConfidenceIntervalFloat64(float64, int64, float64, float64, float64, float64) (noise.ConfidenceInterval, error) {
	return noise.ConfidenceInterval{}, errors.New("not used")
}

var (
	_ noise.Noise = zeroNoise{}
	_ noise.Noise = (*seededNoise)(nil)
)
