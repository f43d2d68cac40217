package analysis

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestPlanStatsmodels checks Plan's three solves against statsmodels 0.13:
//
//	from statsmodels.stats.power import TTestIndPower, NormalIndPower
//	TTestIndPower().solve_power(effect_size=0.5/2, alpha=0.05, power=0.8, ratio=1)     # 252.12750122682306
//	NormalIndPower().solve_power(effect_size=0.5/2, alpha=0.05, power=0.8, ratio=1)    # 251.16353630180953
//	TTestIndPower().power(effect_size=0.5/2, nobs1=200, alpha=0.05, ratio=1)           # 0.7033333029230255
//	2*TTestIndPower().solve_power(nobs1=200, alpha=0.05, power=0.8, ratio=1)           # 0.5616704464334009
//	sd = math.sqrt(0.1*0.9)
//	NormalIndPower().solve_power(effect_size=0.01/sd, alpha=0.05, power=0.9, ratio=1, alternative='larger')  # 15414.925232210599
//	TTestIndPower().solve_power(effect_size=0.5/(2*math.sqrt(0.7)), alpha=0.05, power=0.8, ratio=1)         # 176.77998137170965
//
// statsmodels' two-sided power adds the opposite tail P(T' < −t), which R's
// power.t.test (strict = FALSE) and Lift leave out; it moves the two-sided
// values by less than 1e-5 relative here, the tolerance of those cases (the
// one-sided case has none and agrees to 1e-9).
func TestPlanStatsmodels(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    PlanInput
		solve string
		got   func(*PlanResult) float64
		want  float64
		tol   float64
		ceil  int64
	}{
		{"t sample size", PlanInput{SD: 2, Delta: 0.5}, "sample_size", func(r *PlanResult) float64 { return r.NPerArm }, 252.12750122682306, 1e-5, 253},
		{"normal sample size", PlanInput{SD: 2, Delta: 0.5, Normal: true}, "sample_size", func(r *PlanResult) float64 { return r.NPerArm }, 251.16353630180953, 1e-5, 252},
		{"t power", PlanInput{SD: 2, Delta: 0.5, NPerArm: 200}, "power", func(r *PlanResult) float64 { return r.Power }, 0.7033333029230255, 1e-5, 200},
		{"t mde", PlanInput{SD: 2, NPerArm: 200}, "mde", func(r *PlanResult) float64 { return r.Delta }, 0.5616704464334009, 1e-5, 200},
		{"proportion one-sided", PlanInput{BaselineRate: 0.1, Delta: 0.01, Power: 0.9, Alternative: Greater, Normal: true}, "sample_size", func(r *PlanResult) float64 { return r.NPerArm }, 15414.925232210599, 1e-9, 15415},
		{"CUPED", PlanInput{SD: 2, Delta: 0.5, VarianceReduction: 0.3}, "sample_size", func(r *PlanResult) float64 { return r.NPerArm }, 176.77998137170965, 1e-5, 177},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Plan(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if r.Solve != c.solve || math.Abs(c.got(r)-c.want) > c.tol*math.Abs(c.want) || r.NPerArmCeil != c.ceil || r.NTotal != 2*c.ceil {
				t.Errorf("solve %s, value %.10g, n %d total %d; want %s, %.10g (statsmodels), %d, %d", r.Solve, c.got(r), r.NPerArmCeil, r.NTotal, c.solve, c.want, c.ceil, 2*c.ceil)
			}
		})
	}
	// Duration: ⌈2·253/(1000·0.1)⌉ = 6 days.
	r, err := Plan(PlanInput{SD: 2, Delta: 0.5, DailyUnits: 1000, Traffic: 0.1})
	if err != nil || r.Days == nil || *r.Days != 6 {
		t.Errorf("days %v (%v), want 6", r.Days, err)
	}
}

