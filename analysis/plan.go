package analysis

import (
	"fmt"
	"math"
	"time"

	"github.com/liftlab/lift/experiment"
)

// PlanInput is a power calculation as "lift power" and POST
// /v1/analyses/power take it: the metric's spread (SD, or BaselineRate for a
// proportion), the test (Alpha, Power, Alternative, VarianceReduction,
// Normal), and two of {Delta, NPerArm}:
//
//	Delta only       the sample size per arm (SampleSize)
//	NPerArm, Delta   the power (Power)
//	NPerArm only     the minimum detectable effect (MDE)
//
// With DailyUnits, Duration gives the days until every one of Arms arms
// (default 2) has the sample. Field names in errors are the JSON names.
type PlanInput struct {
	SD                float64     `json:"sd,omitempty" doc:"per-unit standard deviation of the metric; or baseline_rate"`
	BaselineRate      float64     `json:"baseline_rate,omitempty" doc:"for a proportion: the control rate p, sd = sqrt(p(1-p))"`
	Delta             float64     `json:"delta,omitempty" doc:"the absolute effect to detect (treatment − control)"`
	NPerArm           float64     `json:"n_per_arm,omitempty" doc:"units per arm: with delta the power, without it the MDE"`
	Alpha             float64     `json:"alpha,omitempty" doc:"significance level, default 0.05"`
	Power             float64     `json:"power,omitempty" doc:"target power 1−β, default 0.8"`
	Alternative       Alternative `json:"alternative,omitempty" doc:"two-sided (default), greater or less"`
	VarianceReduction float64     `json:"variance_reduction,omitempty" doc:"CUPED's expected ρ² in [0, 1)"`
	Normal            bool        `json:"normal,omitempty" doc:"normal approximation instead of the noncentral t"`
	Arms              int         `json:"arms,omitempty" doc:"arms of the experiment, default 2 (for the total and the duration)"`
	DailyUnits        float64     `json:"daily_units,omitempty" doc:"eligible units arriving per day: adds the duration"`
	Traffic           float64     `json:"traffic,omitempty" doc:"share of daily units entering the experiment, in (0, 1], default 1"`
}

// PlanResult is the answer of Plan.
type PlanResult struct {
	Solve             string      `json:"solve" doc:"sample_size, power or mde: what was computed"`
	SD                float64     `json:"sd"`
	Delta             float64     `json:"delta" doc:"the absolute effect (computed for mde)"`
	StandardizedDelta float64     `json:"standardized_delta" doc:"delta/sd (Cohen's d)"`
	NPerArm           float64     `json:"n_per_arm" doc:"units per arm, continuous as R's power.t.test (computed for sample_size)"`
	NPerArmCeil       int64       `json:"n_per_arm_ceil" doc:"n_per_arm rounded up: the plan"`
	NTotal            int64       `json:"n_total" doc:"arms × n_per_arm_ceil"`
	Power             float64     `json:"power" doc:"the power (computed for power; the target otherwise)"`
	Alpha             float64     `json:"alpha"`
	Alternative       Alternative `json:"alternative"`
	VarianceReduction float64     `json:"variance_reduction"`
	Method            string      `json:"method" doc:"noncentral t (R's power.t.test) or normal"`
	Arms              int         `json:"arms"`
	Days              *int        `json:"days,omitempty" doc:"days until every arm has n_per_arm_ceil units (with daily_units)"`
}

// maxPerArm bounds PlanInput.NPerArm, so that NTotal (up to 100 arms) fits in
// an int64; SampleSize searches below 1e13.
const maxPerArm = 1e15

