package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status is the life-cycle state of an experiment. Only drafts may be edited;
// starting an experiment locks its design (pre-registration).
type Status string

// The experiment states.
const (
	Draft   Status = "draft"
	Running Status = "running"
	Stopped Status = "stopped"
)

// Variant is one arm of an experiment. Weights of an experiment's variants sum to 1.
type Variant struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
}

// Range is a half-open interval [Start, End) of the unit interval, e.g. the slice of
// a layer that an experiment occupies.
type Range struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// Contains reports whether Start <= x < End.
func (r Range) Contains(x float64) bool { return x >= r.Start && x < r.End }

// Overlaps reports whether two half-open ranges share any point.
func (r Range) Overlaps(o Range) bool { return r.Start < o.End && o.Start < r.End }

// MetricRef names a registered metric in an experiment. In JSON it is either the
// metric's name as a string or an object {"name", "primary"}.
type MetricRef struct {
	Name    string `json:"name"`
	Primary bool   `json:"primary,omitempty"`
}

// UnmarshalJSON accepts "revenue" or {"name": "revenue", "primary": true}.
func (m *MetricRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*m = MetricRef{}
		return json.Unmarshal(b, &m.Name)
	}
	type plain MetricRef
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*m = MetricRef(p)
	return nil
}

// AnalysisPlan is the pre-registered analysis of an experiment.
type AnalysisPlan struct {
	PrimaryMetric string  `json:"primary_metric,omitempty"`
	Alpha         float64 `json:"alpha,omitempty"`             // default 0.05
	MDE           float64 `json:"mde,omitempty"`               // minimum detectable (relative) effect
	Sequential    bool    `json:"sequential,omitempty"`        // always-valid confidence sequences
	Tuning        float64 `json:"sequential_tuning,omitempty"` // N* of the confidence sequence, default 5000
	Correction    string  `json:"correction,omitempty"`        // "holm" (default), "bh" or "none"
	// Engine is "frequentist" (the default: every result as above) or
	// "bayesian", which adds GrowthBook's Bayesian view to every comparison
	// (posterior, chance to win, risk) under a Gaussian prior on the relative
	// effect: mean PriorMean, standard deviation PriorStddev (default 0.3),
	// used only when PriorProper (otherwise flat, GrowthBook's default).
	Engine      string  `json:"engine,omitempty"`
	PriorMean   float64 `json:"prior_mean,omitempty"`
	PriorStddev float64 `json:"prior_stddev,omitempty"`
	PriorProper bool    `json:"prior_proper,omitempty"`
}

// Experiment is a registered randomized experiment.
type Experiment struct {
	Key         string       `json:"key"`
	Name        string       `json:"name,omitempty"`
	Description string       `json:"description,omitempty"`
	Variants    []Variant    `json:"variants"`
	Coverage    *float64     `json:"coverage,omitempty"`     // share of eligible units included, default 1
	HashVersion int          `json:"hash_version,omitempty"` // 1 or 2, default 2
	Seed        string       `json:"seed,omitempty"`         // hash seed, default Key
	Layer       string       `json:"layer,omitempty"`        // mutual-exclusion layer
	LayerRange  *Range       `json:"layer_range,omitempty"`  // this experiment's slice of the layer
	Holdout     string       `json:"holdout,omitempty"`      // permanent holdout units are kept out of
	Metrics     []MetricRef  `json:"metrics,omitempty"`
	Analysis    AnalysisPlan `json:"analysis"`
	Allocation  *Allocation  `json:"allocation,omitempty"` // fixed weights (absent) or a bandit
	// Template names the experiment template the design was drawn from, if any
	// (a record: the experiment does not follow later changes of the template).
	Template string `json:"template,omitempty"`
	// MetricVersions are the versions of every metric definition the
	// experiment reads (its metrics and the parts of its ratio metrics),
	// pinned when it starts: later versions of a metric do not change its
	// results. Drafts have none (they read the current versions).
	MetricVersions map[string]int `json:"metric_versions,omitempty"`
	Status         Status         `json:"status"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	StartedAt      *time.Time     `json:"started_at,omitempty"`
	StoppedAt      *time.Time     `json:"stopped_at,omitempty"`
}

// CoverageOr1 returns the coverage, 1 when unset.
func (e *Experiment) CoverageOr1() float64 {
	if e.Coverage == nil {
		return 1
	}
	return *e.Coverage
}

// Weights returns the variant weights in order.
func (e *Experiment) Weights() []float64 {
	w := make([]float64, len(e.Variants))
	for i, v := range e.Variants {
		w[i] = v.Weight
	}
	return w
}

// ApplyDefaults fills the documented defaults: seed = key, coverage = 1,
// hash version 2, alpha 0.05, Holm correction, status draft; a bandit's
// reward kind binary and period 1h.
func (e *Experiment) ApplyDefaults() {
	if e.Seed == "" {
		e.Seed = e.Key
	}
	if e.Coverage == nil {
		one := 1.0
		e.Coverage = &one
	}
	if e.HashVersion == 0 {
		e.HashVersion = 2
	}
	if e.Analysis.Alpha == 0 {
		e.Analysis.Alpha = 0.05
	}
	if e.Analysis.Correction == "" {
		e.Analysis.Correction = "holm"
	}
	if e.Allocation != nil {
		e.Allocation.applyDefaults()
	}
	if e.Analysis.Sequential && e.Analysis.Tuning == 0 {
		e.Analysis.Tuning = 5000
	}
	if e.Status == "" {
		e.Status = Draft
	}
	e.normalizePrimary()
}

// normalizePrimary makes analysis.primary_metric the one record of the primary
// metric: a plan that names none takes the metric marked primary, and the
// metrics' primary flags are then set to mirror the plan. A design that marks
// two metrics, or marks one and names another in the plan, is left as it is for
// Validate to refuse.
func (e *Experiment) normalizePrimary() {
	p := e.Analysis.PrimaryMetric
	if p == "" {
		for _, m := range e.Metrics {
			if m.Primary {
				p = m.Name
				break
			}
		}
	}
	for _, m := range e.Metrics {
		if m.Primary && m.Name != p {
			return // contradictory: Validate says where
		}
	}
	e.Analysis.PrimaryMetric = p
	ms := make([]MetricRef, len(e.Metrics)) // the caller's slice stays as it was
	for i, m := range e.Metrics {
		ms[i] = MetricRef{Name: m.Name, Primary: p != "" && m.Name == p}
	}
	if e.Metrics != nil {
		e.Metrics = ms
	}
}

// Primary is the experiment's primary metric: the one its analysis plan names
// (which ApplyDefaults keeps equal to the metric marked primary), else its first
// metric; "" when it has no metrics. Results, reports, digests and journey
// comparisons all take the primary metric from here.
func (e *Experiment) Primary() string {
	if p := e.Analysis.PrimaryMetric; p != "" {
		return p
	}
	if len(e.Metrics) > 0 {
		return e.Metrics[0].Name
	}
	return ""
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$`)

