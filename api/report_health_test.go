package api

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// cellOf is the text of the first cell with class class in the row of the
// table id whose opening tag matches rowAttr.
func cellOf(t *testing.T, page, table, rowAttr, class string) string {
	t.Helper()
	tab := regexp.MustCompile(`(?s)<table id="` + table + `">.*?</table>`).FindString(page)
	row := regexp.MustCompile(`(?s)<tr[^>]*` + regexp.QuoteMeta(rowAttr) + `[^>]*>.*?</tr>`).FindString(tab)
	m := regexp.MustCompile(`<td class="` + class + `">([^<]*)</td>`).FindStringSubmatch(row)
	if m == nil {
		t.Errorf("table %s, row %s: no cell %s in\n%s", table, rowAttr, class, tab)
		return ""
	}
	return htmlText(m[1])
}

// TestReportHealth: the exact report's health section shows the numbers of
// GET /v1/experiments/KEY/health and …/overlaps (the same pipelines); a
// viewer's report, and a share link's, have no health section, say why, and
// show none of the exact counts the section would.
func TestReportHealth(t *testing.T) {
	ts := healthFixture(t)
	var h results.Health
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/health", nil, &h)
	var o results.Overlaps
	ts.must(http.StatusOK, "GET", "/v1/experiments/checkout/overlaps", nil, &o)
	status, body := ts.do("GET", "/v1/experiments/checkout/report.html", ts.admin, nil)
	if status != http.StatusOK {
		t.Fatalf("report: %d %s", status, body)
	}
	page := string(body)
	if !strings.Contains(page, `<h2 id="health">Health</h2>`) {
		t.Fatalf("the exact report has no health section:\n%s", page)
	}
	s := h.SequentialSRM
	for _, c := range []struct {
		class string
		want  float64
	}{
		{"looks", float64(s.Looks)},
		{"p", s.PValue},
		{"bf", math.Exp(s.LogBayesFactor)},
		{"posterior", 100 / (1 + math.Exp(-s.LogBayesFactor))}, // percent
		{"threshold", s.Threshold},
		{"concentration", s.Concentration},
	} {
		if got := cellOf(t, page, "health-srm", `data-check="sequential-srm"`, c.class); !shows(got, c.want) {
			t.Errorf("sequential SRM %s: the report shows %q, the API %v", c.class, got, c.want)
		}
	}
	if got := cellOf(t, page, "health-srm", `data-check="sequential-srm"`, "verdict"); got != "no mismatch" || s.Mismatch {
		t.Errorf("sequential SRM verdict %q, the API's mismatch %v", got, s.Mismatch)
	}
	im := h.Imbalance[0]
	if got := cellOf(t, page, "health-imbalance", `data-imbalance="revenue"`, "p"); !shows(got, im.PValue) {
		t.Errorf("imbalance p: the report shows %q, the API %v", got, im.PValue)
	}
	means := cellOf(t, page, "health-imbalance", `data-imbalance="revenue"`, "means")
	var want []float64
	for _, m := range im.Means {
		want = append(want, m.Mean, m.SE)
	}
	if !shows(means, want...) || !strings.Contains(means, im.Means[0].Arm+" ") {
		t.Errorf("imbalance means %q, the API's %+v", means, im.Means)
	}
	ov, in := o.Overlaps[0], o.Overlaps[0].Interactions[0]
	row := `data-overlap="` + ov.Experiment + `"`
	if got := cellOf(t, page, "health-overlaps", row, "units"); got != fmt.Sprint(ov.Units) {
		t.Errorf("overlap units: the report shows %q, the API %d", got, ov.Units)
	}
	if got := cellOf(t, page, "health-overlaps", row, "p"); !shows(got, in.PValue) {
		t.Errorf("interaction p: the report shows %q, the API %v", got, in.PValue)
	}
	if got := cellOf(t, page, "health-overlaps", row, "estimate"); !shows(got, in.Estimate, in.CILow, in.CIHigh) {
		t.Errorf("interaction: the report shows %q, the API %v [%v, %v]", got, in.Estimate, in.CILow, in.CIHigh)
	}
	// The verdict reads the p-value adjusted across all the overlap tests.
	if in.AdjustedPValue == nil || o.Correction != "holm" || *in.AdjustedPValue < in.PValue {
		t.Errorf("the API's interaction has adjusted p %v (%q) for p %v, want Holm's, at least p", in.AdjustedPValue, o.Correction, in.PValue)
	} else if got := cellOf(t, page, "health-overlaps", row, "adjusted"); !shows(got, *in.AdjustedPValue) {
		t.Errorf("adjusted interaction p: the report shows %q, the API %v", got, *in.AdjustedPValue)
	}
	if v := cellOf(t, page, "health-overlaps", row, "verdict"); (v == "INTERACTS") != in.Flagged {
		t.Errorf("verdict %q, the API flags %v", v, in.Flagged)
	}

	// report.md (lift report's folder) has the same health section.
	rep, err := BuildReport(context.Background(), ts.db, ts.srv.results, "checkout", ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := rep.Markdown(&md, "plots"); err != nil {
		t.Fatal(err)
	}
	mdLine := func(prefix string) string {
		for _, l := range strings.Split(md.String(), "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Errorf("report.md has no line starting %q:\n%s", prefix, md.String())
		return ""
	}
	if !strings.Contains(md.String(), "\n## Health\n") {
		t.Errorf("report.md has no health section:\n%s", md.String())
	}
	if l := mdLine("| Sequential sample-ratio check |"); !shows(l, float64(s.Looks), s.PValue, math.Exp(s.LogBayesFactor)) || !strings.Contains(l, "no mismatch") {
		t.Errorf("report.md's sequential SRM %q, the API's looks %d p %v BF %v", l, s.Looks, s.PValue, math.Exp(s.LogBayesFactor))
	}
	if l := mdLine("| Imbalance of revenue |"); !shows(l, im.PValue) {
		t.Errorf("report.md's imbalance %q, the API's p %v", l, im.PValue)
	}
	if l := mdLine("| Overlap with " + ov.Experiment + " |"); !shows(l, float64(ov.Units), in.PValue, *in.AdjustedPValue) {
		t.Errorf("report.md's overlap %q, the API's units %d p %v adjusted %v", l, ov.Units, in.PValue, *in.AdjustedPValue)
	}

	// The exact counts the health section is made of: none may reach a
	// viewer (the looks' units per arm, the overlap's shared units).
	var exact []int64
	for _, l := range h.Looks {
		for _, n := range l.Units {
			exact = append(exact, n)
		}
	}
	exact = append(exact, ov.Units)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)
	viewer := ts.key("exec", experiment.RoleViewer)
	var dp PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results/private", nil, &dp)
	released := map[int64]bool{} // the release's noised counts may be shown
	for _, n := range dp.Exposures {
		released[n] = true
	}
	for _, m := range dp.Metrics {
		for _, v := range m.Variants {
			released[int64(v.N)] = true
		}
	}
	var link shareOut
	ts.must(http.StatusCreated, "POST", "/v1/experiments/checkout/shares", map[string]any{}, &link)
	for _, c := range []struct{ who, path, key string }{
		{"viewer", "/v1/experiments/checkout/report.html", viewer},
		{"share link", "/shared/" + link.Token + "/report.html", ""},
	} {
		status, body := ts.do("GET", c.path, c.key, nil)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", c.who, status, body)
		}
		page := string(body)
		if strings.Contains(page, `id="health`) {
			t.Errorf("%s: the private report has a health section", c.who)
		}
		if !strings.Contains(page, htmlEscape(healthHidden)) {
			t.Errorf("%s: the private report does not say why the health checks are left out", c.who)
		}
		// What a reader sees: the text, without the charts' drawing commands.
		text := htmlText(regexp.MustCompile(`(?s)<svg.*?</svg>|<[^>]*>`).ReplaceAllString(page, " "))
		for _, n := range exact {
			if n < 100 || released[n] { // small numbers are in dates; the release's are noised
				continue
			}
			// A whole number, not the digits of a decimal (a noised mean 2.194).
			if m := regexp.MustCompile(`.{0,60}(^|[^\d.,])` + fmt.Sprint(n) + `([^\d.,]|$).{0,30}`).FindString(text); m != "" {
				t.Errorf("%s: the private report shows the exact count %d: %q", c.who, n, m)
			}
		}
	}
}

// shows reports whether the numbers printed in s are want, each as the
// report prints it (4 decimals, or 4 significant digits below 0.001).
func shows(s string, want ...float64) bool {
	got := shownNumRE.FindAllString(strings.ReplaceAll(s, "SE", ""), -1)
	if len(got) != len(want) {
		return false
	}
	for i, g := range got {
		x, err := strconv.ParseFloat(g, 64)
		if err != nil || math.Abs(x-want[i]) > 5e-5+5e-4*math.Abs(want[i]) {
			return false
		}
	}
	return true
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;", `"`, "&#34;").Replace(s)
}
