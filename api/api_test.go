package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

const testAdminKey = "lift_TESTADMINKEYTESTADMINKEY0000"

// tserver is a Server over a real DuckDB file in a temporary folder, behind httptest.
type tserver struct {
	t     testing.TB
	db    *store.DB
	srv   *Server
	http  *httptest.Server
	admin string
}

func newTestServer(t testing.TB, opts ...func(*Options)) *tserver {
	t.Helper()
	return newTestServerWithStore(t, store.DefaultOptions(), opts...)
}

// newTestServerStore is newTestServer with store options set by storeOpt.
func newTestServerStore(t testing.TB, storeOpt func(*store.Options), opts ...func(*Options)) *tserver {
	t.Helper()
	sopt := store.DefaultOptions()
	if storeOpt != nil {
		storeOpt(&sopt)
	}
	return newTestServerWithStore(t, sopt, opts...)
}

// newTestServerAt is newTestServer whose store's clock reads now (the time
// experiments start at), for tests that send exposures of a past date.
func newTestServerAt(t testing.TB, now time.Time, opts ...func(*Options)) *tserver {
	t.Helper()
	sopt := store.DefaultOptions()
	sopt.Now = func() time.Time { return now }
	// Fixtures are stamped ahead of the fixed clock; the bound on future
	// timestamps has its own test (TestTimestampBounds).
	sopt.MaxClockSkew = -1
	return newTestServerWithStore(t, sopt, opts...)
}

func newTestServerWithStore(t testing.TB, sopt store.Options, opts ...func(*Options)) *tserver {
	t.Helper()
	ctx := context.Background()
	sopt.Logger = slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "lift.duckdb"), sopt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnsureAdminKey(ctx, testAdminKey); err != nil {
		t.Fatal(err)
	}
	opt := DefaultOptions()
	opt.Store = db
	opt.Logger = slog.New(slog.DiscardHandler)
	// The tests' console pages wait for their numbers, which they read;
	// TestConsoleComputing sends them before they are computed, as lift
	// serve's default does after 120 ms.
	opt.ConsoleWait = -1
	for _, f := range opts {
		f(&opt)
	}
	srv, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		if err := db.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	return &tserver{t: t, db: db, srv: srv, http: hs, admin: testAdminKey}
}

// do sends a request with the key (none when "") and a body (a string is sent
// as is, anything else as JSON) and returns the status and body.
func (ts *tserver) do(method, path, key string, body any) (int, []byte) {
	ts.t.Helper()
	resp := ts.request(method, path, key, body, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (ts *tserver) request(method, path, key string, body any, header http.Header) *http.Response {
	ts.t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(v)
	case []byte:
		r = bytes.NewReader(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			ts.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, ts.http.URL+path, r)
	if err != nil {
		ts.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ts.http.Client().Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp
}

// must sends the request as admin and fails unless the status is want; it
// decodes the answer into out when out is not nil.
func (ts *tserver) must(want int, method, path string, body, out any) {
	ts.t.Helper()
	ts.mustAs(ts.admin, want, method, path, body, out)
}

func (ts *tserver) mustAs(key string, want int, method, path string, body, out any) {
	ts.t.Helper()
	status, b := ts.do(method, path, key, body)
	if status != want {
		ts.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			ts.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// key creates an API key with the role and returns its secret.
func (ts *tserver) key(name string, role experiment.Role) string {
	ts.t.Helper()
	var k createdKey
	ts.must(http.StatusCreated, "POST", "/v1/keys", map[string]any{"name": name, "role": role}, &k)
	return k.Secret
}

type apiError struct {
	Error errorDetail `json:"error"`
}

func errorOf(t testing.TB, b []byte) errorDetail {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error body: %s (%v)", b, err)
	}
	return e.Error
}

// setupRunning registers layer "site", holdout "global" (5%) and a running
// 50/50 experiment "checkout" in the whole layer with the holdout.
func (ts *tserver) setupRunning() {
	ts.t.Helper()
	ts.must(http.StatusCreated, "POST", "/v1/layers", map[string]any{"name": "site"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.05}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "checkout", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"layer": "site", "layer_range": map[string]float64{"start": 0, "end": 1}, "holdout": "global",
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
}
