package privacy

import (
	"fmt"

	"github.com/liftlab/lift/experiment"
)

// A release from sufficient statistics; zeroNoise stands in for the library's noise
// so that the output is reproducible. The interval still accounts for the noise a
// real release adds (Laplace at ε/3 per query): by hand, h = 50, so the noise
// variance of the control mean is (2·150² + 30²·2·3²)/10000² ≈ 0.0006, next to a
// sampling variance of 400/10000 = 0.04.
func ExampleNewRelease() {
	b := experiment.Bounds{Lower: 0, Upper: 100}
	in := &Input{
		Control: "control",
		Units:   []Count{{"control", 10000}, {"treatment", 10000}},
		Metrics: []MetricStats{{Metric: "revenue", Bounds: b, Variants: []Stats{
			{Variant: "control", N: 10000, Sum: 200000, SumSq: 8e6},
			{Variant: "treatment", N: 10000, Sum: 210000, SumSq: 8.5e6},
		}}},
	}
	r, err := NewRelease(in, Params{Epsilon: 1}, Options{Noise: zeroNoise{}})
	if err != nil {
		panic(err)
	}
	c := r.Metrics[0].Comparisons[0]
	fmt.Printf("lift %.2f, 95%% CI [%.2f, %.2f], noise adds %.4f to the variance of each mean\n",
		c.Absolute.Estimate, c.Absolute.CILow, c.Absolute.CIHigh, r.Metrics[0].Variants[0].NoiseVar)
	// Output:
	// lift 1.00, 95% CI [0.44, 1.56], noise adds 0.0006 to the variance of each mean
}
