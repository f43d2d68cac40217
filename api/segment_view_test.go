package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/jsoncmp"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/store"
)

// TestSegmentView: the cached report by an attribute other than the
// default (the default view's report with its segments view alone computed
// again, segmentView) is the report BuildReport makes by that attribute:
// the same results, series, health, views and notes (numbers to 1e-9
// relative: DuckDB's parallel sums differ in their last bits from one
// computation to the next), its segments the API's POST
// /v1/analyses/segments by that attribute, and a note in place of the
// breakdown when the attribute cannot give one ("event:", no property).
func TestSegmentView(t *testing.T) {
	ts := newViewsServer(t)
	setupViews(t, ts)
	ctx := context.Background()
	var attrs []store.UnitAttributes
	for i := range 600 {
		attrs = append(attrs, store.UnitAttributes{Unit: fmt.Sprintf("p%d", i), Attributes: map[string]any{"plan": []string{"free", "pro"}[i%4/2]}})
	}

	if _, err := ts.db.UpsertUnitAttributes(ctx, attrs); err != nil {
		t.Fatal(err)
	}
	analyst := ts.key("ana", experiment.RoleAnalyst)
	doc := func(r *reports.Report) any {
		t.Helper()
		c := *r
		c.GeneratedAt, c.ComputedAt, c.Stale, c.Recomputing = time.Time{}, nil, false, false
		c.Notes = slices.Sorted(slices.Values(c.Notes))
		var b bytes.Buffer
		if err := c.JSON(&b); err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		attr string
		note bool // no breakdown: a note
	}{{"plan", false}, {"event:", true}, {"device", false}} {
		got, _, err := ts.srv.cachedReport(ctx, "promo", c.attr, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.attr, err)
		}
		want, err := BuildReport(ctx, ts.db, ts.srv.results, "promo", ReportOptions{SegmentBy: c.attr, Now: ts.srv.opt.Now})
		if err != nil {
			t.Fatal(err)
		}
		if d := jsoncmp.Diff(doc(got), doc(want), 1e-9); d != "" {
			t.Errorf("%s: the cached report differs from BuildReport's: %s", c.attr, d)
		}
		if c.note {
			if got.Segments != nil || !slices.ContainsFunc(got.Notes, func(n string) bool { return strings.HasPrefix(n, noSegments+"revenue by event:: ") }) {
				t.Errorf("%s: segments %+v, notes %q; want a note and no segments", c.attr, got.Segments, got.Notes)
			}
			continue
		}
		var seg segmentsResult
		ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "revenue", "attribute": c.attr}, &seg)
		if got.Segments == nil || got.Segments.Attribute != c.attr || len(got.Segments.Segments) != len(seg.Segments) {
			t.Fatalf("%s: segments %+v, the API's %d segments", c.attr, got.Segments, len(seg.Segments))
		}
		for i, s := range seg.Segments {
			g := got.Segments.Segments[i]
			if g.Segment != s.Segment || g.Control != s.Control || g.Treated != s.Treated || math.Abs(g.Absolute.Estimate-s.Absolute.Estimate) > 1e-9*math.Max(1, math.Abs(s.Absolute.Estimate)) {
				t.Errorf("%s segment %s: %+v, the API's %+v", c.attr, s.Segment, g, s)
			}
		}
		for _, n := range got.Notes {
			if strings.HasPrefix(n, noSegments) {
				t.Errorf("%s: a breakdown and the note %q", c.attr, n)
			}
		}
	}
}
