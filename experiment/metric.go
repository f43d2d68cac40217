package experiment

import (
	"math"
	"time"
)

// Aggregation is how a metric turns a unit's events into one value.
type Aggregation string

// The per-unit aggregations.
const (
	Sum    Aggregation = "sum"    // Σ value
	Count  Aggregation = "count"  // number of events
	Mean   Aggregation = "mean"   // Σ value / number of events (units without events excluded)
	Binary Aggregation = "binary" // 1 if the unit has at least one event, else 0
	Ratio  Aggregation = "ratio"  // Σ numerator metric / Σ denominator metric, by the delta method
)

// Window is the conversion window relative to a unit's first exposure, in days:
// events with first_exposure + start_days <= ts < first_exposure + end_days count.
// MaturedOnly (a day-N retention metric, GrowthBook #4353) counts only the units
// whose window has ended by the analysis time (first_exposure + end_days <= then);
// the others are left out of the metric's units, and results say how many.
type Window struct {
	StartDays   float64 `json:"start_days"`
	EndDays     float64 `json:"end_days"`
	MaturedOnly bool    `json:"matured_only,omitempty"`
}

// Cap winsorizes per-unit values at one or both tails. The upper limit U is a
// fixed Value (or Upper, which may be zero or negative) or the Percentile (in
// (0, 1)) of the per-unit values; the lower limit L a fixed Lower or the
// LowerPercentile. Both percentiles are of the values before capping, and a
// value v becomes max(min(v, U), L).
type Cap struct {
	Value           float64  `json:"value,omitempty"`
	Upper           *float64 `json:"upper,omitempty"`
	Percentile      float64  `json:"percentile,omitempty"`
	Lower           *float64 `json:"lower,omitempty"`
	LowerPercentile float64  `json:"lower_percentile,omitempty"`
}

// UpperValue is the fixed upper cap (Value or Upper), if there is one.
func (c *Cap) UpperValue() (float64, bool) {
	switch {
	case c.Upper != nil:
		return *c.Upper, true
	case c.Value != 0:
		return c.Value, true
	}
	return 0, false
}

func (c *Cap) validate(op string) error {
	upper, fixedUpper := c.UpperValue()
	switch {
	case c.Value != 0 && c.Upper != nil:
		return invalid(op, "cap", "give value or upper (the same upper cap), not both")
	case fixedUpper && c.Percentile != 0:
		return invalid(op, "cap", "give either a value or a percentile for the upper cap, not both")
	case c.Lower != nil && c.LowerPercentile != 0:
		return invalid(op, "cap", "give either lower or lower_percentile for the lower cap, not both")
	case !fixedUpper && c.Percentile == 0 && c.Lower == nil && c.LowerPercentile == 0:
		return invalid(op, "cap", "give an upper cap (value, upper or percentile), a lower cap (lower or lower_percentile), or both")
	case c.Value < 0:
		return invalid(op, "cap.value", "must be positive, got %g (use upper for a cap at or below zero)", c.Value)
	case c.Upper != nil && !(math.Abs(*c.Upper) <= MaxBound):
		return invalid(op, "cap.upper", "must be finite and within ±%g, got %g", MaxBound, *c.Upper)
	case c.Lower != nil && !(math.Abs(*c.Lower) <= MaxBound):
		return invalid(op, "cap.lower", "must be finite and within ±%g, got %g", MaxBound, *c.Lower)
	case c.Percentile != 0 && !(c.Percentile > 0 && c.Percentile < 1):
		return invalid(op, "cap.percentile", "must be in (0, 1), got %g", c.Percentile)
	case c.LowerPercentile != 0 && !(c.LowerPercentile > 0 && c.LowerPercentile < 1):
		return invalid(op, "cap.lower_percentile", "must be in (0, 1), got %g", c.LowerPercentile)
	case c.Lower != nil && fixedUpper && !(*c.Lower < upper):
		return invalid(op, "cap.lower", "must be below the upper cap %g, got %g", upper, *c.Lower)
	case c.LowerPercentile != 0 && c.Percentile != 0 && !(c.LowerPercentile < c.Percentile):
		return invalid(op, "cap.lower_percentile", "must be below percentile %g, got %g", c.Percentile, c.LowerPercentile)
	}
	return nil
}

// Covariate asks for CUPED with the same metric over the Days before first exposure.
type Covariate struct {
	Days float64 `json:"days"`
}

// Bounds are per-unit contribution bounds for differentially private releases:
// each unit's value is clamped to [Lower, Upper] before it is summed.
type Bounds struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
}

// MaxBound is the largest magnitude of a metric's bounds: a unit's clamped value,
// its square and the sums over a billion units stay finite and exact enough, and
// the noise's sensitivity (U − L)/2 and (U − L)²/8 stay finite.
const MaxBound = 1e12

