package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/store"
)

func TestReportCommand(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lift.duckdb")
	opt := store.DefaultOptions()
	opt.Logger = slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	so := store.DefaultSynthOptions()
	so.Units, so.Events = 2000, 8000
	if _, err := db.GenerateSynthetic(ctx, "test", so); err != nil {
		t.Fatal(err)
	}
	if err := privacy.NewLedger(db.Ledger()).SetBudget(ctx, privacy.ExperimentScope("synthetic"), privacy.Budget{Epsilon: 1, ReleaseEpsilon: 0.6}, "test"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out := filepath.Join(t.TempDir(), "exact")
	code, stdout, stderr := runLift(t, "report", "--db", path, "--experiment", "synthetic", "--out", out)
	if code != 0 || !strings.Contains(stdout, "(exact)") {
		t.Fatalf("exact report: %d %s %s", code, stdout, stderr)
	}
	for _, f := range []string{"report.html", "report.md", "report.json", "results.csv", "plots/forest.png", "plots/exposures.pdf", "plots/cumulative.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	dp := filepath.Join(t.TempDir(), "dp")
	code, stdout, stderr = runLift(t, "report", "--db", path, "--experiment", "synthetic", "--out", dp, "--private")
	if code != 0 || !strings.Contains(stdout, "DP-noised (ε = 0.6)") {
		t.Fatalf("private report: %d %s %s", code, stdout, stderr)
	}
	if html, _ := os.ReadFile(filepath.Join(dp, "report.html")); !bytes.Contains(html, []byte("revenue is not in this private report")) {
		t.Error("private report does not explain the metrics without bounds")
	}
	// A second private report the same day gets that day's release: a second spend
	// of 0.6 would exceed the budget of 1, so success shows that nothing was spent.
	if code, _, stderr = runLift(t, "report", "--db", path, "--experiment", "synthetic", "--out", dp, "--private"); code != 0 {
		t.Fatalf("reused private report: %s", stderr)
	}
	code, _, stderr = runLift(t, "report", "--db", path, "--out", dp)
	if code != 1 || !strings.Contains(stderr, "--experiment: is required") {
		t.Errorf("missing flag: %d %q", code, stderr)
	}
	code, _, stderr = runLift(t, "report", "--db", path, "--experiment", "nope", "--out", dp)
	if code != 1 || !strings.Contains(stderr, "nope") {
		t.Errorf("unknown experiment: %d %q", code, stderr)
	}
}
