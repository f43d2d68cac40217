package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// TestViewCache: a value is reused for the same key within the age limit,
// recomputed for another data version or once older than the limit, never
// kept when it failed, and computed once for concurrent misses.
func TestViewCache(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	v1 := store.DataVersion{Exposures: 10, Events: 20, Writes: 3}
	v2 := v1
	v2.Writes++
	for _, c := range []struct {
		name   string
		maxAge time.Duration
		second viewKey
		wait   time.Duration // between the two gets
		fail   bool          // the first computation fails
		calls  int
	}{
		{"same key", time.Minute, viewKey{"a", v1}, 0, false, 1},
		{"same key, just before the age limit", time.Minute, viewKey{"a", v1}, time.Minute - time.Nanosecond, false, 1},
		{"same key, at the age limit", time.Minute, viewKey{"a", v1}, time.Minute, false, 2},
		{"another data version", time.Minute, viewKey{"a", v2}, 0, false, 2},
		{"another computation", time.Minute, viewKey{"b", v1}, 0, false, 2},
		{"a failure is not kept", time.Minute, viewKey{"a", v1}, 0, true, 2},
		{"caching off", -1, viewKey{"a", v1}, 0, false, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			at := now
			vc := newViewCache(func() time.Time { return at }, c.maxAge)
			calls := 0
			f := func() (any, error) {
				calls++
				if c.fail && calls == 1 {
					return nil, errors.New("boom")
				}
				return calls, nil
			}
			_, err := vc.get(context.Background(), viewKey{"a", v1}, f)
			if (err != nil) != c.fail {
				t.Fatalf("first get: %v", err)
			}
			at = at.Add(c.wait)
			got, err := vc.get(context.Background(), c.second, f)
			if err != nil || calls != c.calls || got != calls {
				t.Errorf("second get: %v, %v after %d computations, want %d", got, err, calls, c.calls)
			}
		})
	}
	t.Run("an older data version is dropped", func(t *testing.T) {
		vc := newViewCache(func() time.Time { return now }, time.Minute)
		vc.get(context.Background(), viewKey{"a", v1}, func() (any, error) { return 1, nil })
		vc.get(context.Background(), viewKey{"b", v2}, func() (any, error) { return 2, nil })
		if _, ok := vc.entries[viewKey{"a", v1}]; ok || len(vc.entries) != 1 {
			t.Errorf("entries %v, want only v2's", vc.entries)
		}
	})
	t.Run("concurrent misses compute once", func(t *testing.T) {
		vc := newViewCache(func() time.Time { return now }, time.Minute)
		var calls atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := vc.get(context.Background(), viewKey{"a", v1}, func() (any, error) {
					calls.Add(1)
					<-release
					return "x", nil
				})
				if err != nil || v != "x" {
					t.Errorf("got %v, %v", v, err)
				}
			}()
		}
		time.Sleep(10 * time.Millisecond) // let them queue on the entry (a shorter wait only makes the test weaker)
		close(release)
		wg.Wait()
		if n := calls.Load(); n != 1 {
			t.Errorf("%d computations, want 1", n)
		}
	})
}

