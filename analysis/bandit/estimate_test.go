package bandit

import (
	"errors"
	"math"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// Three cohorts of a binary reward, arm 0 the control; per arm (n, Σy).
func fixedCohorts() []Cohort {
	b := func(n, s float64) ArmStats { return ArmStats{N: n, Sum: s, SumSq: s} }
	return []Cohort{
		{Version: 0, Arms: []ArmStats{b(50, 10), b(40, 12), b(10, 4)}},
		{Version: 1, Arms: []ArmStats{b(30, 9), b(20, 5), b(50, 20)}},
		{Version: 2, Arms: []ArmStats{b(10, 1), b(10, 3), b(80, 30)}},
	}
}

func TestEstimateFixed(t *testing.T) {
	// numpy 1.24, the formula written out independently:
	//   N_k = Σ_a n_{k,a}; d_k = ȳ_{k,a} − ȳ_{k,0}; v_k = s²_{k,a}/n_{k,a} + s²_{k,0}/n_{k,0}
	//   (s² = (Σy² − (Σy)²/n)/(n−1)); est = Σ N_k d_k / Σ N_k; se = sqrt(Σ N_k² v_k)/Σ N_k;
	//   naive = Σ_k Σy_{k,a}/Σ_k n_{k,a} − Σ_k Σy_{k,0}/Σ_k n_{k,0}.
	want := []struct{ est, se, naive float64 }{
		{0.08333333333333333, 0.08103021055505856, 0.06349206349206349},
		{0.19166666666666668, 0.07820065603236663, 0.16349206349206352},
	}
	effs, err := Estimate(fixedCohorts(), 0, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		e := effs[i]
		if math.Abs(e.Estimate-w.est) > 1e-12 || math.Abs(e.SE-w.se) > 1e-12 || math.Abs(e.Naive-w.naive) > 1e-12 {
			t.Errorf("arm %d: %+v, want estimate %v se %v naive %v (numpy)", e.Arm, e, w.est, w.se, w.naive)
		}
		// scipy: stats.norm.ppf(0.975) = 1.959963984540054
		if math.Abs(e.Upper-(w.est+1.959963984540054*w.se)) > 1e-12 {
			t.Errorf("arm %d: upper %v, want est + 1.959963984540054·se", e.Arm, e.Upper)
		}
	}
}

func TestRegretFixed(t *testing.T) {
	// numpy 1.24: means_a = Σ_k N_k ȳ_{k,a}/Σ_k N_k = [0.2, 0.28333, 0.39167];
	// regret = Σ_a n_a (max means − means_a) = 24.833333333333336.
	if got := Regret(fixedCohorts()); math.Abs(got-24.833333333333336) > 1e-9 {
		t.Errorf("Regret = %v, want 24.833333333333336 (numpy)", got)
	}
}

func TestEstimateErrors(t *testing.T) {
	c := fixedCohorts()
	tests := []struct {
		name    string
		cohorts []Cohort
		control int
		alpha   float64
		kind    experiment.Kind
		field   string
	}{
		{"no cohorts", nil, 0, 0.05, experiment.InsufficientData, "cohorts"},
		{"control", c, 3, 0.05, experiment.Invalid, "control"},
		{"alpha", c, 0, 1, experiment.Invalid, "alpha"},
		{"ragged", append(append([]Cohort(nil), c...), Cohort{Arms: c[0].Arms[:2]}), 0, 0.05, experiment.Invalid, "cohorts[3].arms"},
		{"thin", []Cohort{{Arms: []ArmStats{{N: 1, Sum: 1, SumSq: 1}, {N: 5, Sum: 1, SumSq: 1}}}}, 0, 0.05, experiment.InsufficientData, "arms[1]"},
	}
	for _, tt := range tests {
		_, err := Estimate(tt.cohorts, tt.control, tt.alpha)
		var e *experiment.Error
		if !errors.As(err, &e) || e.Kind != tt.kind || e.Field != tt.field {
			t.Errorf("%s: %v, want %s on %q", tt.name, err, tt.kind, tt.field)
		}
	}
}
