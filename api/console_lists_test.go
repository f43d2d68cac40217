package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/privacy"
)

var summaryTitleRE = regexp.MustCompile(`<a class="title" href="/summaries/([^"]+)">`)

// TestSummariesPaginate: the summaries list shows pageSize summaries a page,
// newest period first, with links to the pages before and after, both in the
// console (a session) and on the viewers' own page (a key); every summary is on
// exactly one page; a bad page number is a 400 naming the field.
func TestSummariesPaginate(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	n := 2*pageSize + 3
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		p := t0.Add(time.Duration(i) * 24 * time.Hour)
		d := &experiment.Digest{ID: fmt.Sprintf("weekly-%03d", i), Job: "weekly", Period: p, Title: fmt.Sprintf("Summary %03d", i), Verdict: "no clear change", At: p, JSON: []byte(`{}`), HTML: []byte("<p>x</p>")}
		if _, err := ts.db.PublishDigest(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	viewer := ts.key("exec", experiment.RoleViewer)
	console := newBrowser(t, ts)
	console.signIn(viewer)
	for _, c := range []struct {
		name string
		get  func(path string) (int, string)
	}{
		{"console", func(path string) (int, string) { r := console.do(path, nil); return r.StatusCode, console.last }},
		{"key", func(path string) (int, string) {
			status, b := ts.do("GET", path, viewer, nil)
			return status, string(b)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ids []string
			for page := 1; page <= 3; page++ {
				status, body := c.get(fmt.Sprintf("/summaries?page=%d", page))
				if status != 200 {
					t.Fatalf("page %d: %d\n%s", page, status, body)
				}
				var got []string
				for _, m := range summaryTitleRE.FindAllStringSubmatch(body, -1) {
					got = append(got, m[1])
				}
				want := min(pageSize, n-(page-1)*pageSize)
				if len(got) != want {
					t.Errorf("page %d: %d summaries, want %d", page, len(got), want)
				}
				ids = append(ids, got...)
				if hasPrev := strings.Contains(body, fmt.Sprintf(`href="/summaries?page=%d" rel="prev"`, page-1)); hasPrev != (page > 1) {
					t.Errorf("page %d: a previous link %v", page, hasPrev)
				}
				if hasNext := strings.Contains(body, fmt.Sprintf(`href="/summaries?page=%d" rel="next"`, page+1)); hasNext != (page < 3) {
					t.Errorf("page %d: a next link %v", page, hasNext)
				}
			}
			if len(ids) != n {
				t.Fatalf("%d summaries over the pages, want %d", len(ids), n)
			}
			for i, id := range ids { // newest first, each once
				if want := fmt.Sprintf("weekly-%03d", n-1-i); id != want {
					t.Fatalf("summary %d is %s, want %s", i, id, want)
				}
			}
			for _, bad := range []string{"0", "-1", "two"} {
				status, body := c.get("/summaries?page=" + bad)
				if status != http.StatusBadRequest || !strings.Contains(body, "page: must be a whole number from 1") {
					t.Errorf("page=%s: %d, want 400 naming page:\n%s", bad, status, body)
				}
			}
		})
	}
}

// TestConsolePrivacyLedgerPaginate: the privacy page shows a scope's newest
// ledgerPage entries and links to the older ones (?scope=…&page=N), each
// entry on exactly one page, newest first, as GET …/privacy lists them; an
// unknown scope is a 404 and a page without a scope a 400, both naming the
// field.
func TestConsolePrivacyLedgerPaginate(t *testing.T) {
	ts := newTestServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "promo", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}}, nil)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/promo/privacy", map[string]any{"epsilon": 100, "release_epsilon": 0.5}, nil)
	ctx := context.Background()
	ledger := privacy.NewLedger(ts.db.Ledger())
	n := 2*ledgerPage + 5
	for i := range n {
		if err := ledger.Spend(ctx, privacy.ExperimentScope("promo"), 0.5, 0, "exec", fmt.Sprintf("release %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var all experiment.PrivacyAccount
	ts.must(http.StatusOK, "GET", "/v1/experiments/promo/privacy", nil, &all)
	if len(all.Entries) != n {
		t.Fatalf("the API lists %d entries, want %d", len(all.Entries), n)
	}
	b := newBrowser(t, ts)
	b.signIn(ts.key("ana", experiment.RoleAnalyst))
	whatRE := regexp.MustCompile(`<tr><td>[^<]*</td><td>exec</td><td>(release \d+)</td>`)
	scope := privacy.ExperimentScope("promo")
	var shown []string
	path := "/privacy"
	for page := 1; path != ""; page++ {
		if resp := b.do(path, nil); resp.StatusCode != 200 {
			t.Fatalf("%s: %d\n%s", path, resp.StatusCode, b.last)
		}
		got := whatRE.FindAllStringSubmatch(b.last, -1)
		if want := min(ledgerPage, n-(page-1)*ledgerPage); len(got) != want {
			t.Errorf("%s: %d entries, want %d", path, len(got), want)
		}
		for _, m := range got {
			shown = append(shown, m[1])
		}
		if hasPrev := strings.Contains(b.last, `rel="prev">Newer entries`); hasPrev != (page > 1) {
			t.Errorf("%s: a link to newer entries %v", path, hasPrev)
		}
		path = ""
		if m := regexp.MustCompile(`<a href="([^"]+)" rel="next">Older entries</a>`).FindStringSubmatch(b.last); m != nil {
			path = htmlText(m[1])
			if want := fmt.Sprintf("/privacy?page=%d&scope=%s", page+1, url.QueryEscape(scope)); path != want {
				t.Fatalf("the older page's link %s, want %s", path, want)
			}
		}
		if page > 5 {
			t.Fatal("more pages than entries")
		}
	}
	if len(shown) != n {
		t.Fatalf("%d entries over the pages, want %d", len(shown), n)
	}
	for i, e := range all.Entries { // the API's order: newest first
		if shown[i] != e.What {
			t.Fatalf("entry %d is %q, the API's %q", i, shown[i], e.What)
		}
	}
	for _, c := range []struct {
		path, want string
		status     int
	}{
		{"/privacy?scope=experiment:nope", "scope: no experiment or holdout", http.StatusNotFound},
		{"/privacy?page=2", "page: a page of the ledger is a page of one scope", http.StatusBadRequest},
		{"/privacy?page=0&scope=" + url.QueryEscape(scope), "page: must be a whole number from 1", http.StatusBadRequest},
	} {
		if resp := b.do(c.path, nil); resp.StatusCode != c.status || !strings.Contains(htmlText(b.last), c.want) {
			t.Errorf("%s: %d, want %d with %q", c.path, resp.StatusCode, c.status, c.want)
		}
	}
}
