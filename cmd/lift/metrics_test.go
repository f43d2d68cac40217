package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestMetricsCommand defines metrics from a file against a real server, then
// changes one (a new version), deprecates it and deletes an unused one.
func TestMetricsCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, filepath.Join(dir, "server.duckdb"), sopt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const key = "lift_METRICSTESTKEYMETRICSTESTKE0"
	if _, err := db.EnsureAdminKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	opt := api.DefaultOptions()
	opt.Store, opt.Logger = db, sopt.Logger
	srv, err := api.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lift := func(args ...string) (int, string, string) {
		return runLift(t, append(args, "--server", hs.URL, "--key", key)...)
	}
	both := write("both.json", `{"metrics": [
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "window": {"start_days": 0, "end_days": 7}},
		{"name": "spare", "event_type": "click", "aggregation": "count"}]}`)
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"metrics", "define", "--file", both}, 0, "revenue: created (version 1)\nspare: created (version 1)\n"},
		{[]string{"metrics", "define", "--file", both}, 0, "revenue: unchanged (version 1)\nspare: unchanged (version 1)\n"},
		{[]string{"metrics", "define", "--file", write("one.json", `{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "window": {"start_days": 0, "end_days": 14}}`)}, 0, "revenue: version 2\n"},
		{[]string{"metrics", "deprecate", "--name", "revenue"}, 0, "revenue: deprecated (version 2)\n"},
		{[]string{"metrics", "delete", "--name", "spare"}, 0, "spare: deleted\n"},
	}
	for _, s := range steps {
		code, out, errs := lift(s.args...)
		if code != s.code || out != s.out {
			t.Errorf("lift %s: %d %q %q; want %d %q", strings.Join(s.args, " "), code, out, errs, s.code, s.out)
		}
	}
	vs, err := db.MetricVersions(ctx, "revenue")
	if err != nil || len(vs) != 2 || vs[0].Definition.Window.EndDays != 7 || vs[1].Definition.Window.EndDays != 14 {
		t.Errorf("revenue's versions: %+v, %v", vs, err)
	}
	if m, err := db.GetMetric(ctx, "revenue"); err != nil || !m.Deprecated {
		t.Errorf("revenue: %+v, %v; want deprecated", m, err)
	}
	if _, err := db.GetMetric(ctx, "spare"); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("spare after delete: %v", err)
	}
	code, out, _ := lift("metrics", "show", "--name", "revenue", "--version", "1")
	if code != 0 || !strings.Contains(out, `"end_days": 7`) {
		t.Errorf("show --version 1: %d %s", code, out)
	}
	bad := []struct {
		args []string
		code int
		has  string
	}{
		{[]string{"metrics", "show"}, 1, "--name"},
		{[]string{"metrics", "define"}, 1, "--file"},
		{[]string{"metrics", "rename", "--name", "x"}, 2, `unknown action "rename"`},
		{[]string{"metrics", "define", "--file", write("bad.json", `{"name": "x", "event_type": "v", "aggregation": "median"}`)}, 1, "aggregation"},
		{[]string{"metrics", "delete", "--name", "nope"}, 1, "404"},
	}
	for _, b := range bad {
		code, _, errs := lift(b.args...)
		if code != b.code || !strings.Contains(errs, b.has) {
			t.Errorf("lift %s: %d %q; want %d mentioning %q", strings.Join(b.args, " "), code, errs, b.code, b.has)
		}
	}
}
