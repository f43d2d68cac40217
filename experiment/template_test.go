package experiment

import (
	"encoding/json"
	"testing"
)

func TestTemplateApply(t *testing.T) {
	tpl := &Template{Name: "std", Metrics: []MetricRef{{Name: "conv", Primary: true}, {Name: "rev"}}, Guardrails: []string{"unsub"},
		Analysis: &AnalysisPlan{Alpha: 0.01, Correction: "bh"}}
	refs := func(ns ...string) *[]MetricRef {
		out := []MetricRef{}
		for _, n := range ns {
			out = append(out, MetricRef{Name: n})
		}
		return &out
	}
	cases := []struct {
		name     string
		t        *Template
		f        TemplateFields
		metrics  string
		plan     AnalysisPlan
		template string
	}{
		{"template only", tpl, TemplateFields{}, `[{"name":"conv","primary":true},{"name":"rev"},{"name":"unsub"}]`, AnalysisPlan{Alpha: 0.01, Correction: "bh"}, "std"},
		{"metrics given", tpl, TemplateFields{Metrics: refs("rev")}, `[{"name":"rev"},{"name":"unsub"}]`, AnalysisPlan{Alpha: 0.01, Correction: "bh"}, "std"},
		{"guardrail among the metrics", tpl, TemplateFields{Metrics: refs("unsub", "rev")}, `[{"name":"unsub"},{"name":"rev"}]`, AnalysisPlan{Alpha: 0.01, Correction: "bh"}, "std"},
		{"no guardrails", tpl, TemplateFields{Guardrails: &[]string{}}, `[{"name":"conv","primary":true},{"name":"rev"}]`, AnalysisPlan{Alpha: 0.01, Correction: "bh"}, "std"},
		{"plan given", tpl, TemplateFields{Analysis: &AnalysisPlan{MDE: 0.1}}, `[{"name":"conv","primary":true},{"name":"rev"},{"name":"unsub"}]`, AnalysisPlan{MDE: 0.1}, "std"},
		{"no template", nil, TemplateFields{Metrics: refs("a"), Guardrails: &[]string{"b"}}, `[{"name":"a"},{"name":"b"}]`, AnalysisPlan{}, ""},
		{"nothing", nil, TemplateFields{}, `null`, AnalysisPlan{}, ""},
	}
	for _, c := range cases {
		var e Experiment
		c.t.Apply(&e, c.f)
		got, _ := json.Marshal(e.Metrics)
		if string(got) != c.metrics || e.Analysis != c.plan || e.Template != c.template {
			t.Errorf("%s: metrics %s, plan %+v, template %q; want %s, %+v, %q", c.name, got, e.Analysis, e.Template, c.metrics, c.plan, c.template)
		}
	}
	if len(tpl.Metrics) != 2 || tpl.Metrics[0].Name != "conv" {
		t.Errorf("Apply changed the template: %+v", tpl.Metrics)
	}
}
