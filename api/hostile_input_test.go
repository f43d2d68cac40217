package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// sendRaw sends body as is with the content type and returns the status and
// the decoded error (zero when the answer is not an error body).
func (ts *tserver) sendRaw(method, path, key, contentType, body string) (int, errorDetail) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.http.URL+path, strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := ts.http.Client().Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiError
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

// storedStrings returns the values of a one-column query, sorted.
func storedStrings(t *testing.T, db *store.DB, query string) []string {
	t.Helper()
	rows, err := db.SQL().Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// Issue 15, item 1: a NUL byte or another control character in any identifier
// is refused with 400 naming the field, and nothing of the request is stored.
// Before the fix, "btn\u0000x" passed validation (DuckDB cut it to "btn") and
// failed the shared group commit; "victim\u0000x" was stored as "victim".
func TestControlCharactersRefused(t *testing.T) {
	ts := newTestServer(t)
	ts.setupRunning()
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum"}, nil)
	const jsonCT, ndjsonCT = "application/json", "application/x-ndjson"
	okX := `{"experiment": "checkout", "unit": "u-1", "variant": "control"}`
	okE := `{"event_id": "e-1", "unit": "u-1", "type": "purchase", "ts": "2026-03-01T10:00:00Z", "value": 1}`
	cases := []struct {
		name, method, path, contentType, body string
		field                                 string // the field the message must name
	}{
		{"NUL in exposure experiment", "POST", "/v1/exposures", jsonCT, `{"exposures": [` + okX + `, {"experiment": "checkout\u0000x", "unit": "u-2", "variant": "control"}]}`, "exposures[1].experiment"},
		{"NUL in exposure unit", "POST", "/v1/exposures", jsonCT, `{"exposures": [` + okX + `, {"experiment": "checkout", "unit": "victim\u0000x", "variant": "control"}]}`, "exposures[1].unit"},
		{"NUL in exposure variant", "POST", "/v1/exposures", jsonCT, `{"exposures": [{"experiment": "checkout", "unit": "u-2", "variant": "control\u0000"}]}`, "exposures[0].variant"},
		{"control character in exposure unit", "POST", "/v1/exposures", jsonCT, `{"exposures": [` + okX + `, {"experiment": "checkout", "unit": "u\u0001", "variant": "control"}]}`, "exposures[1].unit"},
		{"line break in exposure unit", "POST", "/v1/exposures", jsonCT, `{"exposures": [{"experiment": "checkout", "unit": "u\n2", "variant": "control"}]}`, "exposures[0].unit"},
		{"NUL in event id", "POST", "/v1/events", jsonCT, `{"events": [` + okE + `, {"event_id": "e-1\u0000x", "unit": "u-1", "type": "purchase", "ts": "2026-03-01T10:00:00Z"}]}`, "events[1].event_id"},
		{"NUL in event unit", "POST", "/v1/events", jsonCT, `{"events": [` + okE + `, {"event_id": "e-2", "unit": "victim\u0000x", "type": "purchase", "ts": "2026-03-01T10:00:00Z"}]}`, "events[1].unit"},
		{"bell in event type", "POST", "/v1/events", jsonCT, `{"events": [{"event_id": "e-2", "unit": "u-1", "type": "purchase\u0007", "ts": "2026-03-01T10:00:00Z"}]}`, "events[0].type"},
		{"C1 control in event unit", "POST", "/v1/events", jsonCT, `{"events": [{"event_id": "e-2", "unit": "u\u0085", "type": "purchase", "ts": "2026-03-01T10:00:00Z"}]}`, "events[0].unit"},
		{"NUL in a property key", "POST", "/v1/events", jsonCT, `{"events": [{"event_id": "e-2", "unit": "u-1", "type": "purchase", "ts": "2026-03-01T10:00:00Z", "properties": {"sku\u0000": 1}}]}`, `events[0].properties."sku\x00"`},
		{"NUL in an NDJSON event", "POST", "/v1/events", ndjsonCT, okE + "\n" + `{"event_id": "e-2", "unit": "victim\u0000x", "type": "purchase", "ts": "2026-03-01T10:00:00Z"}`, "line 2.unit"},
		{"control character in an NDJSON event", "POST", "/v1/events", ndjsonCT, okE + "\n" + `{"event_id": "e-2\u001b", "unit": "u-1", "type": "purchase", "ts": "2026-03-01T10:00:00Z"}`, "line 2.event_id"},
		{"NUL in an assigned unit", "GET", "/v1/assign?experiment=checkout&unit=victim%00x", "", "", "unit"},
		{"control character in an assigned unit", "GET", "/v1/assign?experiment=checkout&unit=u%01&expose=true", "", "", "unit"},
		{"NUL in the experiment to assign", "GET", "/v1/assign?experiment=checkout%00x&unit=u-1", "", "", "experiment"},
		{"NUL in a batch-assigned unit", "POST", "/v1/assign", jsonCT, `{"experiment": "checkout", "units": ["u-1", "victim\u0000x"], "expose": true}`, "units[1]"},
		{"tab in a batch-assigned unit", "POST", "/v1/assign", jsonCT, `{"experiment": "checkout", "units": ["u-1", "u\t2"], "expose": true}`, "units[1]"},
		{"NUL in a metric's event type", "POST", "/v1/metrics", jsonCT, `{"name": "poisoned", "event_type": "purchase\u0000x", "aggregation": "sum"}`, "event_type"},
		{"control character in a metric's event type", "POST", "/v1/metrics", jsonCT, `{"name": "poisoned", "event_type": "purchase\u0002", "aggregation": "sum"}`, "event_type"},
		{"NUL in a layer name", "POST", "/v1/layers", jsonCT, `{"name": "site\u0000x"}`, "name"},
		{"NUL in an experiment key", "POST", "/v1/experiments", jsonCT, `{"key": "exp\u0000x", "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]}`, "key"},
		{"NUL in a path parameter", "GET", "/v1/experiments/checkout%00x", "", "", "key"},
		{"control character in a path parameter", "POST", "/v1/experiments/checkout%01/stop", "", "", "key"},
		{"NUL in a unit's attributes", "POST", "/v1/units", jsonCT, `{"units": [{"unit": "u-1", "attributes": {"country": "DE"}}, {"unit": "victim\u0000x", "attributes": {"country": "FR"}}]}`, "units[1].unit"},
		{"control character in a unit with attributes", "POST", "/v1/units", jsonCT, `{"units": [{"unit": "u\u0003", "attributes": {"country": "FR"}}]}`, "units[0].unit"},
		{"NUL in a query parameter of results", "GET", "/v1/experiments/checkout/results/daily?metric=revenue%00x", "", "", "metric"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, e := ts.sendRaw(c.method, c.path, ts.admin, c.contentType, c.body)
			if status != http.StatusBadRequest || e.Code != "invalid" || !strings.HasPrefix(e.Message, c.field+": ") {
				t.Errorf("%d %+v; want 400 invalid naming %s", status, e, c.field)
			}
		})
	}
	// Nothing of any refused request is stored.
	for q, want := range map[string]int{
		`SELECT count(*) FROM exposures`:                            0,
		`SELECT count(*) FROM events`:                               0,
		`SELECT count(*) FROM unit_attributes`:                      0,
		`SELECT count(*) FROM metrics`:                              1,
		`SELECT count(*) FROM layers`:                               1,
		`SELECT count(*) FROM experiments`:                          1,
		`SELECT count(*) FROM experiments WHERE status = 'running'`: 1,
		`SELECT count(*) FROM events WHERE unit LIKE 'victim%'`:     0,
		`SELECT count(*) FROM exposures WHERE unit LIKE 'victim%'`:  0,
	} {
		var n int
		if err := ts.db.SQL().QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	// An escaped backslash before "u0000" is not a NUL: the text is stored as sent.
	ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": []map[string]any{{"experiment": "checkout", "unit": `a\u0000b`, "variant": "control"}}}, nil)
	if got := storedStrings(t, ts.db, `SELECT unit FROM exposures`); len(got) != 1 || got[0] != `a\u0000b` {
		t.Errorf("stored units %q, want [`a\\u0000b`]", got)
	}
}

// Issue 15, item 1: clients posting NUL-poisoned exposure batches beside honest
// ones must not fail a single honest batch (before the fix, 147 of 200 honest
// batches answered 500 with two such clients), and the file holds exactly the
// honest exposures afterwards.
func TestPoisonedExposuresDoNotHurtOthers(t *testing.T) {
	ts := newTestServerStore(t, func(o *store.Options) {
		o.FlushEvery = 5 * time.Millisecond // a group-commit window, so that batches share commits
	})
	ts.setupRunning()
	ingest := ts.key("svc", experiment.RoleIngest)
	const honest, batches, per, poisoners = 4, 25, 20, 2
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	want := map[string]bool{}
	for w := range honest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var xs []string
				var units []string
				for j := range per {
					u := fmt.Sprintf("h%d-b%d-u%d", w, b, j)
					units = append(units, u)
					xs = append(xs, fmt.Sprintf(`{"experiment": "checkout", "unit": %q, "variant": %q}`, u, []string{"control", "treatment"}[j%2]))
				}
				status, e := ts.sendRaw("POST", "/v1/exposures", ingest, "application/json", `{"exposures": [`+strings.Join(xs, ",")+`]}`)
				mu.Lock()
				if status != http.StatusOK {
					failures = append(failures, fmt.Sprintf("%d %+v", status, e))
				} else {
					for _, u := range units {
						want[u] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	poisonAnswers := make([]int, poisoners)
	for p := range poisoners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				body := fmt.Sprintf(`{"exposures": [{"experiment": "checkout", "unit": "p%d-%d", "variant": "control"}, {"experiment": "checkout\u0000x", "unit": "p%d-%d-x", "variant": "control"}]}`, p, b, p, b)
				if status, _ := ts.sendRaw("POST", "/v1/exposures", ingest, "application/json", body); status == http.StatusBadRequest {
					poisonAnswers[p]++
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d honest batches failed, first: %s", len(failures), honest*batches, failures[0])
	}
	for p, n := range poisonAnswers {
		if n != batches {
			t.Errorf("poisoner %d: %d of %d batches answered 400", p, n, batches)
		}
	}
	got := storedStrings(t, ts.db, `SELECT unit FROM exposures`)
	if len(got) != len(want) || len(want) != honest*batches*per {
		t.Fatalf("%d exposures stored, %d honest acknowledged, want %d of each", len(got), len(want), honest*batches*per)
	}
	for _, u := range got {
		if !want[u] {
			t.Fatalf("stored %q, which no honest batch sent", u)
		}
	}
}

// Issue 15, item 1: when a group commit fails anyway (here an injected failure
// on any group holding a "poison" unit), the writer commits the group's
// requests one by one, so only the batch that cannot be stored gets the error.
// The first commit is held until four batches are queued, so that the second
// group holds them all, poisoned and honest together.
func TestFailedGroupRetriesMembersAlone(t *testing.T) {
	var ts *tserver
	var mu sync.Mutex
	calls, mixed := 0, 0
	ts = newTestServerStore(t, func(o *store.Options) {
		o.CommitFault = func(group [][]experiment.Exposure) error {
			mu.Lock()
			calls++
			first := calls == 1
			mu.Unlock()
			if first {
				for ts.db.WriterStats().Queued < 4 {
					time.Sleep(time.Millisecond)
				}
				return nil
			}
			poisoned := false
			for _, rows := range group {
				for _, x := range rows {
					poisoned = poisoned || strings.HasPrefix(x.Unit, "poison")
				}
			}
			if poisoned {
				mu.Lock()
				if len(group) > 1 {
					mixed++
				}
				mu.Unlock()
				return fmt.Errorf("injected failure")
			}
			return nil
		}
	})
	ts.setupRunning()
	post := func(units ...string) int {
		var xs []map[string]any
		for _, u := range units {
			xs = append(xs, map[string]any{"experiment": "checkout", "unit": u, "variant": "control"})
		}
		b, _ := json.Marshal(map[string]any{"exposures": xs})
		status, _ := ts.sendRaw("POST", "/v1/exposures", ts.admin, "application/json", string(b))
		return status
	}
	statuses := map[string]int{}
	var wg sync.WaitGroup
	var smu sync.Mutex
	send := func(name string, units ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := post(units...)
			smu.Lock()
			statuses[name] = s
			smu.Unlock()
		}()
	}
	send("warm", "w-1")
	for ts.db.WriterStats().Queued != 0 || func() bool { mu.Lock(); defer mu.Unlock(); return calls == 0 }() {
		time.Sleep(time.Millisecond) // until the writer holds "warm" in its commit
	}
	send("honest-1", "a-1", "a-2")
	send("poisoned", "poison-1", "b-1")
	send("honest-2", "c-1")
	send("honest-3", "d-1", "d-2", "d-3")
	wg.Wait()
	wantStatus := map[string]int{"warm": 200, "honest-1": 200, "poisoned": 500, "honest-2": 200, "honest-3": 200}
	for name, want := range wantStatus {
		if statuses[name] != want {
			t.Errorf("%s: status %d, want %d", name, statuses[name], want)
		}
	}
	if mixed == 0 {
		t.Errorf("no group held the poisoned batch beside others: the test did not exercise the retry")
	}
	got := strings.Join(storedStrings(t, ts.db, `SELECT unit FROM exposures`), " ")
	if want := "a-1 a-2 c-1 d-1 d-2 d-3 w-1"; got != want {
		t.Errorf("stored %q, want %q (the honest batches, none of the poisoned one)", got, want)
	}
}

// Issue 15, item 4: exposure and event timestamps further in the future than
// the allowed skew, or before the floor, are refused with the field named, over
// JSON and NDJSON; nothing of a refused batch is stored.
func TestTimestampBounds(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ts := newTestServerStore(t, func(o *store.Options) { o.Now = clock; o.MaxClockSkew = 5 * time.Minute },
		func(o *Options) { o.Now = clock })
	ts.setupRunning()
	// A backfill started on the floor itself, so that an exposure within a
	// minute before it passes the start check and meets the store's floor.
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "archive", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/archive/start", map[string]any{"started_at": store.DefaultMinTime}, nil)
	xe := func(key, unit string, at time.Time) string {
		return fmt.Sprintf(`{"experiment": %q, "unit": %q, "variant": "control", "ts": %q}`, key, unit, at.Format(time.RFC3339Nano))
	}
	x := func(unit string, at time.Time) string { return xe("checkout", unit, at) }
	ev := func(id string, at time.Time) string {
		return fmt.Sprintf(`{"event_id": %q, "unit": "u-1", "type": "purchase", "ts": %q}`, id, at.Format(time.RFC3339Nano))
	}
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name, path, contentType, body string
		status                        int
		field, has                    string
	}{
		{"exposure in year 9999", "/v1/exposures", "application/json", `{"exposures": [` + x("ok-1", now) + "," + x("far", far) + `]}`, 400, "exposures[1].ts", "--max-clock-skew"},
		{"exposure 6 minutes ahead", "/v1/exposures", "application/json", `{"exposures": [` + x("ahead", now.Add(6*time.Minute)) + `]}`, 400, "exposures[0].ts", "must not be after 2026-06-01T12:05:00Z"},
		{"exposure in 1899", "/v1/exposures", "application/json", `{"exposures": [` + xe("archive", "old", store.DefaultMinTime.Add(-30*time.Second)) + `]}`, 400, "exposures[0].ts", "must not be before 1900-01-01T00:00:00Z"},
		{"exposure before its experiment", "/v1/exposures", "application/json", `{"exposures": [` + x("early", time.Date(2026, 6, 1, 11, 0, 0, 0, time.UTC)) + `]}`, 400, "exposures[0].ts", "is before experiment \"checkout\" started (2026-06-01T12:00:00Z)"},
		{"event in 2099", "/v1/events", "application/json", `{"events": [` + ev("e-ok", now) + "," + ev("e-far", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) + `]}`, 400, "events[1].ts", "must not be after"},
		{"NDJSON event in 1899", "/v1/events", "application/x-ndjson", ev("e-ok", now) + "\n" + ev("e-old", time.Date(1899, 12, 31, 23, 59, 59, 0, time.UTC)), 400, "line 2.ts", "must not be before"},
		{"exposure 4 minutes ahead", "/v1/exposures", "application/json", `{"exposures": [` + x("skewed", now.Add(4*time.Minute)) + `]}`, 200, "", ""},
		{"event on the floor", "/v1/events", "application/json", `{"events": [` + ev("e-floor", store.DefaultMinTime) + `]}`, 200, "", ""},
	}
	for _, c := range cases {
		status, e := ts.sendRaw("POST", c.path, ts.admin, c.contentType, c.body)
		if status != c.status || (c.field != "" && (!strings.HasPrefix(e.Message, c.field+": ") || !strings.Contains(e.Message, c.has))) {
			t.Errorf("%s: %d %+v; want %d naming %s with %q", c.name, status, e, c.status, c.field, c.has)
		}
	}
	if got := strings.Join(storedStrings(t, ts.db, `SELECT unit FROM exposures`), " "); got != "skewed" {
		t.Errorf("stored exposures %q, want only \"skewed\"", got)
	}
	if got := strings.Join(storedStrings(t, ts.db, `SELECT event_id FROM events`), " "); got != "e-floor" {
		t.Errorf("stored events %q, want only \"e-floor\"", got)
	}
}

// Issue 15, item 4: a daily series ends at the experiment's own data. Before the
// fix one event of a unit outside the experiment, 60 days later, stretched the
// series to 60 days of copies.
func TestDailySeriesEndsAtOwnData(t *testing.T) {
	ts := newTestServerAt(t, time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC))
	ts.setupRunning()
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "converted", "event_type": "purchase", "aggregation": "binary"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "banner", "metrics": []any{"converted"},
		"variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/banner/start", nil, nil)
	start := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var xs, evs []map[string]any
	for u := range 40 {
		unit := fmt.Sprintf("u%d", u)
		xs = append(xs, map[string]any{"experiment": "banner", "unit": unit, "variant": []string{"control", "treatment"}[u%2], "ts": start})
		// Events on the first three days (day 0, 1, 2).
		evs = append(evs, map[string]any{"event_id": unit, "unit": unit, "type": "purchase", "ts": start.Add(time.Duration(u%3) * 24 * time.Hour)})
	}
	// A unit outside the experiment buys 60 days later.
	evs = append(evs, map[string]any{"event_id": "stranger", "unit": "stranger", "type": "purchase", "ts": start.Add(60 * 24 * time.Hour)})
	ts.must(http.StatusOK, "POST", "/v1/exposures", map[string]any{"exposures": xs}, nil)
	ts.must(http.StatusOK, "POST", "/v1/events", map[string]any{"events": evs}, nil)
	var d results.Daily
	ts.must(http.StatusOK, "GET", "/v1/experiments/banner/results/daily?metric=converted", nil, &d)
	var dates []string
	for _, p := range d.Days {
		dates = append(dates, p.Date)
	}
	if got, want := strings.Join(dates, " "), "2026-03-01 2026-03-02 2026-03-03"; got != want {
		t.Errorf("daily series days %q, want %q (the experiment's first exposure to its units' last event)", got, want)
	}
}
