package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
)

// apiResults is what the results JSON (exact /results and /results/private)
// says of each row that the pages show.
type apiResults struct {
	Exposures map[string]int64 `json:"exposures"`
	SRM       struct {
		PValue float64 `json:"p_value"`
	} `json:"srm"`
	Metrics []struct {
		Name     string `json:"name"`
		Control  string `json:"control"`
		Variants []struct {
			Name string  `json:"name"`
			N    int64   `json:"n"`
			Mean float64 `json:"mean"`
		} `json:"variants"`
		Comparisons []struct {
			Variant  string     `json:"variant"`
			Flags    []string   `json:"flags"`
			Absolute apiEffect  `json:"absolute"`
			Relative *apiEffect `json:"relative"`
			Adjusted *struct {
				Method   string  `json:"method"`
				Absolute float64 `json:"absolute"`
			} `json:"adjusted_p_value"`
		} `json:"comparisons"`
	} `json:"metrics"`
}

type apiEffect struct {
	Estimate float64 `json:"estimate"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	PValue   float64 `json:"p_value"`
}

// authProxy is a server in front of the test server that adds the key's
// Authorization header to every request, so that Chromium, which cannot send
// one, loads the key's pages.
func authProxy(t *testing.T, target, key string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	dir := rp.Director
	rp.Director = func(r *http.Request) {
		dir(r)
		r.Header.Set("Authorization", "Bearer "+key)
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

var (
	numRE  = regexp.MustCompile(`[-+−]?[0-9][0-9,]*(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?`)
	rowRE  = regexp.MustCompile(`(?s)<tr [^>]*data-metric="([^"]+)" data-variant="([^"]+)"[^>]*>(.*?)</tr>`)
	cellRE = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tagRE  = regexp.MustCompile(`<[^>]+>`)
)

// shown is a number as a page prints it, with the rounding that printing
// implies: half a unit of its last digit.
type shown struct {
	text string
	v    float64
	tol  float64
}

// numbers returns the numbers printed in s, in order; pct divides by 100 the
// numbers followed by "%" (the pages print relative lifts as percentages).
func numbers(s string) []shown {
	var out []shown
	for _, loc := range numRE.FindAllStringIndex(s, -1) {
		t := s[loc[0]:loc[1]]
		c := strings.NewReplacer(",", "", "−", "-").Replace(t)
		v, err := strconv.ParseFloat(c, 64)
		if err != nil {
			continue
		}
		mant, exp, _ := strings.Cut(c, "e")
		dec := 0
		if _, frac, ok := strings.Cut(mant, "."); ok {
			dec = len(frac)
		}
		tol := 0.5 * math.Pow(10, -float64(dec))
		if exp != "" {
			e, _ := strconv.Atoi(exp)
			tol *= math.Pow(10, float64(e))
		}
		if loc[1] < len(s) && s[loc[1]] == '%' {
			v, tol = v/100, tol/100
		}
		out = append(out, shown{t, v, tol})
	}
	return out
}

// agree checks that the page printed want (the API's number), allowing for
// the printed rounding.
func agree(t *testing.T, where string, got shown, want float64) {
	t.Helper()
	if math.Abs(got.v-want) > got.tol*(1+1e-9) {
		t.Errorf("%s: the page shows %s, the API says %g", where, got.text, want)
	}
}

// agreeP checks a p-value cell: 4 decimals, or "< 0.0001".
func agreeP(t *testing.T, where, cell string, want float64) {
	t.Helper()
	if strings.Contains(cell, "&lt;") || strings.Contains(cell, "<") {
		if !(want < 1e-4) {
			t.Errorf("%s: the page shows %q, the API says %g", where, cell, want)
		}
		return
	}
	ns := numbers(cell)
	if len(ns) != 1 {
		t.Errorf("%s: p-value cell %q", where, cell)
		return
	}
	agree(t, where, ns[0], want)
}

// checkReportPage compares every row of a report page's results table, its
// units line and its SRM p-value with the results JSON.
func checkReportPage(t *testing.T, what, dom string, res apiResults) {
	t.Helper()
	rows := map[string][]string{}
	for _, m := range rowRE.FindAllStringSubmatch(dom, -1) {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(m[3], -1) {
			cells = append(cells, htmlText(c[1]))
		}
		rows[m[1]+"/"+m[2]] = cells
	}
	n := 0
	for _, m := range res.Metrics {
		vs := map[string]int{}
		for i, v := range m.Variants {
			vs[v.Name] = i
		}
		ctl := m.Variants[vs[m.Control]]
		for _, c := range m.Comparisons {
			n++
			k := m.Name + "/" + c.Variant
			where := what + " " + k
			cells, ok := rows[k]
			if !ok {
				t.Errorf("%s: no row on the page", where)
				continue
			}
			// metric, variant, n, mean, control mean, absolute, relative, p, adjusted p, verdict
			if len(cells) != 10 {
				t.Errorf("%s: %d cells %q, want 10", where, len(cells), cells)
				continue
			}
			v := m.Variants[vs[c.Variant]]
			if slices.Contains(c.Flags, analysis.FlagZeroVariance) || slices.Contains(c.Flags, analysis.FlagInsufficientData) {
				// The API's uninformative default (0 [0, 0], p = 1) is not a measurement.
				if cells[5] != "cannot be estimated" || cells[7] != "–" || cells[9] != "cannot be estimated" {
					t.Errorf("%s: flagged %v, the page shows %q", where, c.Flags, cells[5:])
				}
				continue
			}
			if got := strings.ReplaceAll(cells[2], ",", ""); got != strconv.FormatInt(v.N, 10) {
				t.Errorf("%s: n %q, the API says %d", where, cells[2], v.N)
			}
			agree(t, where+" mean", numbers(cells[3])[0], v.Mean)
			agree(t, where+" control mean", numbers(cells[4])[0], ctl.Mean)
			abs := numbers(cells[5])
			if len(abs) != 3 {
				t.Errorf("%s: absolute effect cell %q", where, cells[5])
			} else {
				agree(t, where+" absolute estimate", abs[0], c.Absolute.Estimate)
				agree(t, where+" absolute CI low", abs[1], c.Absolute.CILow)
				agree(t, where+" absolute CI high", abs[2], c.Absolute.CIHigh)
			}
			if slices.Contains(c.Flags, analysis.FlagRelativeZeroVariance) || slices.Contains(c.Flags, analysis.FlagZeroControlMean) {
				if cells[6] != "–" {
					t.Errorf("%s: relative flagged %v, the page shows %q", where, c.Flags, cells[6])
				}
			} else if c.Relative != nil && ctl.Mean != 0 {
				rel := numbers(cells[6])
				if len(rel) < 3 {
					t.Errorf("%s: relative effect cell %q", where, cells[6])
				} else {
					agree(t, where+" relative estimate", rel[0], c.Relative.Estimate)
					agree(t, where+" relative CI low", rel[1], c.Relative.CILow)
					agree(t, where+" relative CI high", rel[2], c.Relative.CIHigh)
				}
			}
			agreeP(t, where+" p-value", cells[7], c.Absolute.PValue)
			if c.Adjusted == nil {
				t.Errorf("%s: the API has no adjusted p-value", where)
			} else {
				agreeP(t, where+" adjusted p-value", cells[8], c.Adjusted.Absolute)
			}
		}
	}
	if n != len(rows) || n == 0 {
		t.Errorf("%s: the page has %d rows, the API %d comparisons", what, len(rows), n)
	}
	// "Units per variant: control 400 · treatment 400."
	units := regexp.MustCompile(`Units per variant[^:]*: ([^<]*)\.</p>`).FindStringSubmatch(dom)
	if units == nil {
		t.Errorf("%s: no units line", what)
	} else {
		checkUnits(t, what, units[1], res.Exposures)
	}
	srm := regexp.MustCompile(`against the variant weights, p = ([^ ]+) `).FindStringSubmatch(htmlText(dom))
	if srm == nil {
		t.Errorf("%s: no SRM p-value", what)
	} else {
		agreeP(t, what+" SRM p-value", srm[1], res.SRM.PValue)
	}
}

// checkUnits compares "control 400 · treatment 400" with units per arm.
func checkUnits(t *testing.T, what, text string, want map[string]int64) {
	t.Helper()
	for _, part := range strings.Split(text, "·") {
		f := strings.Fields(part)
		if len(f) != 2 {
			t.Errorf("%s: units %q", what, text)
			continue
		}
		if got := strings.ReplaceAll(f[1], ",", ""); got != strconv.FormatInt(want[f[0]], 10) {
			t.Errorf("%s: units of %s shown %s, the API says %d", what, f[0], f[1], want[f[0]])
		}
	}
	if len(strings.Split(text, "·")) != len(want) {
		t.Errorf("%s: units %q, the API has %d arms", what, text, len(want))
	}
}

// checkDigestText compares a digest's headline sentence and units line, as a
// page shows them, with the private results JSON of its subject: metric's
// relative lift of variant over control, and the units per arm.
func checkDigestText(t *testing.T, what, headline, units string, res PrivateResults, metric, variant string) {
	t.Helper()
	var rel *apiEffect
	for _, m := range res.Metrics {
		for _, c := range m.Comparisons {
			if m.Name == metric && c.Variant == variant && c.Relative != nil {
				rel = &apiEffect{c.Relative.Estimate, c.Relative.CILow, c.Relative.CIHigh, c.Relative.PValue}
			}
		}
	}
	if rel == nil {
		t.Fatalf("%s: the API has no relative lift of %s, %s", what, metric, variant)
	}
	if !strings.HasPrefix(headline, metric+" ("+variant+" vs ") {
		t.Errorf("%s: headline %q is not about %s, %s", what, headline, metric, variant)
	}
	// "converted (exposed vs holdout): +1.2% (95% CI −3.4% to +5.6%)": the lift,
	// the level, then the bounds.
	ns := numbers(headline[strings.Index(headline, ":"):])
	if len(ns) != 4 {
		t.Fatalf("%s: headline %q", what, headline)
	}
	agree(t, what+" lift", ns[0], rel.Estimate)
	agree(t, what+" CI low", ns[2], rel.CILow)
	agree(t, what+" CI high", ns[3], rel.CIHigh)
	checkUnits(t, what, strings.TrimPrefix(units, "Units: "), res.Exposures)
}

// TestPagesShowTheAPINumbers renders the exact report, the DP report, a holdout
// digest, an experiment digest and the summaries page in Debian's headless
// Chromium from a real server, and checks every number they show (effects,
// intervals, p-values and adjusted p-values, unit counts, SRM) against the API's
// JSON for the same experiment and release. Screenshots of each page are saved
// (LIFT_TEST_ARTIFACTS chooses the folder).
func TestPagesShowTheAPINumbers(t *testing.T) {
	browse := chromium(t)
	if browse == nil {
		t.Skip("chromium not installed (apt-get install chromium; LIFT_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	ts := newJobServer(t)
	setupPrivate(t, ts)
	setupHoldout(t, ts)
	// setupPrivate's revenue is constant within each arm and every unit
	// converted: a second purchase for every third unit and a visit for
	// every third give revenue and visits a spread; converted stays constant in both
	// arms, a row the analysis cannot estimate.
	var evs []experiment.Event
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 800 {
		u := fmt.Sprintf("u%d", i)
		if i%3 == 0 {
			evs = append(evs, experiment.Event{EventID: "second-" + u, Unit: u, Type: "purchase", TS: t0, Value: float64(5 + i%7)})
		}
		if i%3 == 1 {
			evs = append(evs, experiment.Event{EventID: "visit-" + u, Unit: u, Type: "visit", TS: t0, Value: 1})
		}
	}
	if _, _, err := ts.db.IngestEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusOK, "PUT", "/v1/experiments/checkout/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)
	ts.must(http.StatusOK, "PUT", "/v1/holdouts/global/privacy", map[string]any{"epsilon": 4, "release_epsilon": 1}, nil)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)

	// The exact report against the exact results.
	var exact apiResults
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/checkout/results", nil, &exact)
	asAnalyst := authProxy(t, ts.http.URL, analyst)
	dom := string(browse("--dump-dom", asAnalyst+"/v1/experiments/checkout/report.html"))
	checkReportPage(t, "exact report", dom, exact)
	screenshotSized(t, browse, asAnalyst+"/v1/experiments/checkout/report.html", "report.png", 2600)

	// The DP report against the private results: the same release of the period.
	var dp apiResults
	var dpr PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/experiments/checkout/results/private", nil, &dpr)
	b, _ := json.Marshal(dpr)
	if err := json.Unmarshal(b, &dp); err != nil {
		t.Fatal(err)
	}
	asViewer := authProxy(t, ts.http.URL, viewer)
	dom = string(browse("--dump-dom", asViewer+"/v1/experiments/checkout/report.html"))
	if !strings.Contains(dom, "DP-noised (ε = 0.5)") {
		t.Errorf("the viewer's report is not the DP one")
	}
	checkReportPage(t, "DP report", dom, dp)
	screenshotSized(t, browse, asViewer+"/v1/experiments/checkout/report.html", "report-dp.png", 2200)

	// A holdout digest against the holdout's private results, and an experiment
	// digest against the experiment's (the same releases: same period).
	hd, hrd := runDigestJob(t, ts, map[string]any{"name": "long-run", "kind": "digest", "every": "168h", "target": "global", "params": map[string]any{"subject": "holdout"}})
	ed, erd := runDigestJob(t, ts, map[string]any{"name": "weekly", "kind": "digest", "every": "168h", "target": "checkout"})
	var hres PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/holdouts/global/results/private", nil, &hres)
	for _, c := range []struct {
		d       *experiment.Digest
		rd      *reports.Digest
		res     PrivateResults
		what    string
		variant string
	}{{hd, hrd, hres, "holdout digest", "exposed"}, {ed, erd, dpr, "experiment digest", "treatment"}} {
		if c.rd.Headline == nil {
			t.Fatalf("%s has no headline", c.what)
		}
		page := htmlText(string(browse("--dump-dom", ts.http.URL+"/summaries/"+c.d.ID+"?key="+viewer)))
		head := regexp.MustCompile(`id="headline">([^<]*)<`).FindStringSubmatch(page)
		units := regexp.MustCompile(`id="units">([^<]*)<`).FindStringSubmatch(page)
		if head == nil || units == nil {
			t.Errorf("%s page lacks its headline or units:\n%s", c.what, page)
			continue
		}
		checkDigestText(t, c.what, head[1], units[1], c.res, c.rd.Headline.Metric, c.variant)
	}
	screenshot(t, browse, ts.http.URL+"/summaries/"+hd.ID+"?key="+viewer, "holdout-digest.png")

	// The summaries page lists both, each with the numbers of its own page.
	list := htmlText(string(browse("--dump-dom", ts.http.URL+"/summaries?key="+viewer)))
	for _, c := range []struct {
		d       *experiment.Digest
		res     PrivateResults
		metric  string
		variant string
	}{{hd, hres, hrd.Headline.Metric, "exposed"}, {ed, dpr, erd.Headline.Metric, "treatment"}} {
		item := regexp.MustCompile(`(?s)<li><a class="title" href="/summaries/` + c.d.ID + `">.*?</li>`).FindString(list)
		head := regexp.MustCompile(`class="headline">([^<]*)<`).FindStringSubmatch(item)
		units := regexp.MustCompile(`class="facts">(Units: [^<]*)<`).FindStringSubmatch(item)
		if head == nil || units == nil {
			t.Errorf("the summaries page lacks the headline or units of %s:\n%s", c.d.ID, item)
			continue
		}
		checkDigestText(t, fmt.Sprintf("summaries page, %s", c.d.Title), head[1], units[1], c.res, c.metric, c.variant)
	}
	screenshot(t, browse, ts.http.URL+"/summaries?key="+viewer, "summaries-page.png")
}
