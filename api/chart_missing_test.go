package api

import (
	"html"
	"net/http"
	"strings"
	"testing"
)

// TestMissingChartSaysWhy: setupPrivate's experiment has one day of data
// (2026-03-01), too little for a cumulative chart. The report must say so where
// the chart would be, and asking for the chart must answer why it is missing,
// not a bare "no chart".
func TestMissingChartSaysWhy(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	const why = "the cumulative chart of revenue needs at least two days of data; this experiment has one (2026-03-01)"
	status, b := ts.do("GET", "/v1/experiments/checkout/report.html", ts.admin, nil)
	if page := html.UnescapeString(string(b)); status != http.StatusOK || !strings.Contains(strings.ToLower(page), why) {
		t.Errorf("report.html (%d) does not say %q", status, why)
	}
	status, b = ts.do("GET", "/v1/experiments/checkout/plots/cumulative.png", ts.admin, nil)
	if e := errorOf(t, b); status != http.StatusNotFound || !strings.Contains(strings.ToLower(e.Message), why) {
		t.Errorf("plots/cumulative.png: %d %+v, want 404 saying %q", status, e, why)
	}
}
