package analysis

import (
	"math"
	"testing"
)

// R's documented power.t.test examples (R stats manual, ?power.t.test; outputs of
// R 4.x printed to 7 significant digits). R solves for n with uniroot at
// tol = .Machine$double.eps^0.25 ("at least four significant digits"), so
// sample sizes are compared to 1e-3.
func TestPowerTTestR(t *testing.T) {
	// power.t.test(n = 20, delta = 1) → power = 0.8689528
	p, err := Power(20, 1, PowerOptions{SD: 1})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "power(n=20)", p, 0.8689528, 5e-8)
	// power.t.test(n = 4, delta = 1) → power = 0.2224633
	p, _ = Power(4, 1, PowerOptions{SD: 1})
	near(t, "power(n=4)", p, 0.2224633, 5e-8)
	for _, c := range []struct {
		name  string
		o     PowerOptions
		wantN float64
	}{
		// power.t.test(power = .90, delta = 1) → n = 22.02110
		{"two-sided 0.9", PowerOptions{SD: 1, Power: 0.9}, 22.02110},
		// power.t.test(power = .80, delta = 1) → n = 16.71477
		{"two-sided 0.8", PowerOptions{SD: 1, Power: 0.8}, 16.71477},
		// power.t.test(power = .90, delta = 1, alternative = "one.sided") → n = 17.84713
		{"one-sided 0.9", PowerOptions{SD: 1, Power: 0.9, Alternative: Greater}, 17.84713},
	} {
		n, err := SampleSize(1, c.o)
		if err != nil {
			t.Fatal(err)
		}
		near(t, c.name, n, c.wantN, 1e-3)
	}
}

func TestPowerNormalAndCUPED(t *testing.T) {
	// Normal approximation n = 2σ²(z₀.₉₇₅ + z₀.₈)²/δ² with z₀.₉₇₅ = 1.959963985,
	// z₀.₈ = 0.841621234 (standard normal quantiles, R qnorm): 2·(2.801585219)² =
	// 2·7.848879739 = 15.69775948 for σ = δ = 1.
	n, err := SampleSize(1, PowerOptions{SD: 1, Normal: true})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "normal n", n, 15.69775948, 1e-7)
	// CUPED with ρ² = 0.5 halves the normal-approximation size exactly.
	nc, _ := SampleSize(1, PowerOptions{SD: 1, Normal: true, VarianceReduction: 0.5})
	near(t, "cuped n", nc, n/2, 1e-9)
	// With the exact t, the reduced size is that of σ' = σ·sqrt(1−ρ²).
	ne, _ := SampleSize(1, PowerOptions{SD: 1, VarianceReduction: 0.36})
	ns, _ := SampleSize(1, PowerOptions{SD: 0.8})
	near(t, "cuped exact", ne, ns, 1e-6)
	// MDE inverts SampleSize.
	d, err := MDE(22.02110, PowerOptions{SD: 1, Power: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "mde", d, 1, 1e-4)
	// Duration: 2 arms × 22.0211 units at 10 units/day and 50% traffic → ⌈8.81⌉ = 9 days.
	days, err := Duration(22.0211, 2, 10, 0.5)
	if err != nil || days != 9 {
		t.Errorf("Duration = %d, %v; want 9", days, err)
	}
}

func TestPowerInvalid(t *testing.T) {
	for _, o := range []PowerOptions{{}, {SD: 1, Alpha: 2}, {SD: 1, Power: 1}, {SD: 1, VarianceReduction: 1}, {SD: math.NaN()}} {
		if _, err := SampleSize(1, o); err == nil {
			t.Errorf("SampleSize(%+v) gave no error", o)
		}
	}
	if _, err := SampleSize(0, PowerOptions{SD: 1}); err == nil {
		t.Error("SampleSize(delta 0) gave no error")
	}
	if _, err := Duration(10, 1, 10, 1); err == nil {
		t.Error("Duration(1 arm) gave no error")
	}
}
