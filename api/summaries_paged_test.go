package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestSummariesPaged: GET /v1/summaries and /v1/alerts list everything, a
// page at a time, newest first: ?limit=N (default 100, at most 500) and
// ?page=K (from 1), with next_page while more follow. Before, both stopped
// at the newest 200 with no way to read further.
func TestSummariesPaged(t *testing.T) {
	ts := newTestServer(t)
	viewer := ts.key("exec", experiment.RoleViewer)
	ctx := context.Background()
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	const n = 205
	for i := range n {
		p := start.Add(time.Duration(i) * 24 * time.Hour)
		d := &experiment.Digest{ID: fmt.Sprintf("weekly-%03d", i), Job: "weekly", Period: p, Target: "checkout",
			Title: fmt.Sprintf("Week %d", i), Verdict: "none", At: p, JSON: []byte(`{}`)}
		if _, err := ts.db.PublishDigest(ctx, d); err != nil {
			t.Fatal(err)
		}
	}

	// Default pages of 100 reach all 205, newest first, each once.
	var seen []string
	for page, next := 1, 1; next != 0; page++ {
		var list summaryList
		ts.mustAs(viewer, http.StatusOK, "GET", fmt.Sprintf("/v1/summaries?page=%d", next), nil, &list)
		if page > 3 {
			t.Fatalf("more than 3 pages of 100 for %d summaries", n)
		}
		for _, d := range list.Summaries {
			seen = append(seen, d.ID)
		}
		next = list.NextPage
	}
	if len(seen) != n || seen[0] != "weekly-204" || seen[n-1] != "weekly-000" {
		t.Fatalf("pages read %d summaries, first %q last %q; want %d, weekly-204 … weekly-000", len(seen), seen[0], seen[len(seen)-1], n)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("not newest first or repeated at %d: %q after %q", i, seen[i], seen[i-1])
		}
	}

	for _, c := range []struct {
		q     string
		count int
		next  int
	}{
		{"limit=10", 10, 2},
		{"limit=10&page=21", 5, 0},
		{"limit=10&page=22", 0, 0},
		{"limit=500", n, 0},
	} {
		var list summaryList
		ts.mustAs(viewer, http.StatusOK, "GET", "/v1/summaries?"+c.q, nil, &list)
		if len(list.Summaries) != c.count || list.NextPage != c.next {
			t.Errorf("?%s: %d summaries, next_page %d; want %d, %d", c.q, len(list.Summaries), list.NextPage, c.count, c.next)
		}
	}

	// Bad paging is a 400 naming the parameter, on both lists.
	for _, path := range []string{"/v1/summaries", "/v1/alerts"} {
		for _, c := range []struct{ q, field string }{
			{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=x", "limit"}, {"page=0", "page"}, {"page=-1", "page"},
		} {
			status, b := ts.do("GET", path+"?"+c.q, ts.admin, nil)
			if e := errorOf(t, b); status != http.StatusBadRequest || !strings.Contains(e.Message, c.field) {
				t.Errorf("GET %s?%s = %d %s, want 400 naming %s", path, c.q, status, b, c.field)
			}
		}
	}

	// The alert log pages the same way.
	for i := range 3 {
		at := start.Add(time.Duration(i) * time.Hour)
		if _, err := ts.db.AddAlert(ctx, &experiment.Alert{Job: "monitor", Period: at, Target: "checkout", Kind: "srm", Severity: "warning", Message: fmt.Sprintf("alert %d", i), At: at}); err != nil {
			t.Fatal(err)
		}
	}
	var al alertList
	ts.must(http.StatusOK, "GET", "/v1/alerts?limit=2", nil, &al)
	if len(al.Alerts) != 2 || al.NextPage != 2 || al.Alerts[0].Message != "alert 2" {
		t.Errorf("alerts page 1 = %+v", al)
	}
	al = alertList{}
	ts.must(http.StatusOK, "GET", "/v1/alerts?limit=2&page=2", nil, &al)
	if len(al.Alerts) != 1 || al.NextPage != 0 || al.Alerts[0].Message != "alert 0" {
		t.Errorf("alerts page 2 = %+v", al)
	}
}