func TestPlanInvalid(t *testing.T) {
	for _, c := range []struct {
		in    PlanInput
		field string
	}{
		{PlanInput{Delta: 1}, "sd"},
		{PlanInput{SD: 1, BaselineRate: 0.5, Delta: 1}, "baseline_rate"},
		{PlanInput{BaselineRate: 1.5, Delta: 1}, "baseline_rate"},
		{PlanInput{SD: 1}, "delta"},
		{PlanInput{SD: 1, NPerArm: 1}, "n_per_arm"},
		{PlanInput{SD: 1, Delta: 1, Alpha: 2}, "alpha"},
		{PlanInput{SD: 1, Delta: 1, Arms: 1}, "arms"},
		{PlanInput{SD: 1, Delta: 1, DailyUnits: -3}, "daily_units"},
		{PlanInput{SD: 1, Delta: 1, Alternative: "up"}, "alternative"},
		// Beyond what the integer fields hold: before, n_per_arm_ceil was
		// −9223372036854775808 and days −9223372036854775808.
		{PlanInput{SD: 1, NPerArm: 1e300}, "n_per_arm"},
		{PlanInput{SD: 1, Delta: 0.1, DailyUnits: 1e-18}, "daily_units"},
		{PlanInput{SD: 1, Delta: 0.1, DailyUnits: 10, Traffic: 1e-300}, "daily_units"},
	} {
		_, err := Plan(c.in)
		if f := fieldOf(err); f != c.field {
			t.Errorf("%+v: error %v (field %q), want field %q", c.in, err, f, c.field)
		}
	}
}

// TestExperimentProgress: a plan with a 5% relative MDE on a control mean of
// 10 (sd 2) needs the sample of an absolute 0.5: 253 per arm (statsmodels'
// 252.1275 above, rounded up). After 4 days with 100 and 60 units the slower
// arm gains 15 a day and needs (253 − 60)/15 = 12.8667 more days.
func TestExperimentProgress(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := start.Add(4 * 24 * time.Hour)
	p, err := ExperimentProgress(ProgressInput{Metric: "m", MDE: 0.05, Alpha: 0.05, ControlMean: 10, ControlSD: 2,
		Arms: map[string]int64{"control": 100, "treatment": 60}, Started: start, At: at})
	if err != nil {
		t.Fatal(err)
	}
	if p.RequiredPerArm != 253 || p.Reached || p.DaysLeft == nil || math.Abs(*p.DaysLeft-193.0/15) > 1e-9 {
		t.Fatalf("%+v; want 253 per arm, not reached, 12.8667 days left", p)
	}
	if want := at.Add(time.Duration(193.0 / 15 * 24 * float64(time.Hour))).Round(time.Second); !p.ExpectedAt.Equal(want) {
		t.Errorf("expected at %v, want %v", p.ExpectedAt, want)
	}
	p, err = ExperimentProgress(ProgressInput{Metric: "m", MDE: 0.05, Alpha: 0.05, ControlMean: 10, ControlSD: 2,
		Arms: map[string]int64{"control": 300, "treatment": 253}, Started: start, At: at})
	if err != nil || !p.Reached || *p.DaysLeft != 0 || p.ExpectedAt != nil {
		t.Errorf("%+v (%v); want reached", p, err)
	}
	if _, err := ExperimentProgress(ProgressInput{Metric: "m", MDE: 0.05, ControlMean: 0, ControlSD: 2}); err == nil {
		t.Error("a zero control mean gave a size")
	}
}

func fieldOf(err error) string {
	var e *experiment.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// A plan out of reach at the current rate: 15,697,761 units per arm (R 4:
// power.t.test(delta=0.001, sd=1, power=0.8)$n = 15697760.4290629) at 1 unit a
// day are 15,697,751 days away, beyond what a time.Duration holds (292 years).
// Before, expected_at wrapped around to 1734-08-24; now it is left out and the
// note says why, with days_left kept.
func TestExperimentProgressOutOfReach(t *testing.T) {
	at := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	p, err := ExperimentProgress(ProgressInput{Metric: "m", MDE: 0.001, Alpha: 0.05, ControlMean: 1, ControlSD: 1,
		Arms: map[string]int64{"control": 10, "treatment": 12}, Started: at.Add(-10 * 24 * time.Hour), At: at})
	if err != nil {
		t.Fatal(err)
	}
	if p.RequiredPerArm != 15697761 || p.Reached || p.DaysLeft == nil || *p.DaysLeft != 15697751 {
		t.Fatalf("%+v; want 15697761 per arm and 15697751 days left", p)
	}
	if p.ExpectedAt != nil || !strings.Contains(p.Note, "years") {
		t.Errorf("expected_at %v, note %q; want none and a note", p.ExpectedAt, p.Note)
	}
	if _, err := json.Marshal(p); err != nil {
		t.Error(err)
	}
}
