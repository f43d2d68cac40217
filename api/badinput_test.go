package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput sends every kind of bad input named by the API's contract and
// checks the status, the error code, that the message names the field, and that
// nothing was stored (the audit log, which records every change, and the
// exposure log are unchanged).
func TestBadInput(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.BodyLimit = 1 << 20 })
	ts.setupRunning()
	// An experiment occupying [0, 0.5) of layer "half", for the overlap case.
	ts.must(http.StatusCreated, "POST", "/v1/layers", map[string]any{"name": "half"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "left", "variants": twoArms, "layer": "half", "layer_range": map[string]float64{"start": 0, "end": 0.5}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "drafty", "variants": twoArms}, nil)

	exp := func(extra string) string {
		return `{"key":"new","variants":[{"name":"control","weight":0.5},{"name":"treatment","weight":0.5}]` + extra + `}`
	}
	units := make([]string, 10_001)
	for i := range units {
		units[i] = fmt.Sprintf("u%d", i)
	}
	cases := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
		mention      string // the message must contain this (the field)
	}{
		{"weights not summing to 1", "POST", "/v1/experiments",
			`{"key":"new","variants":[{"name":"a","weight":0.5},{"name":"b","weight":0.6}]}`, 400, "invalid", "variants"},
		{"negative weight", "POST", "/v1/experiments",
			`{"key":"new","variants":[{"name":"a","weight":1.5},{"name":"b","weight":-0.5}]}`, 400, "invalid", "variants[0].weight"},
		{"negative weight second", "POST", "/v1/experiments",
			`{"key":"new","variants":[{"name":"a","weight":0.5},{"name":"b","weight":-0.5},{"name":"c","weight":1}]}`, 400, "invalid", "variants[1].weight"},
		{"duplicate variant names", "POST", "/v1/experiments",
			`{"key":"new","variants":[{"name":"a","weight":0.5},{"name":"a","weight":0.5}]}`, 400, "invalid", "variants[1].name"},
		{"coverage above 1", "POST", "/v1/experiments", exp(`,"coverage":1.5`), 400, "invalid", "coverage"},
		{"coverage below 0", "POST", "/v1/experiments", exp(`,"coverage":-0.1`), 400, "invalid", "coverage"},
		{"unknown layer", "POST", "/v1/experiments", exp(`,"layer":"nowhere","layer_range":{"start":0,"end":1}`), 400, "invalid", "layer"},
		{"unknown holdout", "POST", "/v1/experiments", exp(`,"holdout":"nowhere"`), 400, "invalid", "holdout"},
		{"overlapping layer slices", "POST", "/v1/experiments", exp(`,"layer":"half","layer_range":{"start":0.25,"end":0.75}`), 400, "invalid", "layer_range"},
		{"status given", "POST", "/v1/experiments", exp(`,"status":"running"`), 400, "invalid", "status"},
		{"malformed JSON", "POST", "/v1/experiments", `{"key":"new","variants":[`, 400, "invalid", "malformed JSON"},
		// encoding/json's offset counts the bytes read, the offending '"' (the 14th byte) included.
		{"syntax error offset", "POST", "/v1/experiments", `{"key":"new" "variants":[]}`, 400, "invalid", "byte offset 14"},
		{"unknown JSON field", "POST", "/v1/experiments", exp(`,"colour":"red"`), 400, "invalid", "colour"},
		{"wrong JSON type", "POST", "/v1/experiments", exp(`,"coverage":"all"`), 400, "invalid", "coverage"},
		{"trailing data", "POST", "/v1/experiments", exp(``) + `{}`, 400, "invalid", "after the JSON value"},
		{"empty body", "POST", "/v1/experiments", "", 400, "invalid", "empty request body"},
		{"oversized body", "POST", "/v1/experiments", `{"key":"` + strings.Repeat("k", 2<<20) + `"}`, 413, "too_large", "limit"},
		{"draft change of design to bad weights", "PATCH", "/v1/experiments/drafty",
			`{"variants":[{"name":"a","weight":0.2},{"name":"b","weight":0.2}]}`, 400, "invalid", "variants"},
		{"holdout fraction", "POST", "/v1/holdouts", `{"name":"h2","fraction":1.5}`, 400, "invalid", "fraction"},
		{"holdout rotation period", "POST", "/v1/holdouts", `{"name":"h2","fraction":0.1,"rotation_period":"soon"}`, 400, "invalid", "soon"},
		{"layer name", "POST", "/v1/layers", `{"name":"has space"}`, 400, "invalid", "name"},
		{"key role", "POST", "/v1/keys", `{"name":"svc","role":"superuser"}`, 400, "invalid", "role"},
		{"empty unit", "GET", "/v1/assign?experiment=checkout&unit=", nil, 400, "invalid", "unit"},
		{"missing experiment", "GET", "/v1/assign?unit=u1", nil, 400, "invalid", "experiment"},
		{"bad expose flag", "GET", "/v1/assign?experiment=checkout&unit=u1&expose=maybe", nil, 400, "invalid", "expose"},
		{"unknown experiment", "GET", "/v1/assign?experiment=nope&unit=u1&expose=true", nil, 404, "not_found", "nope"},
		{"draft experiment", "GET", "/v1/assign?experiment=drafty&unit=u1&expose=true", nil, 409, "conflict", "not started"},
		{"empty unit in batch", "POST", "/v1/assign", `{"experiment":"checkout","units":["a",""],"expose":true}`, 400, "invalid", "units[1]"},
		{"empty batch", "POST", "/v1/assign", `{"experiment":"checkout","units":[]}`, 400, "invalid", "units"},
		{"batch over 10,000", "POST", "/v1/assign", map[string]any{"experiment": "checkout", "units": units, "expose": true}, 413, "too_large", "units: 10001 units"},
		{"exposure empty unit", "POST", "/v1/exposures",
			`{"exposures":[{"experiment":"checkout","unit":"a","variant":"control"},{"experiment":"checkout","unit":"","variant":"control"}]}`, 400, "invalid", "exposures[1].unit"},
		{"exposure unknown variant", "POST", "/v1/exposures",
			`{"exposures":[{"experiment":"checkout","unit":"a","variant":"blue"}]}`, 400, "invalid", "exposures[0].variant"},
		{"exposure unknown experiment", "POST", "/v1/exposures",
			`{"exposures":[{"experiment":"checkout","unit":"a","variant":"control"},{"experiment":"nope","unit":"b","variant":"control"}]}`, 400, "invalid", "exposures[1].experiment"},
		{"exposure draft experiment", "POST", "/v1/exposures",
			`{"exposures":[{"experiment":"drafty","unit":"a","variant":"control"}]}`, 409, "conflict", "exposures[0].experiment"},
		{"exposure bad time", "POST", "/v1/exposures",
			`{"exposures":[{"experiment":"checkout","unit":"a","variant":"control","ts":"yesterday"}]}`, 400, "invalid", "yesterday"},
		{"exposure unknown field", "POST", "/v1/exposures",
			`{"exposures":[{"experiment":"checkout","unit":"a","variant":"control","colour":1}]}`, 400, "invalid", "colour"},
		{"exposure holdout with variant", "POST", "/v1/exposures",
			`{"exposures":[{"experiment":"checkout","unit":"a","variant":"control","in_holdout":true}]}`, 400, "invalid", "exposures[0].variant"},
		{"exposure holdout version", "POST", "/v1/exposures",
			`{"exposures":[{"experiment":"checkout","unit":"a","in_holdout":true,"holdout_version":7}]}`, 400, "invalid", "exposures[0].holdout_version"},
	}
	ctx := context.Background()
	before, err := ts.db.Audit(ctx, "", "", 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, b := ts.do(c.method, c.path, ts.admin, c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d; body %s", status, c.status, b)
			}
			e := errorOf(t, b)
			if e.Code != c.code {
				t.Errorf("code %q, want %q", e.Code, c.code)
			}
			if !strings.Contains(e.Message, c.mention) {
				t.Errorf("message %q does not mention %q", e.Message, c.mention)
			}
			if e.RequestID == "" {
				t.Error("no request_id in the error body")
			}
		})
	}
	after, err := ts.db.Audit(ctx, "", "", 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("the audit log grew from %d to %d entries: a bad request changed the registry", len(before), len(after))
	}
	var n int
	if err := ts.db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM exposures").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d exposures stored by rejected requests, want 0", n)
	}
	var list experimentList
	ts.must(http.StatusOK, "GET", "/v1/experiments", nil, &list)
	if len(list.Experiments) != 3 {
		t.Errorf("%d experiments after the bad requests, want the 3 registered", len(list.Experiments))
	}
}

var twoArms = []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}
