package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
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
		if stale := strings.Contains(ab.last, `id="stale"`); stale != (when != "first" && when != "again") {
			t.Errorf("%s: the page says it is stale: %v", when, stale)
		}
		if strings.Contains(ab.last, `id="stale"`) {
			// the older numbers at once, the new ones computed in the background
			settleViews(ts)
			if resp := ab.do("/holdouts", nil); resp.StatusCode != 200 || strings.Contains(ab.last, `id="stale"`) {
				t.Fatalf("%s: holdouts %d after the computation, stale again:\n%s", when, resp.StatusCode, ab.last)
			}
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
// no decision or data arrives; once more decisions are made it shows the
// previous comparison at once, said stale, while the new one is computed,
// and then the API's new daily decisions (GET /v1/journeys/KEY/comparison).
func TestConsoleJourneysCache(t *testing.T) {
	ts := newJourneyServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, nil)
	b := newBrowser(t, ts)
	b.signIn(ts.admin)
	shown := func() int64 {
		var sum int64
		for _, m := range regexp.MustCompile(`<tr data-day="[^"]+"><td>[^<]+</td><td class="n">(\d+)</td>`).FindAllStringSubmatch(b.last, -1) {
			var n int64
			fmt.Sscan(m[1], &n)
			sum += n
		}
		return sum
	}
	decided, before := 0, 0
	for _, more := range []int{30, 0, 12} {
		for range more {
			ts.must(http.StatusOK, "POST", "/v1/journeys/home/decide", map[string]any{"unit": fmt.Sprintf("user-%d", decided)}, nil)
			decided++
		}
		if resp := b.do("/journeys", nil); resp.StatusCode != 200 {
			t.Fatalf("%d\n%s", resp.StatusCode, b.last)
		}
		if stale := strings.Contains(b.last, `id="stale"`); stale != (before > 0 && more > 0) {
			t.Errorf("after %d decisions (%d before): the page says stale %v", decided, before, stale)
		}
		if strings.Contains(b.last, `id="stale"`) {
			if got := shown(); got != int64(before) {
				t.Errorf("stale, after %d decisions: the page's days add up to %d, want the previous %d", decided, got, before)
			}
			settleViews(ts)
			if resp := b.do("/journeys", nil); resp.StatusCode != 200 || strings.Contains(b.last, `id="stale"`) {
				t.Fatalf("after the computation: %d, stale again\n%s", resp.StatusCode, b.last)
			}
		}
		var cmp struct {
			Summary struct{ Decisions int64 } `json:"summary"`
		}
		ts.must(http.StatusOK, "GET", "/v1/journeys/home/comparison", nil, &cmp)
		if cmp.Summary.Decisions != int64(decided) {
			t.Fatalf("the API's comparison counts %d decisions, %d were made", cmp.Summary.Decisions, decided)
		}
		if got := shown(); got != int64(decided) {
			t.Errorf("after %d decisions the page's days add up to %d", decided, got)
		}
		before = decided
	}
}