// Plan runs the power calculation PlanInput describes.
func Plan(in PlanInput) (*PlanResult, error) {
	const op = "analysis.Plan"
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	switch {
	case in.SD != 0 && in.BaselineRate != 0:
		return nil, invalid("baseline_rate", "give sd or baseline_rate, not both")
	case in.BaselineRate != 0:
		if !(in.BaselineRate > 0 && in.BaselineRate < 1) {
			return nil, invalid("baseline_rate", "must be in (0, 1), got %g", in.BaselineRate)
		}
		in.SD = math.Sqrt(in.BaselineRate * (1 - in.BaselineRate))
	case in.SD == 0:
		return nil, invalid("sd", "is required (or baseline_rate for a proportion)")
	}
	if in.Arms == 0 {
		in.Arms = 2
	}
	if in.Arms < 2 || in.Arms > 100 {
		return nil, invalid("arms", "must be in [2, 100], got %d", in.Arms)
	}
	if math.IsNaN(in.Delta) || math.IsInf(in.Delta, 0) {
		return nil, invalid("delta", "must be a finite number, got %g", in.Delta)
	}
	if in.NPerArm != 0 && !(in.NPerArm >= 2 && in.NPerArm <= maxPerArm) {
		return nil, invalid("n_per_arm", "must be in [2, %g], got %g", float64(maxPerArm), in.NPerArm)
	}
	o := PowerOptions{Alpha: in.Alpha, Power: in.Power, SD: in.SD, Alternative: in.Alternative, VarianceReduction: in.VarianceReduction, Normal: in.Normal}
	if err := o.normalize(op); err != nil {
		return nil, err
	}
	out := &PlanResult{SD: in.SD, Delta: in.Delta, NPerArm: in.NPerArm, Power: o.Power, Alpha: o.Alpha, Alternative: o.Alternative,
		VarianceReduction: o.VarianceReduction, Method: "noncentral t", Arms: in.Arms}
	if o.Normal {
		out.Method = "normal"
	}
	var err error
	switch {
	case in.Delta != 0 && in.NPerArm == 0:
		out.Solve = "sample_size"
		out.NPerArm, err = SampleSize(in.Delta, o)
	case in.Delta != 0:
		out.Solve = "power"
		out.Power, err = Power(in.NPerArm, in.Delta, o)
	case in.NPerArm != 0:
		out.Solve = "mde"
		out.Delta, err = MDE(in.NPerArm, o)
	default:
		return nil, invalid("delta", "give delta (for the sample size), n_per_arm (for the MDE), or both (for the power)")
	}
	if err != nil {
		return nil, err
	}
	out.StandardizedDelta = math.Abs(out.Delta) / in.SD
	out.NPerArmCeil = int64(math.Ceil(out.NPerArm - 1e-9*out.NPerArm))
	out.NTotal = int64(in.Arms) * out.NPerArmCeil
	if in.DailyUnits != 0 || in.Traffic != 0 {
		d, err := Duration(float64(out.NPerArmCeil), in.Arms, in.DailyUnits, in.Traffic)
		if err != nil {
			return nil, err
		}
		out.Days = &d
	}
	return out, nil
}

// ProgressInput is what Progress needs of an experiment's plan and results.
type ProgressInput struct {
	Metric            string
	MDE               float64 // the plan's relative MDE
	Alpha             float64
	Power             float64 // default 0.8
	ControlMean       float64
	ControlSD         float64
	VarianceReduction float64 // CUPED's, when the metric is adjusted
	Arms              map[string]int64
	Started           time.Time // zero when unknown
	At                time.Time // when the results were computed
}

// Progress says whether an experiment has reached the sample its plan needs,
// and when it will at the current rate.
type Progress struct {
	Metric            string                 `json:"metric" doc:"the primary metric the plan is sized on"`
	MDE               float64                `json:"mde" doc:"the plan's relative minimum detectable effect"`
	MDEAbsolute       float64                `json:"mde_absolute" doc:"mde × the control mean"`
	ControlMean       float64                `json:"control_mean"`
	SD                float64                `json:"sd" doc:"the control arm's standard deviation"`
	VarianceReduction float64                `json:"variance_reduction" doc:"CUPED's, when the metric is adjusted"`
	Alpha             float64                `json:"alpha"`
	Power             float64                `json:"power"`
	RequiredPerArm    int64                  `json:"required_per_arm" doc:"units each arm needs (noncentral t, two-sided, equal arms)"`
	Arms              map[string]ArmProgress `json:"arms"`
	Reached           bool                   `json:"reached" doc:"every arm has required_per_arm units"`
	DaysRunning       *float64               `json:"days_running,omitempty" doc:"since the experiment started"`
	DaysLeft          *float64               `json:"days_left,omitempty" doc:"at each arm's rate so far, until the slowest arm has its sample"`
	ExpectedAt        *time.Time             `json:"expected_at,omitempty" doc:"computed_at + days_left, to the second"`
	Note              string                 `json:"note,omitempty"`
}

