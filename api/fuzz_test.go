package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// Fuzz targets of the parsers that read request bodies and query strings. "make
// fuzz" runs each for FUZZTIME; .ci/run runs a short pass. Without -fuzz, each
// runs over its seeds as a plain test.

// FuzzExposuresJSON checks the fast exposure parser against encoding/json: when
// it accepts a body, the strict decoder accepts it too with the same values.
func FuzzExposuresJSON(f *testing.F) {
	for _, s := range []string{
		`{"exposures": [{"experiment": "checkout", "unit": "u-1", "variant": "control", "ts": "2026-03-01T10:00:00.123Z"}]}`,
		`{"exposures": [{"experiment": "c", "unit": "u", "in_holdout": true, "holdout_version": 2}, {"unit": "v", "experiment": "c", "variant": "t"}]}`,
		`{"exposures": []}`,
		`{"exposures": [{"experiment": "c", "unit": "u\u0000", "variant": "t"}]}`,
		`{"exposures": [{"experiment": "c", "unit": "u", "ts": "2026-03-01T10:00:00+02:00"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast []exposureIn
		if !decodeExposuresFast(b, &fast) {
			return
		}
		var slow exposureBatch
		if err := decodeJSON(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused it: %v", b, err)
		}
		if len(fast) == 0 && len(slow.Exposures) == 0 {
			return
		}
		if len(fast) != len(slow.Exposures) {
			t.Fatalf("%q: fast %d exposures, encoding/json %d", b, len(fast), len(slow.Exposures))
		}
		for i := range fast {
			a, s := fast[i], slow.Exposures[i]
			if !a.TS.Equal(s.TS) {
				t.Fatalf("%q: exposure %d ts %v, encoding/json %v", b, i, a.TS, s.TS)
			}
			a.TS, s.TS = time.Time{}, time.Time{}
			if a != s {
				t.Fatalf("%q: exposure %d %+v, encoding/json %+v", b, i, a, s)
			}
		}
	})
}

// FuzzAssignJSON checks the fast batch-assignment parser against encoding/json.
func FuzzAssignJSON(f *testing.F) {
	for _, s := range []string{
		`{"experiment": "checkout", "units": ["u-1", "u-2"], "expose": true}`,
		`{"units": [], "experiment": "x"}`,
		`{"experiment": "x", "units": ["a\"b"], "expose": null}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast assignBatchRequest
		if !decodeAssignFast(b, &fast) {
			return
		}
		var slow assignBatchRequest
		if err := decodeJSON(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused it: %v", b, err)
		}
		if len(fast.Units) == 0 && len(slow.Units) == 0 {
			fast.Units, slow.Units = nil, nil
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", b, fast, slow)
		}
	})
}

// FuzzNDJSONEvents decodes NDJSON event bodies: no panic, one line number per
// event, increasing, and every decoded event has a timestamp.
func FuzzNDJSONEvents(f *testing.F) {
	f.Add([]byte(`{"event_id":"e1","unit":"u1","type":"visit","ts":"2026-03-01T10:00:00Z","value":1}` + "\n\n" +
		`{"event_id":"e2","unit":"u2","type":"purchase","ts":"2026-03-01T10:00:00Z","properties":{"a":1}}`))
	f.Add([]byte(`{"event_id":"e1","ts":null}`))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, lines, err := decodeNDJSONEvents(b)
		if err != nil {
			if experiment.KindOf(err) != experiment.Invalid {
				t.Fatalf("%q: error of kind %v: %v", b, experiment.KindOf(err), err)
			}
			return
		}
		if len(evs) > MaxEventBatch {
			return // the caller answers 413
		}
		if len(lines) != len(evs) {
			t.Fatalf("%q: %d events, %d line numbers", b, len(evs), len(lines))
		}
		for i := range evs {
			if evs[i].TS.IsZero() {
				t.Fatalf("%q: event %d decoded without a timestamp", b, i)
			}
			if i > 0 && lines[i] <= lines[i-1] {
				t.Fatalf("%q: line numbers %v not increasing", b, lines)
			}
		}
	})
}

// hasNUL reports whether a decoded JSON value holds a NUL in a key or string.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case []any:
		for _, x := range v {
			if hasNUL(x) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(x) {
				return true
			}
		}
	}
	return false
}

