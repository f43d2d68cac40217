package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// TestTemplates creates, reads, replaces and deletes experiment templates,
// refuses bad ones naming the field (storing nothing), and creates
// experiments from them with explicit fields overriding the template's.
func TestTemplates(t *testing.T) {
	ts := newTestServer(t)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	for _, m := range []map[string]any{
		{"name": "converted", "event_type": "purchase", "aggregation": "binary"},
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum"},
		{"name": "unsubscribes", "event_type": "unsubscribe", "aggregation": "count", "higher_is_better": false, "guardrail_margin": 0.02},
		{"name": "refunds", "event_type": "refund", "aggregation": "count", "higher_is_better": false},
	} {
		ts.must(http.StatusCreated, "POST", "/v1/metrics", m, nil)
	}
	std := map[string]any{"name": "checkout-std", "description": "checkout tests",
		"metrics":    []any{map[string]any{"name": "converted", "primary": true}, "revenue"},
		"guardrails": []string{"unsubscribes"},
		"analysis":   map[string]any{"alpha": 0.01, "correction": "bh"}}
	var tpl experiment.Template
	ts.must(http.StatusCreated, "POST", "/v1/templates", std, &tpl)
	if tpl.Name != "checkout-std" || len(tpl.Metrics) != 2 || !tpl.Metrics[0].Primary || tpl.Analysis.Alpha != 0.01 || tpl.CreatedAt.IsZero() {
		t.Errorf("created %+v", tpl)
	}
	bad := []struct {
		name   string
		body   map[string]any
		status int
		has    string
	}{
		{"taken", std, 409, "already exists"},
		{"bad name", map[string]any{"name": "a b"}, 400, "name:"},
		{"unknown metric", map[string]any{"name": "t", "metrics": []string{"revenue", "nope"}}, 400, "metrics[1]:"},
		{"unknown guardrail", map[string]any{"name": "t", "guardrails": []string{"nope"}}, 400, "guardrails[0]:"},
		{"guardrail among metrics", map[string]any{"name": "t", "metrics": []string{"revenue"}, "guardrails": []string{"revenue"}}, 400, "guardrails[0]:"},
		{"guardrail twice", map[string]any{"name": "t", "guardrails": []string{"refunds", "refunds"}}, 400, "guardrails[1]:"},
		{"duplicate metric", map[string]any{"name": "t", "metrics": []string{"revenue", "revenue"}}, 400, "metrics[1]:"},
		{"two primaries", map[string]any{"name": "t", "metrics": []any{map[string]any{"name": "revenue", "primary": true}, map[string]any{"name": "converted", "primary": true}}}, 400, "metrics[1].primary:"},
		{"bad alpha", map[string]any{"name": "t", "analysis": map[string]any{"alpha": 2}}, 400, "analysis.alpha:"},
		{"bad correction", map[string]any{"name": "t", "analysis": map[string]any{"correction": "bonferroni"}}, 400, "analysis.correction:"},
		{"unknown field", map[string]any{"name": "t", "metric": []string{"revenue"}}, 400, "metric"},
	}
	for _, c := range bad {
		status, b := ts.do("POST", "/v1/templates", ts.admin, c.body)
		if e := errorOf(t, b); status != c.status || !strings.Contains(e.Message, c.has) {
			t.Errorf("%s: %d %+v; want %d mentioning %q", c.name, status, e, c.status, c.has)
		}
	}
	var list templateList
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/templates", nil, &list)
	if len(list.Templates) != 1 {
		t.Errorf("after the refused ones: %d templates, want 1", len(list.Templates))
	}
	if status, _ := ts.do("POST", "/v1/templates", analyst, map[string]any{"name": "t"}); status != http.StatusForbidden {
		t.Errorf("analyst creating a template: %d, want 403", status)
	}

	arms := []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}
	names := func(e experiment.Experiment) string {
		var s []string
		for _, m := range e.Metrics {
			n := m.Name
			if m.Primary {
				n += "*"
			}
			s = append(s, n)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		name        string
		body        map[string]any
		metrics     string
		alpha       float64
		correction  string
		primaryPlan string
	}{
		{"all from the template", map[string]any{}, "converted*,revenue,unsubscribes", 0.01, "bh", "converted"},
		{"metrics given", map[string]any{"metrics": []string{"revenue"}}, "revenue,unsubscribes", 0.01, "bh", ""},
		{"guardrails given", map[string]any{"guardrails": []string{"refunds"}}, "converted*,revenue,refunds", 0.01, "bh", "converted"},
		{"no guardrails", map[string]any{"guardrails": []string{}}, "converted*,revenue", 0.01, "bh", "converted"},
		{"plan given, whole", map[string]any{"analysis": map[string]any{"alpha": 0.1}}, "converted*,revenue,unsubscribes", 0.1, "holm", "converted"},
	}
	for i, c := range cases {
		body := map[string]any{"key": "e" + string(rune('a'+i)), "variants": arms, "template": "checkout-std"}
		for k, v := range c.body {
			body[k] = v
		}
		var e experiment.Experiment
		ts.must(http.StatusCreated, "POST", "/v1/experiments", body, &e)
		if got := names(e); got != c.metrics || e.Analysis.Alpha != c.alpha || e.Analysis.Correction != c.correction ||
			e.Analysis.PrimaryMetric != c.primaryPlan || e.Template != "checkout-std" {
			t.Errorf("%s: metrics %s, plan %+v, template %q; want metrics %s, alpha %g, correction %s, primary %q",
				c.name, got, e.Analysis, e.Template, c.metrics, c.alpha, c.correction, c.primaryPlan)
		}
	}
	// Without a template, guardrails are added to the metrics too.
	var plain experiment.Experiment
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "plain", "variants": arms, "metrics": []string{"revenue"}, "guardrails": []string{"refunds"}}, &plain)
	if got := names(plain); got != "revenue,refunds" || plain.Template != "" {
		t.Errorf("plain: metrics %s, template %q", got, plain.Template)
	}
	refused := []struct {
		name string
		body map[string]any
		has  string
	}{
		{"unknown template", map[string]any{"template": "nope"}, "template:"},
		{"unknown guardrail", map[string]any{"template": "checkout-std", "guardrails": []string{"nope"}}, "guardrails[0]:"},
		{"contradicting primary", map[string]any{"template": "checkout-std", "analysis": map[string]any{"primary_metric": "revenue"}}, "analysis.primary_metric:"},
	}
	for _, c := range refused {
		body := map[string]any{"key": "refused", "variants": arms}
		for k, v := range c.body {
			body[k] = v
		}
		status, b := ts.do("POST", "/v1/experiments", ts.admin, body)
		if e := errorOf(t, b); status != http.StatusBadRequest || !strings.Contains(e.Message, c.has) {
			t.Errorf("%s: %d %+v; want 400 naming %s", c.name, status, e, c.has)
		}
	}
	// A template's deprecated guardrail keeps new experiments off it.
	ts.must(http.StatusOK, "POST", "/v1/metrics/unsubscribes/deprecate", nil, nil)
	status, b := ts.do("POST", "/v1/experiments", ts.admin, map[string]any{"key": "refused", "variants": arms, "template": "checkout-std"})
	if e := errorOf(t, b); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, "metrics[2]:") || !strings.Contains(e.Message, "deprecated") {
		t.Errorf("template with a deprecated guardrail: %d %+v; want 400 naming metrics[2]", status, e)
	}
	ts.must(http.StatusNotFound, "GET", "/v1/experiments/refused", nil, nil)
	ts.must(http.StatusOK, "POST", "/v1/metrics/unsubscribes/restore", nil, nil)

	// Replacing the template changes later experiments only.
	repl := map[string]any{"metrics": []string{"revenue"}, "analysis": map[string]any{"alpha": 0.2}}
	var replaced experiment.Template
	ts.must(http.StatusOK, "PUT", "/v1/templates/checkout-std", repl, &replaced)
	if len(replaced.Metrics) != 1 || replaced.Analysis.Alpha != 0.2 || len(replaced.Guardrails) != 0 || !replaced.CreatedAt.Equal(tpl.CreatedAt) {
		t.Errorf("replaced %+v", replaced)
	}
	var ea experiment.Experiment
	ts.must(http.StatusOK, "GET", "/v1/experiments/ea", nil, &ea)
	if names(ea) != "converted*,revenue,unsubscribes" || ea.Analysis.Alpha != 0.01 {
		t.Errorf("an experiment made from the template changed with it: %s %+v", names(ea), ea.Analysis)
	}
	ts.must(http.StatusNotFound, "PUT", "/v1/templates/nope", repl, nil)
	if status, b := ts.do("PUT", "/v1/templates/checkout-std", ts.admin, map[string]any{"name": "other"}); status != 400 || !strings.HasPrefix(errorOf(t, b).Message, "name:") {
		t.Errorf("renaming PUT: %d %s", status, b)
	}
	if status, b := ts.do("PUT", "/v1/templates/checkout-std", ts.admin, map[string]any{"metrics": []string{"nope"}}); status != 400 || !strings.HasPrefix(errorOf(t, b).Message, "metrics[0]:") {
		t.Errorf("PUT with an unknown metric: %d %s", status, b)
	}
	tpl = experiment.Template{}
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/templates/checkout-std", nil, &tpl)
	if tpl.Analysis.Alpha != 0.2 {
		t.Errorf("a refused PUT changed the template: %+v", tpl)
	}

	ts.must(http.StatusNoContent, "DELETE", "/v1/templates/checkout-std", nil, nil)
	ts.must(http.StatusNotFound, "GET", "/v1/templates/checkout-std", nil, nil)
	ts.must(http.StatusNotFound, "DELETE", "/v1/templates/checkout-std", nil, nil)
	ts.must(http.StatusOK, "GET", "/v1/experiments/ea", nil, &ea)
	if ea.Template != "checkout-std" {
		t.Errorf("after the template's deletion the experiment records %q", ea.Template)
	}
	var audit auditList
	ts.must(http.StatusOK, "GET", "/v1/audit?entity=template&key=checkout-std", nil, &audit)
	if len(audit.Entries) != 3 || audit.Entries[0].Action != "template.delete" || audit.Entries[2].Action != "template.create" {
		t.Errorf("audit: %+v", audit.Entries)
	}
}