// TestViewCacheRecent: recent answers at once with the newest value of the
// same view while the one of a newer data version is computed in the
// background (Stale, with the time its computation started), never with one
// computed maxAge ago or earlier, runs one computation of a view at a time
// whatever the versions asked for, finishes it for the next reader when the
// first leaves, and keeps no failure.
func TestViewCacheRecent(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const maxAge = time.Minute
	ver := func(w uint64) store.DataVersion { return store.DataVersion{Exposures: 10, Events: 20, Writes: w} }
	// A computation of version w ("vW") ends once its gate is open.
	type rig struct {
		now     time.Time
		vc      *viewCache
		gates   map[uint64]chan struct{}
		mu      sync.Mutex
		started []string
	}
	newRig := func() *rig {
		r := &rig{now: t0, gates: map[uint64]chan struct{}{}}
		r.vc = newViewCache(func() time.Time { return r.now }, maxAge)
		for w := uint64(1); w <= 3; w++ {
			r.gates[w] = make(chan struct{})
		}
		return r
	}
	f := func(r *rig, w uint64, fail bool) func(context.Context) (any, error) {
		return func(context.Context) (any, error) {
			r.mu.Lock()
			r.started = append(r.started, fmt.Sprintf("v%d", w))
			r.mu.Unlock()
			<-r.gates[w]
			if fail {
				return nil, errors.New("boom")
			}
			return fmt.Sprintf("v%d", w), nil
		}
	}
	// settle waits for the computation under way if its gate is open.
	settle := func(r *rig) {
		r.vc.mu.Lock()
		e := r.vc.running["a"]
		r.vc.mu.Unlock()
		if e == nil {
			return
		}
		select {
		case <-r.gates[e.version.Writes]:
			<-e.done
		default:
		}
	}
	type step struct {
		at      time.Duration // the clock, from t0
		open    []uint64      // gates opened before the get
		version uint64        // the version asked for
		want    string
		stale   bool
		asOf    time.Duration // the answer's computation's start, from t0
	}
	for _, c := range []struct {
		name    string
		steps   []step
		started string // the computations, in order
	}{
		{"the first reader waits; the same version is reused", []step{
			{0, []uint64{1}, 1, "v1", false, 0},
			{10 * time.Second, nil, 1, "v1", false, 0},
		}, "[v1]"},
		{"new data: the old value at once, stale, then the new one", []step{
			{0, []uint64{1}, 1, "v1", false, 0},
			{10 * time.Second, []uint64{2}, 2, "v1", true, 0},
			{11 * time.Second, nil, 2, "v2", false, 10 * time.Second},
		}, "[v1 v2]"},
		{"one computation of a view at a time", []step{
			{0, []uint64{1}, 1, "v1", false, 0},
			{10 * time.Second, nil, 2, "v1", true, 0},                        // v2's starts
			{11 * time.Second, nil, 3, "v1", true, 0},                        // v2's is under way: nothing starts
			{12 * time.Second, []uint64{2}, 3, "v2", true, 10 * time.Second}, // v2's ended; v3's starts
			{13 * time.Second, []uint64{3}, 3, "v3", false, 12 * time.Second},
		}, "[v1 v2 v3]"},
		{"an older value of any age is shown while the new one is computed", []step{
			{0, []uint64{1}, 1, "v1", false, 0},
			{maxAge - time.Nanosecond, nil, 2, "v1", true, 0},
			// v2's ended: v3's starts, and v2, older than maxAge by now, is shown meanwhile
			{2 * maxAge, []uint64{2, 3}, 3, "v2", true, maxAge - time.Nanosecond},
			{2*maxAge + time.Second, nil, 3, "v3", false, 2 * maxAge},
		}, "[v1 v2 v3]"},
		{"the same version at maxAge: the old value, said old, while it is computed again", []step{
			{0, []uint64{1}, 1, "v1", false, 0},
			{maxAge, nil, 1, "v1 old", false, 0},
			{maxAge + time.Second, nil, 1, "v1", false, maxAge},
		}, "[v1 v1]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig()
			for i, s := range c.steps {
				r.now = t0.Add(s.at)
				for _, w := range s.open {
					close(r.gates[w])
				}
				settle(r)
				got, err := r.vc.recent(context.Background(), viewKey{"a", ver(s.version)}, f(r, s.version, false), time.Time{})
				want, old := strings.CutSuffix(s.want, " old") // "vW old": said to be old
				if err != nil || got.V != want || got.Stale != s.stale || got.Old != old || !got.At.Equal(t0.Add(s.asOf)) {
					t.Errorf("step %d: %v (stale %v, old %v, computed at %v), %v; want %s (stale %v, at %v)", i, got.V, got.Stale, got.Old, got.At.Sub(t0), err, s.want, s.stale, s.asOf)
				}
			}
			for w, g := range r.gates { // end what is left, then compare
				select {
				case <-g:
				default:
					close(r.gates[w])
				}
			}
			settle(r)
			r.mu.Lock()
			defer r.mu.Unlock()
			if fmt.Sprint(r.started) != c.started {
				t.Errorf("computations %v, want %s", r.started, c.started)
			}
		})
	}
	t.Run("a reader who leaves leaves the value for the next", func(t *testing.T) {
		r := newRig()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := r.vc.recent(ctx, viewKey{"a", ver(1)}, f(r, 1, false), time.Time{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled reader: %v, want context.Canceled", err)
		}
		close(r.gates[1])
		got, err := r.vc.recent(context.Background(), viewKey{"a", ver(1)}, f(r, 1, false), time.Time{})
		if err != nil || got.V != "v1" || got.Stale || fmt.Sprint(r.started) != "[v1]" {
			t.Errorf("the next reader: %v, %v after computations %v, want v1 of the one computation", got, err, r.started)
		}
	})
	t.Run("a reader with a deadline and nothing older is told it is being computed", func(t *testing.T) {
		r := newRig()
		until := time.Now().Add(20 * time.Millisecond)
		if got, err := r.vc.recent(context.Background(), viewKey{"a", ver(1)}, f(r, 1, false), until); !errors.Is(err, errComputing) {
			t.Fatalf("before the deadline's end: %+v, %v; want errComputing", got, err)
		}
		// A second reader while it computes: told the same, without a
		// second computation.
		if _, err := r.vc.recent(context.Background(), viewKey{"a", ver(1)}, f(r, 1, false), time.Now().Add(time.Millisecond)); !errors.Is(err, errComputing) {
			t.Fatalf("the second reader: %v; want errComputing", err)
		}
		// A reader who leaves is told so, not errComputing.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := r.vc.recent(ctx, viewKey{"a", ver(1)}, f(r, 1, false), time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled reader: %v; want context.Canceled", err)
		}
		close(r.gates[1])
		settle(r)
		got, err := r.vc.recent(context.Background(), viewKey{"a", ver(1)}, f(r, 1, false), time.Now().Add(time.Millisecond))
		if err != nil || got.V != "v1" || got.Stale || fmt.Sprint(r.started) != "[v1]" {
			t.Errorf("the reload: %+v, %v after computations %v; want v1 of the one computation", got, err, r.started)
		}
	})
	t.Run("a failure is not kept", func(t *testing.T) {
		r := newRig()
		close(r.gates[1])
		r.vc.recent(context.Background(), viewKey{"a", ver(1)}, f(r, 1, false), time.Time{})
		r.now = t0.Add(time.Second)
		close(r.gates[2])
		if got, err := r.vc.recent(context.Background(), viewKey{"a", ver(2)}, f(r, 2, true), time.Time{}); err != nil || got.V != "v1" || !got.Stale {
			t.Fatalf("while v2's computes: %v, %v, want v1, stale", got, err)
		}
		settle(r)
		r.now = t0.Add(2 * time.Second)
		// v2's failed: a stale v1 again while v2 is computed once more, which now fails no more
		got, err := r.vc.recent(context.Background(), viewKey{"a", ver(2)}, f(r, 2, false), time.Time{})
		settle(r)
		if err != nil || got.V != "v1" || !got.Stale || fmt.Sprint(r.started) != "[v1 v2 v2]" {
			t.Errorf("after the failure: %v, %v after computations %v, want v1 (stale) and v2 computed again", got, err, r.started)
		}
		if got, err := r.vc.recent(context.Background(), viewKey{"a", ver(2)}, f(r, 2, false), time.Time{}); err != nil || got.V != "v2" || got.Stale {
			t.Errorf("then: %v, %v, want v2", got, err)
		}
	})
}