// FuzzRefuseNUL checks refuseNUL against a decode: a JSON document is refused
// exactly when a key or string of it holds a NUL.
func FuzzRefuseNUL(f *testing.F) {
	for _, s := range []string{
		`{"a": "b\u0000"}`, `{"a\u0000": 1}`, `["\\u0000"]`, `{"a": ["x", {"b": "\\\u0000"}]}`, `"\u0000"`, `{"a": "\u00001"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := refuseNUL(b, false)
		if err != nil && experiment.KindOf(err) != experiment.Invalid {
			t.Fatalf("%q: error of kind %v", b, experiment.KindOf(err))
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if want := hasNUL(v); want != (err != nil) {
			t.Fatalf("%q: refuseNUL = %v, the document holds a NUL: %v", b, err, want)
		}
	})
}

// fuzzServer is a server over an in-memory database with a running experiment
// "checkout" and a metric "revenue", for the request-level fuzz targets.
func fuzzServer(f *testing.F) *Server {
	ctx := context.Background()
	// A fixed clock on the day of the seeded data: exposures logged by
	// assignment land on that day, so that a daily series stays one day long
	// (it costs one metric query per day).
	clock := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	sopt.Now = clock
	db, err := store.Open(ctx, "", sopt)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if _, err := db.EnsureAdminKey(ctx, testAdminKey); err != nil {
		f.Fatal(err)
	}
	opt := DefaultOptions()
	opt.Store = db
	opt.Logger = slog.New(slog.DiscardHandler)
	opt.Now = clock
	srv, err := New(opt)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []struct{ path, body string }{
		{"/v1/metrics", `{"name": "revenue", "event_type": "purchase", "aggregation": "sum"}`},
		{"/v1/experiments", `{"key": "checkout", "metrics": ["revenue"], "variants": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}]}`},
		{"/v1/experiments/checkout/start", ``},
		{"/v1/exposures", `{"exposures": [{"experiment": "checkout", "unit": "u-1", "variant": "control", "ts": "2026-03-01T12:03:00Z"}]}`},
	} {
		if status, b := serveFuzz(srv, http.MethodPost, r.path, "application/json", []byte(r.body)); status >= 300 {
			f.Fatalf("setup %s: %d %s", r.path, status, b)
		}
	}
	return srv
}

func serveFuzz(srv *Server, method, target, contentType string, body []byte) (int, []byte) {
	req := httptest.NewRequest(method, "http://lift"+target, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// fuzzRoutes are the body routes FuzzBodies posts to, by the fuzzer's choice.
var fuzzRoutes = []struct{ path, contentType string }{
	{"/v1/exposures", "application/json"},
	{"/v1/events", "application/json"},
	{"/v1/events", "application/x-ndjson"},
	{"/v1/assign", "application/json"},
	{"/v1/metrics", "application/json"},
	{"/v1/experiments", "application/json"},
	{"/v1/layers", "application/json"},
	{"/v1/units", "application/json"},
}

// FuzzBodies posts arbitrary bodies to the ingest and registry routes: no
// answer is a 500 (bad input is a 4xx naming what is wrong).
func FuzzBodies(f *testing.F) {
	srv := fuzzServer(f)
	for i, s := range []string{
		`{"exposures": [{"experiment": "checkout", "unit": "u-2", "variant": "treatment"}]}`,
		`{"events": [{"event_id": "e1", "unit": "u-1", "type": "purchase", "ts": "2026-03-01T11:00:00Z", "value": 3}]}`,
		`{"event_id": "e2", "unit": "u-1", "type": "purchase", "ts": "2026-03-01T11:00:00Z"}`,
		`{"experiment": "checkout", "units": ["a", "b"], "expose": true}`,
		`{"name": "m2", "event_type": "visit", "aggregation": "mean", "cap": {"percentile": 0.99}}`,
		`{"key": "e2", "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]}`,
		`{"name": "site"}`,
		`{"units": [{"unit": "u-1", "attributes": {"country": "DE", "age": 31}}]}`,
	} {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		status, b := serveFuzz(srv, http.MethodPost, r.path, r.contentType, body)
		if status >= 500 {
			t.Fatalf("POST %s (%s) %q: %d %s", r.path, r.contentType, body, status, b)
		}
	})
}

// fuzzGets are the routes FuzzQueryParams reads, each with its query string
// appended.
var fuzzGets = []string{
	"/v1/assign",
	"/v1/audit",
	"/v1/experiments/checkout/results",
	"/v1/experiments/checkout/results/daily",
	"/v1/experiments/checkout/results/snapshots",
	"/v1/experiments",
	"/v1/metrics",
	"/v1/alerts",
}

// FuzzQueryParams sends arbitrary query strings to the read routes: no answer
// is a 500.
func FuzzQueryParams(f *testing.F) {
	srv := fuzzServer(f)
	for i, q := range []string{
		"experiment=checkout&unit=u-1&expose=true",
		"entity=experiment&key=checkout&limit=10",
		"metrics=revenue&snapshot=1",
		"metric=revenue",
		"limit=abc",
		"",
		"status=running",
		"since=2026-03-01T00:00:00Z",
	} {
		f.Add(uint8(i), q)
	}
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		path := fuzzGets[int(route)%len(fuzzGets)]
		if strings.ContainsAny(query, "# \t\r\n") {
			return // not one request line
		}
		req, err := http.NewRequest(http.MethodGet, "http://lift"+path+"?"+query, nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %s?%s: %d %s", path, query, rec.Code, rec.Body.Bytes())
		}
	})
}
