package reports

import (
	"bytes"
	"html"
	"strings"
	"testing"
)

// TestUnestimableRow: a comparison whose effect cannot be estimated (every unit
// of both arms has the same value) holds the uninformative default of the
// analysis (0 [0, 0], p = 1); the report must not print that as a measured zero
// effect next to means of 12 and 10, but say that it cannot be estimated, and why.
func TestUnestimableRow(t *testing.T) {
	r := &Report{Experiment: "x", Name: "x", Correction: "holm", Results: []Result{
		{Metric: "revenue", Variant: "treatment", Control: "control", N: 400, Mean: 12, ControlN: 400, ControlMean: 10,
			Absolute: Estimate{PValue: 1}, Relative: &Estimate{PValue: 1}, Adjusted: &Adjusted{Method: "holm", Absolute: 1, Relative: 1},
			Unestimable: "neither arm varies (every unit has the same value), so there is no standard error"},
	}}
	var hb, mb bytes.Buffer
	if err := r.HTML(&hb, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Markdown(&mb, ""); err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{"HTML": html.UnescapeString(hb.String()), "Markdown": mb.String()} {
		if strings.Contains(doc, "0.0000 [0.0000, 0.0000]") || strings.Contains(doc, "+0.00% [+0.00%, +0.00%]") {
			t.Errorf("%s prints the uninformative default as a measured effect", name)
		}
		for _, want := range []string{"cannot be estimated", "neither arm varies"} {
			if !strings.Contains(doc, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
	}
}
