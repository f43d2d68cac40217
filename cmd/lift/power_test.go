package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/liftlab/lift/analysis"
)

// TestPowerCLI: "lift power" solves for the sample size, the power or the
// MDE. Values from statsmodels 0.13:
//
//	TTestIndPower().solve_power(effect_size=0.5/2, alpha=0.05, power=0.8, ratio=1)   # 252.12750122682306
//	TTestIndPower().power(effect_size=0.5/2, nobs1=200, alpha=0.05, ratio=1)         # 0.7033333029230255
//	sd = math.sqrt(0.1*0.9)
//	NormalIndPower().solve_power(effect_size=0.01/sd, alpha=0.05, power=0.9, ratio=1, alternative='larger')  # 15414.925232210599
func TestPowerCLI(t *testing.T) {
	for _, c := range []struct {
		args  []string
		value func(*analysis.PlanResult) float64
		want  float64
	}{
		{[]string{"--sd", "2", "--delta", "0.5"}, func(r *analysis.PlanResult) float64 { return r.NPerArm }, 252.12750122682306},
		{[]string{"--sd", "2", "--delta", "0.5", "--n", "200"}, func(r *analysis.PlanResult) float64 { return r.Power }, 0.7033333029230255},
		{[]string{"--baseline-rate", "0.1", "--delta", "0.01", "--power", "0.9", "--alternative", "greater", "--normal"}, func(r *analysis.PlanResult) float64 { return r.NPerArm }, 15414.925232210599},
	} {
		code, out, errs := runQuasi(t, append([]string{"power"}, c.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", c.args, code, errs)
		}
		var r analysis.PlanResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		// 1e-5 relative: statsmodels' two-sided power adds the opposite tail.
		if got := c.value(&r); math.Abs(got-c.want) > 1e-5*c.want {
			t.Errorf("%v: %.10g, want %.10g (statsmodels)", c.args, got, c.want)
		}
	}
	code, out, _ := runQuasi(t, "power", "--sd", "2", "--delta", "0.5", "--daily-units", "1000", "--traffic", "0.1", "--format", "text")
	if code != 0 || !strings.Contains(out, "253 per arm") || !strings.Contains(out, "duration: 6 days") {
		t.Errorf("text: %d %q; want 253 per arm and 6 days (⌈506/100⌉)", code, out)
	}
	for _, c := range []struct {
		args []string
		flag string // what the message must hold
	}{
		{[]string{"--delta", "1"}, "--sd:"},
		{[]string{"--sd", "1", "--n", "1"}, "--n:"},
		{[]string{"--sd", "1", "--delta", "1", "--daily-units", "-1"}, "--daily-units:"},
		{[]string{"--sd", "1", "--delta", "1", "--format", "xml"}, "--format:"},
		// Given as 0 is not left out (before: "--sd: is required").
		{[]string{"--baseline-rate", "0", "--delta", "0.01"}, "--baseline-rate:"},
		{[]string{"--sd", "0", "--delta", "0.01"}, "--sd: must be positive, got 0"},
	} {
		code, _, errs := runQuasi(t, append([]string{"power"}, c.args...)...)
		if code == 0 || !strings.Contains(errs, c.flag) {
			t.Errorf("%v: exit %d %q; want an error naming %s", c.args, code, errs, c.flag)
		}
	}
}