// TestViewCacheRefresh: refresh computes again the views read in the last
// idle period whose newest value is of another data version or half MaxAge
// old, one at a time, so that the next reader gets the new value without
// waiting; views not read for idle, or that never had a value, are left.
func TestViewCacheRefresh(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const maxAge, idle = time.Minute, 15 * time.Minute
	now := t0
	vc := newViewCache(func() time.Time { return now }, maxAge)
	ctx := context.Background()
	v1 := store.DataVersion{Exposures: 10, Events: 20, Writes: 1}
	v2 := v1
	v2.Events++
	var calls atomic.Int32
	f := func(context.Context) (any, error) { return fmt.Sprintf("c%d", calls.Add(1)), nil }
	fail := func(context.Context) (any, error) { calls.Add(1); return nil, errors.New("boom") }
	if got, err := vc.recent(ctx, viewKey{"a", v1}, f, time.Time{}); err != nil || got.V != "c1" {
		t.Fatalf("first read: %v, %v", got, err)
	}
	if _, err := vc.recent(ctx, viewKey{"b", v1}, fail, time.Time{}); err == nil {
		t.Fatal("the failing view did not fail")
	}
	for i, s := range []struct {
		at      time.Duration
		version store.DataVersion
		n       int    // views refreshed
		want    string // a's value read then, at once and not stale
	}{
		{10 * time.Second, v1, 0, "c1"},                     // fresh: nothing to do
		{20 * time.Second, v2, 1, "c3"},                     // new data: a (not b, which has no value) computed again
		{20*time.Second + maxAge/2, v2, 1, "c4"},            // half MaxAge old: computed again for the time
		{30*time.Second + maxAge/2, v2, 0, "c4"},            // fresh again
		{30*time.Second + maxAge/2 + idle, v2, 0, "c4 old"}, // a was last read idle ago: left (read again here, it is old, and computed again)
	} {
		now = t0.Add(s.at)
		before := calls.Load()
		if n := vc.refresh(ctx, s.version, idle); n != s.n {
			t.Errorf("step %d: refreshed %d views, want %d", i, n, s.n)
		}
		if s.n == 0 && calls.Load() != before {
			t.Errorf("step %d: %d computations, want none", i, calls.Load()-before)
		}
		want, old := strings.CutSuffix(s.want, " old")
		if got, err := vc.recent(ctx, viewKey{"a", s.version}, f, time.Time{}); err != nil || got.V != want || got.Stale || got.Old != old {
			t.Errorf("step %d: a read after the refresh: %+v, %v; want %s", i, got, err, s.want)
		}
	}
}

