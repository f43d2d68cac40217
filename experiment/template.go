package experiment

import (
	"strconv"
	"time"
)

// Template is a named experiment design to start from: a set of metrics,
// guardrail metrics and an analysis plan. An experiment created from a
// template takes each of them unless its request gives the field (see
// Template.Apply); it records the template's name and does not follow later
// changes of the template.
type Template struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Metrics     []MetricRef `json:"metrics,omitempty"`
	// Guardrails are metrics every experiment of the template watches for
	// harm (judged by each metric's direction and guardrail_margin); they are
	// added to the experiment's metrics after Metrics.
	Guardrails []string      `json:"guardrails,omitempty"`
	Analysis   *AnalysisPlan `json:"analysis,omitempty"`
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
}

// TemplateFields are the fields of a new experiment's request that override
// its template's; nil means "not given: take the template's".
type TemplateFields struct {
	Metrics    *[]MetricRef
	Guardrails *[]string
	Analysis   *AnalysisPlan
}

// Apply sets e's metrics and analysis plan from the template and the fields
// given explicitly: the metrics are the given metrics (or the template's)
// followed by the given guardrails (or the template's) not already among them;
// the plan is the given one, whole (or the template's). e.Template becomes the
// template's name. A nil template applies the given fields alone.
func (t *Template) Apply(e *Experiment, f TemplateFields) {
	var ms []MetricRef
	var gs []string
	var plan *AnalysisPlan
	if t != nil {
		ms, gs, plan = t.Metrics, t.Guardrails, t.Analysis
		e.Template = t.Name
	}
	if f.Metrics != nil {
		ms = *f.Metrics
	}
	if f.Guardrails != nil {
		gs = *f.Guardrails
	}
	if f.Analysis != nil {
		plan = f.Analysis
	}
	out := append([]MetricRef(nil), ms...)
	for _, g := range gs {
		dup := false
		for _, m := range out {
			dup = dup || m.Name == g
		}
		if !dup {
			out = append(out, MetricRef{Name: g})
		}
	}
	e.Metrics = out
	if len(out) == 0 {
		e.Metrics = nil
	}
	e.Analysis = AnalysisPlan{}
	if plan != nil {
		e.Analysis = *plan
	}
}

// Validate checks the template and returns an Invalid error naming the field:
// its name, its metrics and plan as an experiment's (analysis.alpha,
// metrics[1].primary, …), and guardrails that are named once each and are not
// also among the metrics.
func (t *Template) Validate() error {
	const op = "template.Validate"
	if !ValidKey(t.Name) {
		return invalid(op, "name", "must be 1-128 letters, digits, '_', '.' or '-', got %q", t.Name)
	}
	for i, g := range t.Guardrails {
		field := "guardrails[" + strconv.Itoa(i) + "]"
		if !ValidKey(g) {
			return invalid(op, field, "must be a metric name, got %q", g)
		}
		for j := range i {
			if t.Guardrails[j] == g {
				return invalid(op, field, "metric %q is listed twice (guardrails[%d])", g, j)
			}
		}
		for j, m := range t.Metrics {
			if m.Name == g {
				return invalid(op, field, "metric %q is already metrics[%d]: a guardrail is one of the other metrics", g, j)
			}
		}
	}
	// The metrics and plan are checked as those of an experiment with two arms.
	e := &Experiment{Key: t.Name, Variants: []Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}, Metrics: t.Metrics}
	if t.Analysis != nil {
		e.Analysis = *t.Analysis
	}
	e.ApplyDefaults()
	if err := e.Validate(); err != nil {
		return E(op, err)
	}
	return nil
}