// ArmProgress is one arm's sample against the plan.
type ArmProgress struct {
	N           int64   `json:"n"`
	Fraction    float64 `json:"fraction" doc:"n / required_per_arm"`
	UnitsPerDay float64 `json:"units_per_day,omitempty"`
}

// ExperimentProgress sizes the plan with SampleSize (the absolute effect
// MDE·|control mean|, the control's SD, the CUPED variance reduction) and
// compares each arm's units with it. Each arm's rate is its units over the
// days since Started; the days left are those of the slowest arm,
// (required − n)/rate. Invalid when the MDE or the control's mean or spread do
// not allow a size.
func ExperimentProgress(in ProgressInput) (*Progress, error) {
	const op = "analysis.ExperimentProgress"
	if in.Power == 0 {
		in.Power = 0.8
	}
	p := &Progress{Metric: in.Metric, MDE: in.MDE, ControlMean: in.ControlMean, SD: in.ControlSD, VarianceReduction: in.VarianceReduction,
		Alpha: in.Alpha, Power: in.Power, Arms: map[string]ArmProgress{}}
	p.MDEAbsolute = in.MDE * math.Abs(in.ControlMean)
	if !(p.MDEAbsolute > 0) || math.IsInf(p.MDEAbsolute, 0) {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Errorf("the control mean of %q is %g: a relative MDE gives no absolute effect to size for", in.Metric, in.ControlMean))
	}
	n, err := SampleSize(p.MDEAbsolute, PowerOptions{Alpha: in.Alpha, Power: in.Power, SD: in.ControlSD, VarianceReduction: in.VarianceReduction})
	if err != nil {
		return nil, experiment.E(op, experiment.InsufficientData, err)
	}
	p.RequiredPerArm = int64(math.Ceil(n - 1e-9*n))
	p.Reached = true
	var days float64
	if !in.Started.IsZero() && in.At.After(in.Started) {
		days = in.At.Sub(in.Started).Hours() / 24
		p.DaysRunning = &days
	}
	left := 0.0
	for name, k := range in.Arms {
		a := ArmProgress{N: k, Fraction: float64(k) / float64(p.RequiredPerArm)}
		if k < p.RequiredPerArm {
			p.Reached = false
		}
		if days > 0 {
			a.UnitsPerDay = float64(k) / days
			if k < p.RequiredPerArm {
				if a.UnitsPerDay == 0 {
					left = math.Inf(1)
				} else {
					left = math.Max(left, float64(p.RequiredPerArm-k)/a.UnitsPerDay)
				}
			}
		}
		p.Arms[name] = a
	}
	switch {
	case p.Reached:
		zero := 0.0
		p.DaysLeft = &zero
	case days == 0:
		p.Note = "the experiment has no start time yet: no rate to project from"
	case math.IsInf(left, 1):
		p.Note = "an arm has no units yet: no rate to project from"
	case left*24*float64(time.Hour) >= math.MaxInt64:
		// Beyond a time.Duration (292 years): no date, which would wrap around.
		p.DaysLeft = &left
		p.Note = fmt.Sprintf("at the current rate the plan's sample is %.3g years away", left/365.25)
	default:
		p.DaysLeft = &left
		at := in.At.Add(time.Duration(left * 24 * float64(time.Hour))).Round(time.Second).UTC()
		p.ExpectedAt = &at
	}
	return p, nil
}