// TestConsoleHoldoutsCache: the analyst's holdouts page reuses its exact
// results while the data stays the same (the numbers are the API's,
// GET /v1/holdouts/NAME/results, before and after), and shows the new ones as
// soon as events arrive, exposures are logged or the metric's definition
// changes.
func TestConsoleHoldoutsCache(t *testing.T) {
	ts := newJobServer(t)
	setupConsolePages(t, ts)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	ab := newBrowser(t, ts)
	ab.signIn(analyst)
	ctx := context.Background()
	rowRE := regexp.MustCompile(`<tr data-metric="converted">.*?<td class="n abs">([^<]*)</td><td class="n rel">([^<]*)</td><td class="n p">([^<]*)</td>`)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	check := func(when string) {
		t.Helper()
		var exact results.Results
		ts.mustAs(analyst, http.StatusOK, "GET", "/v1/holdouts/global/results?version=1", nil, &exact)
		if resp := ab.do("/holdouts", nil); resp.StatusCode != 200 {
			t.Fatalf("%s: holdouts %d\n%s", when, resp.StatusCode, ab.last)
		}
		cmp := exact.Metrics[0].Comparisons[0]
		row := rowRE.FindStringSubmatch(ab.last)
		if row == nil || !shownAs(htmlText(row[1]), cmp.Absolute.Estimate, cmp.Absolute.CILow, cmp.Absolute.CIHigh) || !shownAs(row[3], cmp.Absolute.PValue) {
			t.Errorf("%s: the cohort row %q, the API's absolute %s, p %s", when, row, fmtEffect(cmp.Absolute.Estimate, cmp.Absolute.CILow, cmp.Absolute.CIHigh), consoleNum(cmp.Absolute.PValue))
		}
		if units := fmt.Sprintf("holdout %d · exposed %d", exact.Exposures["holdout"], exact.Exposures["exposed"]); !regexp.MustCompile(regexp.QuoteMeta(units) + `\b`).MatchString(ab.last) {
			t.Errorf("%s: the page lacks the API's units %q", when, units)
		}
	}
	check("first")
	v := ts.db.DataVersion()
	n := len(ts.srv.views.entries)
	check("again") // the API's GET stores a snapshot, which leaves the data's version alone
	if ts.db.DataVersion() != v || len(ts.srv.views.entries) != n || n == 0 {
		t.Errorf("the second page changed the data version (%v, then %v) or the cache (%d entries, then %d)", v, ts.db.DataVersion(), n, len(ts.srv.views.entries))
	}
	// Every held-out unit converts: the effect changes sign.
	var evs []experiment.Event
	for i := 0; i < 2000; i += 10 {
		evs = append(evs, experiment.Event{EventID: fmt.Sprintf("late%d", i), Unit: fmt.Sprintf("u%d", i), Type: "purchase", TS: t0, Value: 1})
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	check("after new events")
	// More exposed units, none converting.
	var xs []experiment.Exposure
	for i := range 300 {
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: fmt.Sprintf("new%d", i), Variant: "treatment", TS: t0, HoldoutVersion: 1})
	}
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	check("after new exposures")
	// converted now counts purchases within 1.5 hours of the exposure: the
	// late ones (2 hours after) no longer.
	ts.must(http.StatusOK, "PUT", "/v1/metrics/converted", map[string]any{"event_type": "purchase", "aggregation": "binary", "window": map[string]any{"start_days": 0, "end_days": 0.0625}}, nil)
	check("after the definition changed")
}

// TestConsoleJourneysCache: the journeys page reuses its comparison while
// no decision or data arrives, and shows the API's new daily decisions
// (GET /v1/journeys/KEY/comparison) once more are made.
func TestConsoleJourneysCache(t *testing.T) {
	ts := newJourneyServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, nil)
	b := newBrowser(t, ts)
	b.signIn(ts.admin)
	decided := 0
	for _, more := range []int{30, 0, 12} {
		for range more {
			ts.must(http.StatusOK, "POST", "/v1/journeys/home/decide", map[string]any{"unit": fmt.Sprintf("user-%d", decided)}, nil)
			decided++
		}
		if resp := b.do("/journeys", nil); resp.StatusCode != 200 {
			t.Fatalf("%d\n%s", resp.StatusCode, b.last)
		}
		var cmp struct {
			Summary struct{ Decisions int64 } `json:"summary"`
		}
		ts.must(http.StatusOK, "GET", "/v1/journeys/home/comparison", nil, &cmp)
		if cmp.Summary.Decisions != int64(decided) {
			t.Fatalf("the API's comparison counts %d decisions, %d were made", cmp.Summary.Decisions, decided)
		}
		var shown int64
		for _, m := range regexp.MustCompile(`<tr data-day="[^"]+"><td>[^<]+</td><td class="n">(\d+)</td>`).FindAllStringSubmatch(b.last, -1) {
			var n int64
			fmt.Sscan(m[1], &n)
			shown += n
		}
		if shown != int64(decided) {
			t.Errorf("after %d decisions the page's days add up to %d", decided, shown)
		}
	}
}
