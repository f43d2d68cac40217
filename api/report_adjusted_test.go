package api

import (
	"bytes"
	"encoding/csv"
	"html"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// holm is Holm's (1979) step-down adjustment written out from its definition,
// independently of analysis.HolmAdjust: with the m p-values sorted increasingly,
// p̃_(i) = max_{j≤i} min(1, (m − j + 1) p_(j)) (R: p.adjust(p, "holm")).
func holm(p []float64) []float64 {
	m := len(p)
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	out := make([]float64, m)
	run := 0.0
	for j, i := range idx {
		run = math.Max(run, math.Min(1, float64(m-j)*p[i]))
		out[i] = run
	}
	return out
}

// TestPrivateReportAdjustedP (issue 13, DP report): the experiment pre-registers
// Holm (the default correction), and the DP report, its CSV and its Parquet show
// the Holm-adjusted p-values of the released comparisons, named as such, equal
// to Holm's adjustment of the released p-values; the private results JSON carries
// the same numbers. The exact report's CSV names its correction the same way.
func TestPrivateReportAdjustedP(t *testing.T) {
	ts := newTestServer(t)
	setupPrivate(t, ts)
	viewer := ts.key("exec", experiment.RoleViewer)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 1, "release_epsilon": 0.5}, nil)

	var pr PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results/private", nil, &pr)
	if pr.Correction != "holm" {
		t.Errorf("private results say correction %q, want holm (pre-registered by default)", pr.Correction)
	}
	// The family: every released comparison, absolute and relative separately
	// (a comparison without a relative interval takes part with p = 1).
	var absP, relP, absAdj, relAdj []float64
	var keys []string
	for _, m := range pr.Metrics {
		for _, c := range m.Comparisons {
			keys = append(keys, m.Name+"/"+c.Variant)
			absP = append(absP, c.Absolute.PValue)
			rp := 1.0
			if c.Relative != nil {
				rp = c.Relative.PValue
			}
			relP = append(relP, rp)
			if c.Adjusted == nil {
				t.Fatalf("%s/%s: no adjusted p-value in the private results JSON", m.Name, c.Variant)
			}
			if c.Adjusted.Method != "holm" {
				t.Errorf("%s/%s: adjusted by %q, want holm", m.Name, c.Variant, c.Adjusted.Method)
			}
			absAdj = append(absAdj, c.Adjusted.Absolute)
			relAdj = append(relAdj, c.Adjusted.Relative)
		}
	}
	if len(keys) != 2 {
		t.Fatalf("released comparisons %v, want revenue and converted (visits has no bounds)", keys)
	}
	wantAbs, wantRel := holm(absP), holm(relP)
	for i := range keys {
		if math.Abs(absAdj[i]-wantAbs[i]) > 1e-12 || math.Abs(relAdj[i]-wantRel[i]) > 1e-12 {
			t.Errorf("%s: adjusted (abs %g, rel %g), Holm of the released p-values gives (%g, %g)", keys[i], absAdj[i], relAdj[i], wantAbs[i], wantRel[i])
		}
	}

	// report.html: a Holm-adjusted column with those numbers (4 decimals) and the
	// methods sentence.
	status, b := ts.do("GET", "/v1/experiments/checkout/report.html", viewer, nil)
	h := html.UnescapeString(string(b))
	if status != 200 {
		t.Fatalf("DP report: %d", status)
	}
	for _, want := range []string{"<th>Holm-adjusted p</th>", "Holm's step-down method", "as pre-registered"} {
		if !bytes.Contains([]byte(h), []byte(want)) {
			t.Errorf("the DP report lacks %q", want)
		}
	}
	cell := regexp.MustCompile(`data-metric="([^"]+)" data-variant="([^"]+)">.*?<td class="padj">([^<]+)</td>`)
	shown := map[string]string{}
	for _, m := range cell.FindAllStringSubmatch(h, -1) {
		shown[m[1]+"/"+m[2]] = m[3]
	}
	for i, k := range keys {
		if want := pFour(wantAbs[i]); shown[k] != want {
			t.Errorf("DP report %s: Holm-adjusted p %q, want %q", k, shown[k], want)
		}
	}

	// CSV and Parquet: the columns abs_p_value_holm and rel_p_value_holm.
	status, b = ts.do("GET", "/v1/experiments/checkout/results.csv", viewer, nil)
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if status != 200 || err != nil || len(rows) != 3 {
		t.Fatalf("DP CSV: %d %v %q", status, err, rows)
	}
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c] = i
	}
	ai, ok1 := col["abs_p_value_holm"]
	ri, ok2 := col["rel_p_value_holm"]
	if !ok1 || !ok2 {
		t.Fatalf("DP CSV header %q lacks abs_p_value_holm and rel_p_value_holm", rows[0])
	}
	for _, row := range rows[1:] {
		k := row[col["metric"]] + "/" + row[col["variant"]]
		i := indexOf(keys, k)
		if i < 0 {
			t.Fatalf("CSV row %s is not a released comparison", k)
		}
		a, _ := strconv.ParseFloat(row[ai], 64)
		r, _ := strconv.ParseFloat(row[ri], 64)
		if a != wantAbs[i] || r != wantRel[i] {
			t.Errorf("CSV %s: adjusted (%s, %s), want (%g, %g)", k, row[ai], row[ri], wantAbs[i], wantRel[i])
		}
	}
	status, pq := ts.do("GET", "/v1/experiments/checkout/results.parquet", viewer, nil)
	if status != 200 {
		t.Fatalf("DP Parquet: %d", status)
	}
	path := filepath.Join(t.TempDir(), "r.parquet")
	if err := os.WriteFile(path, pq, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		var a, r float64
		m, v, _ := strings.Cut(k, "/")
		if err := ts.db.SQL().QueryRow(`SELECT abs_p_value_holm, rel_p_value_holm FROM read_parquet(?) WHERE metric = ? AND variant = ?`, path, m, v).Scan(&a, &r); err != nil {
			t.Fatalf("Parquet %s: %v", k, err)
		}
		if a != wantAbs[i] || r != wantRel[i] {
			t.Errorf("Parquet %s: adjusted (%g, %g), want (%g, %g)", k, a, r, wantAbs[i], wantRel[i])
		}
	}

	// The exact CSV names the correction the same way.
	status, b = ts.do("GET", "/v1/experiments/checkout/results.csv", analyst, nil)
	rows, err = csv.NewReader(bytes.NewReader(b)).ReadAll()
	if status != 200 || err != nil || indexOf(rows[0], "abs_p_value_holm") < 0 || indexOf(rows[0], "rel_p_value_holm") < 0 {
		t.Errorf("exact CSV: %d %v header %q", status, err, rows[0])
	}
}

func indexOf(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return -1
}

// pFour is a p-value as the report prints it: 4 decimals, "< 0.0001" below.
func pFour(p float64) string {
	if p < 1e-4 {
		return "< 0.0001"
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}
