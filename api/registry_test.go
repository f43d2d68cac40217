package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func TestRegistryLifecycle(t *testing.T) {
	ts := newTestServer(t)
	var l experiment.Layer
	ts.must(http.StatusCreated, "POST", "/v1/layers", map[string]any{"name": "site", "description": "whole site"}, &l)
	if l.Name != "site" || l.CreatedAt.IsZero() {
		t.Fatalf("layer answer %+v", l)
	}
	var h experiment.Holdout
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.05, "rotation_period": "90d"}, &h)
	if h.Version != 1 || h.Salt != "global/v1" || h.Fraction != 0.05 {
		t.Fatalf("holdout answer %+v, want version 1, salt global/v1 (the store contract)", h)
	}
	// An experiment names metrics that are defined.
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "orders", "event_type": "purchase", "aggregation": "count"}, nil)
	var e experiment.Experiment
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"layer": "site", "layer_range": map[string]float64{"start": 0, "end": 0.5}, "holdout": "global",
		"metrics":  []any{"revenue", map[string]any{"name": "orders", "primary": true}},
		"analysis": map[string]any{"mde": 0.02},
	}, &e)
	// The documented defaults: seed = key, coverage 1, hash version 2, alpha 0.05, draft.
	if e.Seed != "checkout" || e.CoverageOr1() != 1 || e.HashVersion != 2 || e.Analysis.Alpha != 0.05 || e.Status != experiment.Draft {
		t.Fatalf("defaults not applied: %+v", e)
	}
	if e.Analysis.PrimaryMetric != "orders" {
		t.Errorf("primary metric %q, want orders", e.Analysis.PrimaryMetric)
	}
	ts.must(http.StatusConflict, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "variants": []map[string]any{{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}}}, nil)

	var got experiment.Experiment
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout", nil, &got)
	if got.Key != "checkout" || len(got.Variants) != 2 {
		t.Fatalf("get: %+v", got)
	}
	ts.must(http.StatusNotFound, "GET", "/v1/experiments/nope", nil, nil)

	// A draft may change its design.
	ts.must(http.StatusOK, "PATCH", "/v1/experiments/checkout", map[string]any{
		"variants": []map[string]any{{"name": "control", "weight": 0.4}, {"name": "treatment", "weight": 0.6}}}, &got)
	if got.Variants[1].Weight != 0.6 {
		t.Fatalf("patch not applied: %+v", got.Variants)
	}
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, &got)
	if got.Status != experiment.Running || got.StartedAt == nil {
		t.Fatalf("start: %+v", got)
	}
	ts.must(http.StatusConflict, "POST", "/v1/experiments/checkout/start", nil, nil)

	// Pre-registration: the design is locked once started.
	status, b := ts.do("PATCH", "/v1/experiments/checkout", ts.admin, map[string]any{"coverage": 0.5})
	if status != http.StatusConflict {
		t.Fatalf("changing a running design: status %d, want 409; %s", status, b)
	}
	if msg := errorOf(t, b).Message; !strings.Contains(msg, "pre-regist") && !strings.Contains(msg, "locked") {
		t.Errorf("409 message does not explain pre-registration: %q", msg)
	}
	ts.must(http.StatusOK, "PATCH", "/v1/experiments/checkout", map[string]any{"name": "Checkout v2"}, &got)
	if got.Name != "Checkout v2" || got.CoverageOr1() != 1 {
		t.Fatalf("name change: %+v", got)
	}
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/stop", nil, &got)
	if got.Status != experiment.Stopped {
		t.Fatalf("stop: %+v", got)
	}

	var list experimentList
	ts.must(http.StatusOK, "GET", "/v1/experiments", nil, &list)
	if len(list.Experiments) != 1 {
		t.Fatalf("list: %d experiments, want 1", len(list.Experiments))
	}
	var layers layerList
	ts.must(http.StatusOK, "GET", "/v1/layers", nil, &layers)
	ts.must(http.StatusOK, "GET", "/v1/layers/site", nil, nil)
	if len(layers.Layers) != 1 {
		t.Fatalf("layers: %+v", layers)
	}
	var rotated experiment.Holdout
	ts.must(http.StatusOK, "POST", "/v1/holdouts/global/rotate", nil, &rotated)
	if rotated.Version != 2 || rotated.Salt != "global/v2" {
		t.Fatalf("rotate: %+v", rotated)
	}
	ts.must(http.StatusOK, "GET", "/v1/holdouts/global", nil, &rotated)
	if len(rotated.Versions) != 2 || rotated.Versions[0].End == nil {
		t.Fatalf("versions after rotation: %+v", rotated.Versions)
	}
	var hl holdoutList
	ts.must(http.StatusOK, "GET", "/v1/holdouts", nil, &hl)
	if len(hl.Holdouts) != 1 {
		t.Fatalf("holdouts: %+v", hl)
	}

	// The audit log has every change of the experiment, newest first, with the actor.
	var audit auditList
	ts.must(http.StatusOK, "GET", "/v1/audit?entity=experiment&key=checkout", nil, &audit)
	var actions []string
	for _, a := range audit.Entries {
		actions = append(actions, a.Action)
		if a.Actor != "bootstrap-admin" {
			t.Errorf("audit actor %q, want the key's name bootstrap-admin", a.Actor)
		}
	}
	// create, update (draft), start, update (name), stop; the refused changes left no entry.
	if len(actions) != 5 || actions[len(actions)-1] != "experiment.create" {
		t.Fatalf("audit actions %v, want 5 ending with experiment.create", actions)
	}
	ts.must(http.StatusOK, "GET", "/v1/audit?limit=2", nil, &audit)
	if len(audit.Entries) != 2 {
		t.Fatalf("audit limit 2: got %d", len(audit.Entries))
	}
	ts.must(http.StatusBadRequest, "GET", "/v1/audit?limit=zero", nil, nil)
}
