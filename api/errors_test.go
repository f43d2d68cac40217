package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestOutOfMemory: an error of a query that ran past DuckDB's memory limit
// answers 503 unavailable naming --duckdb-memory-limit, however the store
// wrapped it. The status comes from DuckDB's error type (store.IsOutOfMemory),
// not from the message: an internal error that merely quotes DuckDB's words,
// or another DuckDB error, stays a 500. The error is DuckDB's own, from a list
// aggregate (which cannot spill) under the server's 32 MiB limit.
func TestOutOfMemory(t *testing.T) {
	ts := newTestServerStore(t, func(o *store.Options) { o.MemoryLimit = 32 << 20; o.TempDir = t.TempDir() })
	var n int
	oom := ts.db.SQL().QueryRow(`SELECT len(list(i)) FROM range(10000000) t(i)`).Scan(&n)
	if oom == nil {
		t.Fatal("a list of 10^7 integers fit in 32 MiB")
	}
	_, binder := ts.db.SQL().Exec(`SELECT no_such_column FROM range(1)`)
	if binder == nil {
		t.Fatal("no binder error")
	}
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"DuckDB's out-of-memory error", experiment.E("store.Results", experiment.Internal, oom), http.StatusServiceUnavailable, "unavailable"},
		{"wrapped twice", experiment.E("store.Results", fmt.Errorf("metric revenue: %w", oom)), http.StatusServiceUnavailable, "unavailable"},
		{"another DuckDB error", experiment.E("store.Results", experiment.Internal, binder), http.StatusInternalServerError, "internal"},
		{"the words only", errors.New("Out of Memory Error: failed to allocate data of size 1.0 MiB (32.0 MiB/32.0 MiB used)"), http.StatusInternalServerError, "internal"},
		{"the words in an internal error", experiment.E("store.Results", experiment.Internal, fmt.Errorf("metric %q: Out of Memory Error", "x")), http.StatusInternalServerError, "internal"},
	} {
		status, code, msg := describe(c.err)
		if status != c.status || code != c.code {
			t.Errorf("%s: describe = %d %s %q; want %d %s", c.name, status, code, msg, c.status, c.code)
		}
		if status == http.StatusServiceUnavailable && !strings.Contains(msg, "--duckdb-memory-limit") {
			t.Errorf("%s: %q does not name --duckdb-memory-limit", c.name, msg)
		}
	}
	// The server goes on serving after DuckDB refused the query.
	ts.must(http.StatusOK, "GET", "/v1/experiments", nil, nil)
}