// Metric is a registered metric definition.
type Metric struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	EventType   string      `json:"event_type,omitempty"`
	Aggregation Aggregation `json:"aggregation"`
	Numerator   string      `json:"numerator,omitempty"`   // ratio: the numerator metric's name
	Denominator string      `json:"denominator,omitempty"` // ratio: the denominator metric's name
	Window      *Window     `json:"window,omitempty"`
	Cap         *Cap        `json:"cap,omitempty"`
	Covariate   *Covariate  `json:"covariate,omitempty"`
	Bounds      *Bounds     `json:"bounds,omitempty"`
	Higher      *bool       `json:"higher_is_better,omitempty"` // default true; false for guardrails such as unsubscribes
	// GuardrailMargin is the relative harm a guardrail tolerates (0.02: up to 2%
	// worse), default 0; see Guardrail.
	GuardrailMargin float64 `json:"guardrail_margin,omitempty"`

	// Version is the definition's version, set by the registry: 1 when the
	// metric is defined, one more at each change (PUT /v1/metrics/NAME). A
	// version never changes once written; experiments pin the versions they
	// read when they start.
	Version int `json:"version,omitempty"`
	// Deprecated metrics keep serving the experiments and snapshots that use
	// them but cannot be attached to new experiments or templates. The flag
	// belongs to the metric, not to a version: the registry sets it and
	// ignores it in a definition given to it.
	Deprecated bool `json:"deprecated,omitempty"`
}

// MetricVersion is one stored version of a metric definition.
type MetricVersion struct {
	Version    int       `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	Actor      string    `json:"actor"`
	Definition *Metric   `json:"definition"`
}

// GuardrailStatus is what a guardrail's interval says about the harm it guards against.
type GuardrailStatus string

// The guardrail statuses (see Metric.Guardrail).
const (
	GuardrailBreached GuardrailStatus = "breached" // harm beyond the margin is statistically clear
	GuardrailHolding  GuardrailStatus = "holding"  // harm beyond the margin is ruled out
	GuardrailUnclear  GuardrailStatus = "unclear"  // the interval allows both
)

// Guardrail judges the confidence interval [low, high] of the metric's relative
// change (treatment against control). Harm is a change in the direction the
// metric does not want: a rise when lower is better, a fall otherwise. With m the
// metric's GuardrailMargin,
//
//	lower is better:  breached when low > m,   holding when high < m
//	higher is better: breached when high < −m, holding when low > −m
//
// and unclear otherwise: "holding" needs the interval to rule out harm beyond the
// margin, not merely to fail to show it. With no margin, an unchanged guardrail
// stays unclear however long it runs; give one to say how much harm is tolerable.
func (m *Metric) Guardrail(low, high float64) GuardrailStatus {
	g := m.GuardrailMargin
	if !m.HigherIsBetter() {
		low, high = -high, -low // as a change in the wanted direction
	}
	switch {
	case high < -g:
		return GuardrailBreached
	case low > -g:
		return GuardrailHolding
	}
	return GuardrailUnclear
}

// HigherIsBetter reports the metric's desired direction (default true).
func (m *Metric) HigherIsBetter() bool { return m.Higher == nil || *m.Higher }

// Validate checks the definition and returns an Invalid error naming the field.
func (m *Metric) Validate() error {
	const op = "metric.Validate"
	if !ValidKey(m.Name) {
		return invalid(op, "name", "must be 1-128 letters, digits, '_', '.' or '-', got %q", m.Name)
	}
	if p := IdentProblem(m.EventType); p != "" {
		return invalid(op, "event_type", "%s", p)
	}
	switch m.Aggregation {
	case Sum, Count, Mean, Binary:
		if m.EventType == "" {
			return invalid(op, "event_type", "required for aggregation %q", m.Aggregation)
		}
		if m.Numerator != "" || m.Denominator != "" {
			return invalid(op, "numerator", "only ratio metrics have a numerator and denominator")
		}
	case Ratio:
		if m.Numerator == "" {
			return invalid(op, "numerator", "a ratio metric needs the name of its numerator metric")
		}
		if m.Denominator == "" {
			return invalid(op, "denominator", "a ratio metric needs the name of its denominator metric")
		}
		if m.Numerator == m.Name || m.Denominator == m.Name {
			return invalid(op, "numerator", "a ratio metric cannot refer to itself")
		}
	default:
		return invalid(op, "aggregation", `must be one of "sum", "count", "mean", "binary", "ratio", got %q`, m.Aggregation)
	}
	if w := m.Window; w != nil {
		if !(w.StartDays >= 0 && w.EndDays > w.StartDays) || math.IsInf(w.EndDays, 0) {
			return invalid(op, "window", "must satisfy 0 <= start_days < end_days, got [%g, %g)", w.StartDays, w.EndDays)
		}
		if w.MaturedOnly && m.Aggregation == Mean {
			return invalid(op, "window.matured_only", "a mean metric cannot be restricted to matured windows; use a sum, count, binary or ratio metric")
		}
	}
	if c := m.Cap; c != nil {
		if err := c.validate(op); err != nil {
			return err
		}
		if m.Aggregation == Binary {
			return invalid(op, "cap", "a binary metric cannot be capped")
		}
	}
	if cv := m.Covariate; cv != nil && !(cv.Days > 0) {
		return invalid(op, "covariate.days", "must be positive, got %g", cv.Days)
	}
	if b := m.Bounds; b != nil {
		switch {
		case !(math.Abs(b.Lower) <= MaxBound):
			return invalid(op, "bounds.lower", "must be finite and within ±%g, got %g", MaxBound, b.Lower)
		case !(math.Abs(b.Upper) <= MaxBound):
			return invalid(op, "bounds.upper", "must be finite and within ±%g, got %g", MaxBound, b.Upper)
		case !(b.Lower < b.Upper):
			return invalid(op, "bounds", "lower must be below upper, got [%g, %g]", b.Lower, b.Upper)
		}
	}
	if g := m.GuardrailMargin; !(g >= 0 && g < 1) {
		return invalid(op, "guardrail_margin", "must be a relative change in [0, 1), e.g. 0.02 for 2%%, got %g", g)
	}
	return nil
}