// ValidKey reports whether s is a usable key or name: 1–128 characters of letters,
// digits, '_', '.', '-', starting with a letter or digit.
func ValidKey(s string) bool { return keyPattern.MatchString(s) }

// MaxLabel is the longest variant name, in bytes.
const MaxLabel = 128

// checkLabel says what is wrong with a free-text label such as a variant name
// ("" when nothing): it must be valid UTF-8 of at most MaxLabel bytes without
// control characters (they break logs, CSV and terminals, and DuckDB cuts
// strings at NUL) or invisible direction overrides.
func checkLabel(s string) string {
	if len(s) > MaxLabel {
		return fmt.Sprintf("must be at most %d bytes, got %d", MaxLabel, len(s))
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for i, r := range s {
		if unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return fmt.Sprintf("must not hold control characters, got %U at byte %d", r, i)
		}
	}
	return ""
}

// IdentProblem says why s cannot be stored as an identifier (a unit, an
// experiment, variant or event type reference, an event id, a source): "" when
// it can. Identifiers are valid UTF-8 without control characters (U+0000–U+001F,
// U+007F–U+009F). A NUL in particular would be cut by the DuckDB driver, so
// that "victim\x00x" would be stored as "victim".
func IdentProblem(s string) string {
	i := 0
	for ; i < len(s); i++ { // the common case: printable ASCII
		if c := s[i]; c < 0x20 || c >= 0x7f {
			break
		}
	}
	if i == len(s) {
		return ""
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Sprintf("must be valid UTF-8 (bad byte 0x%02x at offset %d)", s[i], i)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return fmt.Sprintf("must not contain control characters (U+%04X at offset %d)", r, i)
		}
	}
	return ""
}

func invalid(op, field, format string, args ...any) error {
	return E(op, Invalid, Field(field), Errorf(format, args...))
}