// settleViews waits for the console cache's computations under way.
func settleViews(ts *tserver) {
	ts.srv.views.mu.Lock()
	var running []*viewEntry
	for _, e := range ts.srv.views.running {
		running = append(running, e)
	}
	ts.srv.views.mu.Unlock()
	for _, e := range running {
		<-e.done
	}
}

var refreshRE = regexp.MustCompile(`<meta http-equiv="refresh" content="1">`)

// TestConsoleComputing: a page whose exact numbers were never computed
// answers within Options.ConsoleWait (here 1 ns, so that none is ready in
// time) saying they are being computed, with a reload every second and
// no number; the computation goes on without the reader, and the reload
// shows the API's numbers, without the reload. The experiment page, the
// holdouts page and the journeys page (whose comparison stores its roll-up
// in the background while the API's comparison may run: they do not
// conflict).
func TestConsoleComputing(t *testing.T) {
	t.Run("experiment and holdouts", func(t *testing.T) {
		ts := newJobServer(t)
		setupConsolePages(t, ts)
		ts.srv.opt.ConsoleWait = time.Nanosecond
		analyst := ts.key("ana", experiment.RoleAnalyst)
		ab := newBrowser(t, ts)
		ab.signIn(analyst)

		if resp := ab.do("/experiments/checkout", nil); resp.StatusCode != 200 {
			t.Fatalf("experiment page: %d\n%s", resp.StatusCode, ab.last)
		}
		if !strings.Contains(ab.last, `id="computing"`) || !refreshRE.MatchString(ab.last) || strings.Contains(ab.last, `aria-label="Report"`) || strings.Contains(ab.last, `id="unready"`) {
			t.Fatalf("the first look: want the computing card and the reload, no report:\n%s", ab.last)
		}
		settleViews(ts)
		if resp := ab.do("/experiments/checkout", nil); resp.StatusCode != 200 || strings.Contains(ab.last, `id="computing"`) || refreshRE.MatchString(ab.last) {
			t.Fatalf("the reload: %d, still computing or reloading:\n%s", resp.StatusCode, ab.last)
		}
		var exact results.Results
		ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &exact)
		rows := map[string]string{}
		for _, m := range rowRE.FindAllStringSubmatch(ab.last, -1) { // metric, variant, n, …
			if cells := cellRE.FindAllStringSubmatch(m[3], -1); len(cells) > 2 {
				rows[m[1]+"/"+m[2]] = strings.ReplaceAll(tagRE.ReplaceAllString(cells[2][1], ""), ",", "")
			}
		}
		n := 0
		for _, m := range exact.Metrics {
			for _, v := range m.Variants[1:] {
				if got := rows[m.Name+"/"+v.Name]; got != fmt.Sprint(v.N) {
					t.Errorf("%s/%s: the page's n %q, the API's %d", m.Name, v.Name, got, v.N)
				}
				n++
			}
		}
		if n == 0 {
			t.Fatal("no row compared")
		}

		if resp := ab.do("/holdouts", nil); resp.StatusCode != 200 {
			t.Fatalf("holdouts: %d\n%s", resp.StatusCode, ab.last)
		}
		if !strings.Contains(ab.last, computingText) || !refreshRE.MatchString(ab.last) || strings.Contains(ab.last, `data-metric="converted"`) {
			t.Fatalf("the holdouts' first look: want the computing note and the reload, no numbers:\n%s", ab.last)
		}
		settleViews(ts)
		if resp := ab.do("/holdouts", nil); resp.StatusCode != 200 || strings.Contains(ab.last, computingText) || refreshRE.MatchString(ab.last) || !strings.Contains(ab.last, `data-metric="converted"`) {
			t.Fatalf("the holdouts' reload: %d, still computing or without numbers:\n%s", resp.StatusCode, ab.last)
		}
	})
	t.Run("journeys", func(t *testing.T) {
		ts := newJourneyServer(t)
		ts.srv.opt.ConsoleWait = time.Nanosecond
		ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, nil)
		for i := range 40 {
			ts.must(http.StatusOK, "POST", "/v1/journeys/home/decide", map[string]any{"unit": fmt.Sprintf("user-%d", i)}, nil)
		}
		b := newBrowser(t, ts)
		b.signIn(ts.admin)
		if resp := b.do("/journeys", nil); resp.StatusCode != 200 {
			t.Fatalf("%d\n%s", resp.StatusCode, b.last)
		}
		if !strings.Contains(b.last, computingText) || !refreshRE.MatchString(b.last) || strings.Contains(b.last, `class="n p50"`) {
			t.Fatalf("the first look: want the computing note and the reload, no guardrails:\n%s", b.last)
		}
		// The API's comparison while the page's is computed: both succeed.
		var cmp struct {
			Days []struct {
				Decisions int64
				P50       float64 `json:"latency_p50_ms"`
			} `json:"days"`
		}
		ts.must(http.StatusOK, "GET", "/v1/journeys/home/comparison", nil, &cmp)
		settleViews(ts)
		if resp := b.do("/journeys", nil); resp.StatusCode != 200 || strings.Contains(b.last, computingText) || refreshRE.MatchString(b.last) {
			t.Fatalf("the reload: %d, still computing:\n%s", resp.StatusCode, b.last)
		}
		if len(cmp.Days) == 0 {
			t.Fatal("the API's comparison has no day")
		}
		for _, d := range cmp.Days {
			if want := fmt.Sprintf(`<td class="n p50">%s</td>`, consoleNum(d.P50)); !strings.Contains(b.last, want) || !strings.Contains(b.last, fmt.Sprintf(`<td class="n">%d</td>`, d.Decisions)) {
				t.Errorf("the page lacks the API's day: %s, %d decisions", want, d.Decisions)
			}
		}
	})
}

// TestViewCacheClose: close cancels a computation started in the background
// and returns once it has ended (lift serve then closes the store with no
// transaction of it left); nothing is started afterwards.
func TestViewCacheClose(t *testing.T) {
	vc := newViewCache(time.Now, time.Minute)
	ended := make(chan error, 1)
	f := func(ctx context.Context) (any, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}
	if _, err := vc.recent(context.Background(), viewKey{What: "a"}, f, time.Now().Add(time.Millisecond)); !errors.Is(err, errComputing) {
		t.Fatalf("the first look: %v, want errComputing", err)
	}
	vc.close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the computation ended with %v, want context.Canceled", err)
		}
	default:
		t.Fatal("close returned before the computation ended")
	}
	calls := 0
	g := func(context.Context) (any, error) { calls++; return "v", nil }
	if _, err := vc.recent(context.Background(), viewKey{What: "b"}, g, time.Time{}); !experiment.Is(err, experiment.Unavailable) || calls != 0 {
		t.Errorf("after close: %v with %d computations, want Unavailable and none", err, calls)
	}
}
