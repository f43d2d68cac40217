package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
)

const powerDescription = `Power calculation for a two-arm test with equal arms (analysis.Plan, the
calculation POST /v1/analyses/power answers). Give the metric's spread (--sd,
or --baseline-rate for a proportion) and two of --delta and --n:

    --delta D          the sample size per arm to detect an absolute effect D
    --n N --delta D    the power with N units per arm
    --n N              the minimum detectable absolute effect with N per arm

The exact calculation is the noncentral t of R's power.t.test; --normal uses
the normal approximation n = 2σ²(1−ρ²)(z₁₋α/₂ + z₁₋β)²/δ². With
--daily-units (and --traffic) it adds the days until every arm has the sample.`

func runPower(ctx context.Context, e *env, args []string) error {
	var in analysis.PlanInput
	var alt, format string
	fs := e.flags("power", "--sd S (or --baseline-rate P) [--delta D] [--n N] [flags]", powerDescription)
	fs.Float64Var(&in.SD, "sd", 0, "per-unit standard deviation of the metric")
	fs.Float64Var(&in.BaselineRate, "baseline-rate", 0, "for a proportion: the control rate p (sd = sqrt(p(1-p)))")
	fs.Float64Var(&in.Delta, "delta", 0, "absolute effect to detect (treatment − control)")
	fs.Float64Var(&in.NPerArm, "n", 0, "units per arm")
	fs.Float64Var(&in.Alpha, "alpha", analysis.DefaultAlpha, "significance level")
	fs.Float64Var(&in.Power, "power", 0.8, "target power 1−β")
	fs.StringVar(&alt, "alternative", "two-sided", "two-sided, greater or less")
	fs.Float64Var(&in.VarianceReduction, "variance-reduction", 0, "CUPED's expected variance reduction ρ² in [0, 1)")
	fs.BoolVar(&in.Normal, "normal", false, "normal approximation instead of the noncentral t")
	fs.IntVar(&in.Arms, "arms", 2, "arms of the experiment (for the total and the duration)")
	fs.Float64Var(&in.DailyUnits, "daily-units", 0, "eligible units per day: adds the duration in days")
	fs.Float64Var(&in.Traffic, "traffic", 0, "share of the daily units entering the experiment, in (0, 1] (default 1)")
	fs.StringVar(&format, "format", "json", "output format: json or text")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if format != "json" && format != "text" {
		return experiment.E("power", experiment.Invalid, experiment.Field("--format"), experiment.Errorf("must be json or text, got %q", format))
	}
	// A flag given as 0 is a value to check, not a flag left out (which the
	// plan's zero means).
	var zero error
	fs.Visit(func(f *flag.Flag) {
		switch {
		case zero != nil:
		case f.Name == "sd" && in.SD == 0:
			zero = experiment.E("power", experiment.Invalid, experiment.Field("--sd"), experiment.Errorf("must be positive, got 0"))
		case f.Name == "baseline-rate" && in.BaselineRate == 0:
			zero = experiment.E("power", experiment.Invalid, experiment.Field("--baseline-rate"), experiment.Errorf("must be in (0, 1), got 0"))
		}
	})
	if zero != nil {
		return zero
	}
	in.Alternative = analysis.Alternative(alt)
	r, err := analysis.Plan(in)
	if err != nil {
		return flagError("power", err)
	}
	if format == "text" {
		return writePowerText(e.stdout, r)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// flagError renames an error's JSON field (n_per_arm, daily_units) to the flag
// that set it (--n, --daily-units).
func flagError(op string, err error) error {
	var e *experiment.Error
	if !errors.As(err, &e) || e.Field == "" {
		return err
	}
	flag := "--" + strings.ReplaceAll(e.Field, "_", "-")
	if e.Field == "n_per_arm" {
		flag = "--n"
	}
	msg := strings.TrimPrefix(e.Message(), e.Field+": ")
	return experiment.E(op, e.Kind, experiment.Field(flag), errors.New(msg))
}

func writePowerText(w io.Writer, r *analysis.PlanResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, alpha %g, %s, sd %.6g", r.Method, r.Alpha, r.Alternative, r.SD)
	if r.VarianceReduction > 0 {
		fmt.Fprintf(&b, " (CUPED variance reduction %.1f%%)", 100*r.VarianceReduction)
	}
	b.WriteString("\n")
	switch r.Solve {
	case "sample_size":
		fmt.Fprintf(&b, "sample size: %d per arm (%.2f), %d in total, for delta %.6g (d = %.4g) at power %g\n", r.NPerArmCeil, r.NPerArm, r.NTotal, r.Delta, r.StandardizedDelta, r.Power)
	case "power":
		fmt.Fprintf(&b, "power: %.4f with %g per arm against delta %.6g (d = %.4g)\n", r.Power, r.NPerArm, r.Delta, r.StandardizedDelta)
	case "mde":
		fmt.Fprintf(&b, "minimum detectable effect: %.6g (d = %.4g) with %g per arm at power %g\n", r.Delta, r.StandardizedDelta, r.NPerArm, r.Power)
	}
	if r.Days != nil {
		fmt.Fprintf(&b, "duration: %d days\n", *r.Days)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
