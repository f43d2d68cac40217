package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestConsoleReportCache: the analyst's experiment page and its downloads
// share one computation of the exact report per version of the data (one
// results snapshot stored, the same "as of" time); after new events the
// page is served at once from the last computation, saying so (the stale
// banner, the old numbers and their time), and once the background
// computation ends the next request shows the new numbers, not stale. The
// API's report routes answer for the data now.
//
// The means are the fixture's, summed here (fixtureMean): each unit of
// setupPrivate buys once (control 10, treatment 12), setupConsole adds
// 5 + i mod 7 for unit i divisible by 3, and this test 20 more each.
func TestConsoleReportCache(t *testing.T) {
	ts := newTestServer(t)
	setupConsole(t, ts)
	ctx := context.Background()
	analyst := ts.key("ana", experiment.RoleAnalyst)
	b := newBrowser(t, ts)
	b.signIn(analyst)
	meanRE := regexp.MustCompile(`data-metric="revenue" data-variant="treatment"><td>.*?</td><td>treatment</td><td>[^<]*</td><td>([^<]*)</td>`)
	asOfRE := regexp.MustCompile(`id="as-of">results as of ([^<]+)<`)
	type shown struct {
		mean, asOf string
		stale      bool
	}
	get := func(path string) shown {
		t.Helper()
		if resp := b.do(path, nil); resp.StatusCode != 200 {
			t.Fatalf("%s: %d\n%s", path, resp.StatusCode, b.last)
		}
		m, a := meanRE.FindStringSubmatch(b.last), asOfRE.FindStringSubmatch(b.last)
		if m == nil || a == nil {
			t.Fatalf("%s: no revenue row or no as-of time:\n%s", path, b.last)
		}
		return shown{m[1], a[1], strings.Contains(b.last, `id="stale"`)}
	}
	snapshots := func() int {
		t.Helper()
		s, err := ts.db.ResultSnapshots(ctx, "experiment", "checkout", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(s)
	}
	settle := func() { settleViews(ts) } // the background computation, if one is under way

	// fixtureMean is the mean revenue of the arm of units i with i mod 2 == odd.
	fixtureMean := func(odd int, price, more float64) float64 {
		var sum, n float64
		for i := range 800 {
			if i%2 != odd {
				continue
			}
			sum, n = sum+price+more, n+1
			if i%3 == 0 {
				sum += float64(5 + i%7)
			}
		}
		return sum / n
	}
	first := get("/experiments/checkout")
	if first.stale || !shownAs(first.mean, fixtureMean(1, 12, 0)) {
		t.Fatalf("first page: %+v, want the treatment's mean %g, not stale", first, fixtureMean(1, 12, 0))
	}
	n := snapshots()
	for _, f := range []string{"report.html", "results.csv", "forest.svg"} {
		if resp := b.do("/experiments/checkout/files/"+f, nil); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", f, resp.StatusCode)
		}
		if f == "report.html" {
			if a := asOfRE.FindStringSubmatch(b.last); a == nil || a[1] != first.asOf {
				t.Errorf("report.html is as of %v, the page as of %s", a, first.asOf)
			}
		}
	}
	if again := get("/experiments/checkout"); again != first || snapshots() != n {
		t.Errorf("again: %+v after %d snapshots, want %+v and %d: one computation for the page and its downloads", again, snapshots(), first, n)
	}

	var evs []experiment.Event
	for i := 1; i < 800; i += 2 {
		evs = append(evs, experiment.Event{EventID: fmt.Sprintf("more-u%d", i), Unit: fmt.Sprintf("u%d", i), Type: "purchase", TS: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Value: 20})
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	stale := get("/experiments/checkout")
	if !stale.stale || stale.mean != first.mean || stale.asOf != first.asOf {
		t.Errorf("right after new events: %+v, want the first page's numbers and time (%+v), said to be stale", stale, first)
	}
	if !strings.Contains(b.last, "data has arrived since") {
		t.Errorf("the stale page does not say why:\n%s", b.last)
	}
	settle()
	fresh := get("/experiments/checkout")
	if fresh.stale || !shownAs(fresh.mean, fixtureMean(1, 12, 20)) {
		t.Errorf("after the background computation: %+v, want the mean %g, not stale", fresh, fixtureMean(1, 12, 20))
	}

	// The API's report is of the data now, even while the console's would be stale.
	evs = evs[:0]
	for i := 0; i < 800; i += 2 {
		evs = append(evs, experiment.Event{EventID: fmt.Sprintf("more-u%d", i), Unit: fmt.Sprintf("u%d", i), Type: "purchase", TS: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Value: 20})
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	status, body := ts.do("GET", "/v1/experiments/checkout/report.html", analyst, nil)
	m := meanRE.FindSubmatch(body)
	if status != 200 || m == nil || !shownAs(string(m[1]), fixtureMean(1, 12, 20)) || strings.Contains(string(body), `id="stale"`) {
		t.Errorf("the API's report: %d, the treatment's mean %q, want %g and not stale", status, m, fixtureMean(1, 12, 20))
	}
	controlRE := regexp.MustCompile(`data-metric="revenue" data-variant="treatment"><td>.*?</td><td>treatment</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>`)
	if c := controlRE.FindSubmatch(body); c == nil || !shownAs(string(c[1]), fixtureMean(0, 10, 20)) {
		t.Errorf("the API's report: the control's mean %q, want %g (the data now)", c, fixtureMean(0, 10, 20))
	}
}

// TestWarmCache: after WarmCache (lift serve runs it at start) an
// analyst's first experiment page and holdouts page compute nothing: no new
// results snapshot, no new cache entry, and the page is not stale; for a
// running experiment and for a stopped one (whose final results are read).
func TestWarmCache(t *testing.T) {
	for _, stopped := range []bool{false, true} {
		t.Run(fmt.Sprintf("stopped=%v", stopped), func(t *testing.T) {
			ts := newJobServer(t)
			setupConsolePages(t, ts)
			ctx := context.Background()
			if stopped {
				ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/stop", nil, nil)
			}
			b := newBrowser(t, ts)
			b.signIn(ts.key("ana", experiment.RoleAnalyst)) // a new key is a write of the registry: before the warm-up
			if err := ts.srv.WarmCache(ctx); err != nil {
				t.Fatal(err)
			}
			snaps, err := ts.db.ResultSnapshots(ctx, "experiment", "checkout", 100)
			if err != nil {
				t.Fatal(err)
			}
			entries := len(ts.srv.views.entries)
			if len(snaps) != 1 || entries == 0 {
				t.Fatalf("after the warm-up: %d snapshots of checkout, %d cache entries; want 1 and some", len(snaps), entries)
			}
			for _, p := range []string{"/experiments/checkout", "/holdouts", "/experiments/checkout/files/results.csv"} {
				if resp := b.do(p, nil); resp.StatusCode != 200 {
					t.Fatalf("%s: %d\n%s", p, resp.StatusCode, b.last)
				}
				if strings.Contains(b.last, `id="stale"`) {
					t.Errorf("%s is stale", p)
				}
			}
			after, err := ts.db.ResultSnapshots(ctx, "experiment", "checkout", 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(snaps) || len(ts.srv.views.entries) != entries {
				t.Errorf("the pages computed: %d snapshots (was %d), %d cache entries (was %d)", len(after), len(snaps), len(ts.srv.views.entries), entries)
			}
		})
	}
}
