package experiment

import "math"

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
type Window struct {
	StartDays float64 `json:"start_days"`
	EndDays   float64 `json:"end_days"`
}

// Cap winsorizes per-unit values: at a fixed Value, or at the Percentile (in (0, 1))
// of the per-unit values.
type Cap struct {
	Value      float64 `json:"value,omitempty"`
	Percentile float64 `json:"percentile,omitempty"`
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
	}
	if c := m.Cap; c != nil {
		switch {
		case c.Value != 0 && c.Percentile != 0:
			return invalid(op, "cap", "give either value or percentile, not both")
		case c.Value < 0:
			return invalid(op, "cap.value", "must be positive, got %g", c.Value)
		case c.Percentile != 0 && !(c.Percentile > 0 && c.Percentile < 1):
			return invalid(op, "cap.percentile", "must be in (0, 1), got %g", c.Percentile)
		case c.Value == 0 && c.Percentile == 0:
			return invalid(op, "cap", "give a value or a percentile")
		}
		if m.Aggregation == Binary {
			return invalid(op, "cap", "a binary metric cannot be capped")
		}
	}
	if cv := m.Covariate; cv != nil && !(cv.Days > 0) {
		return invalid(op, "covariate.days", "must be positive, got %g", cv.Days)
	}
	if b := m.Bounds; b != nil && !(b.Lower < b.Upper) {
		return invalid(op, "bounds", "lower must be below upper, got [%g, %g]", b.Lower, b.Upper)
	}
	return nil
}
