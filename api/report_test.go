package api

import (
	"os"
	"path/filepath"

	"bytes"
	"encoding/csv"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func TestReportRoutes(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)

	status, b := ts.do("GET", "/v1/experiments/checkout/report.html", analyst, nil)
	h := string(b)
	// setupPrivate's values are constant within each arm: no exact comparison can
	// be estimated, so the report has the exposures chart and says why it has no
	// forest chart (a forest of uninformative 0 [0, 0] defaults would mislead).
	if status != 200 || !strings.Contains(h, "Exact numbers (not DP-noised)") || strings.Count(h, "<svg ") != 1 || !strings.Contains(h, "revenue") ||
		!strings.Contains(h, "There is no forest chart") {
		t.Fatalf("analyst report: %d, %d charts\n%.400s", status, strings.Count(h, "<svg "), h)
	}
	if status, b := ts.do("GET", "/v1/experiments/checkout/plots/forest.svg", analyst, nil); status != 404 || !strings.Contains(errorOf(t, b).Message, "There is no forest chart") {
		t.Errorf("analyst forest.svg without an estimable comparison: %d %s, want 404 saying why", status, b)
	}
	// Viewers see DP numbers only; without a budget there are none to see.
	status, b = ts.do("GET", "/v1/experiments/checkout/report.html", viewer, nil)
	if e := errorOf(t, b); status != 404 || !strings.Contains(e.Message, "no privacy budget") {
		t.Fatalf("viewer without budget: %d %+v", status, e)
	}
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.5}, nil)
	status, b = ts.do("GET", "/v1/experiments/checkout/report.html", viewer, nil)
	h = string(b)
	if status != 200 || !strings.Contains(h, "DP-noised (ε = 0.5)") || strings.Contains(h, "Exact numbers") || !strings.Contains(h, "visits is not in this private report") {
		t.Fatalf("viewer report: %d\n%.600s", status, h)
	}
	// Charts and CSV of the same data reuse the release: still one spend.
	resp := ts.request("GET", "/v1/experiments/checkout/plots/forest.png", viewer, nil, nil)
	img, err := png.Decode(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Header.Get("Content-Type") != "image/png" || img.Bounds().Dx() != 840 {
		t.Fatalf("forest.png: %v %s", err, resp.Header.Get("Content-Type"))
	}
	status, b = ts.do("GET", "/v1/experiments/checkout/results.csv", viewer, nil)
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if status != 200 || err != nil || len(rows) != 3 || rows[0][0] != "metric" || rows[1][17] != "true" || rows[1][18] != "0.5" {
		t.Fatalf("viewer CSV: %d %v %v", status, err, rows)
	}
	// The same table as Parquet: DuckDB reads back the viewer's DP rows.
	status, pq := ts.do("GET", "/v1/experiments/checkout/results.parquet", viewer, nil)
	if status != 200 || !bytes.HasPrefix(pq, []byte("PAR1")) {
		t.Fatalf("viewer Parquet: %d, %d bytes", status, len(pq))
	}
	pqPath := filepath.Join(t.TempDir(), "r.parquet")
	if err := os.WriteFile(pqPath, pq, 0o600); err != nil {
		t.Fatal(err)
	}
	var nrows int
	var private bool
	if err := ts.db.SQL().QueryRow(`SELECT count(*), bool_and(private) FROM read_parquet(?)`, pqPath).Scan(&nrows, &private); err != nil || nrows != len(rows)-1 || !private {
		t.Errorf("Parquet read back: %d rows, private %v, %v; want %d private rows", nrows, private, err, len(rows)-1)
	}
	var acct experiment.PrivacyAccount
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/privacy", nil, &acct)
	if len(acct.Entries) != 1 {
		t.Errorf("%d ledger entries after a report, a chart, a CSV and a Parquet of the same data, want 1", len(acct.Entries))
	}
	// Analysts get exact CSV, or DP with ?private=true.
	status, b = ts.do("GET", "/v1/experiments/checkout/results.csv", analyst, nil)
	if rows, _ := csv.NewReader(bytes.NewReader(b)).ReadAll(); status != 200 || len(rows) != 4 || rows[1][17] != "false" {
		t.Errorf("analyst CSV: %d %v", status, rows)
	}
	status, b = ts.do("GET", "/v1/experiments/checkout/plots/forest.svg?private=true", analyst, nil)
	if status != 200 || !bytes.Contains(b, []byte("DP-noised")) {
		t.Errorf("analyst ?private=true plot: %d", status)
	}
	for _, c := range []struct {
		path   string
		status int
	}{{"/v1/experiments/checkout/plots/nope.svg", 404}, {"/v1/experiments/checkout/plots/forest.gif", 400}, {"/v1/experiments/nope/report.html", 404}} {
		if status, b := ts.do("GET", c.path, analyst, nil); status != c.status {
			t.Errorf("%s: %d %s, want %d", c.path, status, b, c.status)
		}
	}
}