// Validate checks the experiment's design after ApplyDefaults and returns an
// Invalid error naming the first offending field.
func (e *Experiment) Validate() error {
	const op = "experiment.Validate"
	if !ValidKey(e.Key) {
		return invalid(op, "key", "must be 1-128 letters, digits, '_', '.' or '-', got %q", e.Key)
	}
	if len(e.Variants) < 2 {
		return invalid(op, "variants", "need at least 2 variants, got %d", len(e.Variants))
	}
	seen := make(map[string]bool, len(e.Variants))
	sum := 0.0
	for i, v := range e.Variants {
		f := func(name string) string { return "variants[" + strconv.Itoa(i) + "]." + name }
		if v.Name == "" {
			return invalid(op, f("name"), "must not be empty")
		}
		if err := checkLabel(v.Name); err != "" {
			return invalid(op, f("name"), "%s", err)
		}
		if seen[v.Name] {
			return invalid(op, f("name"), "duplicate variant name %q", v.Name)
		}
		seen[v.Name] = true
		if math.IsNaN(v.Weight) || v.Weight < 0 || v.Weight > 1 {
			return invalid(op, f("weight"), "must be in [0, 1], got %g", v.Weight)
		}
		sum += v.Weight
	}
	if math.Abs(sum-1) > 1e-9 {
		return invalid(op, "variants", "weights must sum to 1, got %g", sum)
	}
	if c := e.CoverageOr1(); math.IsNaN(c) || c < 0 || c > 1 {
		return invalid(op, "coverage", "must be in [0, 1], got %g", c)
	}
	if e.HashVersion != 1 && e.HashVersion != 2 {
		return invalid(op, "hash_version", "must be 1 or 2, got %d", e.HashVersion)
	}
	if e.Layer != "" {
		if !ValidKey(e.Layer) {
			return invalid(op, "layer", "invalid layer name %q", e.Layer)
		}
		if e.LayerRange == nil {
			return invalid(op, "layer_range", "required when layer is set: the experiment's slice {start, end} of the layer")
		}
	}
	if r := e.LayerRange; r != nil {
		if e.Layer == "" {
			return invalid(op, "layer", "layer_range given without a layer")
		}
		if !(r.Start >= 0 && r.End <= 1 && r.Start < r.End) {
			return invalid(op, "layer_range", "must satisfy 0 <= start < end <= 1, got [%g, %g)", r.Start, r.End)
		}
	}
	if e.Holdout != "" && !ValidKey(e.Holdout) {
		return invalid(op, "holdout", "invalid holdout name %q", e.Holdout)
	}
	if a := e.Analysis.Alpha; !(a > 0 && a < 1) {
		return invalid(op, "analysis.alpha", "must be in (0, 1), got %g", a)
	}
	switch e.Analysis.Correction {
	case "holm", "bh", "none":
	default:
		return invalid(op, "analysis.correction", `must be "holm", "bh" or "none", got %q`, e.Analysis.Correction)
	}
	switch e.Analysis.Engine {
	case "", "frequentist", "bayesian":
	default:
		return invalid(op, "analysis.engine", `must be "frequentist" or "bayesian", got %q`, e.Analysis.Engine)
	}
	if m := e.Analysis.PriorMean; math.IsNaN(m) || math.IsInf(m, 0) {
		return invalid(op, "analysis.prior_mean", "must be finite, got %g", m)
	}
	if sd := e.Analysis.PriorStddev; !(sd >= 0) || math.IsInf(sd, 0) {
		return invalid(op, "analysis.prior_stddev", "must be ≥ 0 and finite, got %g", sd)
	}
	if e.Analysis.MDE < 0 {
		return invalid(op, "analysis.mde", "must not be negative, got %g", e.Analysis.MDE)
	}
	if e.Analysis.Tuning < 0 {
		return invalid(op, "analysis.sequential_tuning", "must be positive, got %g", e.Analysis.Tuning)
	}
	names := map[string]bool{}
	primary := -1
	for i, m := range e.Metrics {
		if m.Primary {
			if primary >= 0 {
				return invalid(op, "metrics["+strconv.Itoa(i)+"].primary", "metrics[%d] (%q) is primary already: one metric may be primary", primary, e.Metrics[primary].Name)
			}
			primary = i
		}
		if !ValidKey(m.Name) {
			return invalid(op, "metrics["+strconv.Itoa(i)+"]", "invalid metric name %q", m.Name)
		}
		if names[m.Name] {
			return invalid(op, "metrics["+strconv.Itoa(i)+"]", "duplicate metric %q", m.Name)
		}
		names[m.Name] = true
	}
	if p := e.Analysis.PrimaryMetric; p != "" && !names[p] {
		return invalid(op, "analysis.primary_metric", "%q is not among the experiment's metrics", p)
	}
	if p := e.Analysis.PrimaryMetric; primary >= 0 && p != "" && p != e.Metrics[primary].Name {
		return invalid(op, "analysis.primary_metric", "names %q but metrics[%d] (%q) is marked primary: name one primary metric", p, primary, e.Metrics[primary].Name)
	}
	if e.Allocation != nil {
		if err := e.Allocation.validate(op, len(e.Variants), names); err != nil {
			return err
		}
	}
	switch e.Status {
	case Draft, Running, Stopped:
	default:
		return invalid(op, "status", "unknown status %q", e.Status)
	}
	return nil
}

// SameDesign reports whether a and b have the same pre-registered design: variants,
// weights, coverage, hashing, layer slice, holdout, metrics and analysis plan.
// Running experiments may only change fields outside the design (name, description).
func SameDesign(a, b *Experiment) bool {
	ja, _ := json.Marshal(designOf(a))
	jb, _ := json.Marshal(designOf(b))
	return bytes.Equal(ja, jb)
}

func designOf(e *Experiment) any {
	return struct {
		V  []Variant
		C  float64
		H  int
		S  string
		L  string
		LR *Range
		HO string
		M  []MetricRef
		A  AnalysisPlan
		AL *Allocation
	}{e.Variants, e.CoverageOr1(), e.HashVersion, e.Seed, e.Layer, e.LayerRange, e.Holdout, e.Metrics, e.Analysis, e.Allocation}
}
