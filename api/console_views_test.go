package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis/synth"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// setupViews registers what the report's views show: "promo", a two-arm
// experiment under the Bayesian engine whose units have a device attribute
// (a planted effect of +3 on phones), with a privacy budget; and "arms", a
// three-arm bandit on conversion (arm c converts 6 in 10, the others 1 in 10)
// whose weights were recomputed once.
func setupViews(t *testing.T, ts *tserver) {
	t.Helper()
	ctx := context.Background()
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum",
		"bounds": map[string]float64{"lower": 0, "upper": 50}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "converted", "event_type": "purchase", "aggregation": "binary"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "promo", "variants": twoArms,
		"metrics":  []map[string]any{{"name": "revenue", "primary": true}, {"name": "converted"}},
		"analysis": map[string]any{"engine": "bayesian"}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/promo/start", nil, nil)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	for i := range 600 {
		u := fmt.Sprintf("p%d", i)
		arm := []string{"control", "treatment"}[i%2]
		device := []string{"desktop", "phone", "tablet"}[(i/2)%3]
		y := float64(i%7) + 1
		if arm == "treatment" && device == "phone" {
			y += 3
		}
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: arm, TS: t0})
		if i%5 != 0 {
			evs = append(evs, experiment.Event{EventID: "e" + u, Unit: u, Type: "purchase", TS: t0.Add(time.Hour), Value: y})
		}
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"device": device}})
	}
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.UpsertUnitAttributes(ctx, attrs); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusOK, "PUT", "/v1/experiments/promo/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)

	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "arms", "metrics": []string{"converted"},
		"variants":   []map[string]any{{"name": "a", "weight": 0.4}, {"name": "b", "weight": 0.3}, {"name": "c", "weight": 0.3}},
		"allocation": map[string]any{"kind": "bandit", "reward": "converted", "min_share": 0.05, "burn_in": 10}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/arms/start", nil, nil)
	units := make([]string, 600)
	for i := range units {
		units[i] = fmt.Sprintf("b%d", i)
	}
	var as assignBatchResponse
	ts.must(http.StatusOK, "POST", "/v1/assign", map[string]any{"experiment": "arms", "units": units, "expose": true}, &as)
	for i, a := range as.Assignments {
		if !a.InExperiment {
			continue
		}
		if rate := map[string]int{"c": 6}[*a.Variant]; i%10 < max(rate, 1) {
			evs = append(evs, experiment.Event{EventID: "e" + a.Unit, Unit: a.Unit, Type: "purchase", TS: t0.Add(26 * time.Hour), Value: 1}) // after the exposure, at the server's now
		}
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	var v experiment.BanditVersion
	ts.must(http.StatusOK, "POST", "/v1/experiments/arms/bandit/recompute", nil, &v)
	if v.Weights[2] < v.Weights[0] || v.Weights[2] < v.Weights[1] {
		t.Fatalf("version 1 %+v: arm c should lead", v)
	}
}

// newViewsServer is a test server whose store and server clocks stand at
// 2026-03-02 09:00 UTC.
func newViewsServer(t *testing.T) *tserver {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	return newTestServerAt(t, now, func(o *Options) { o.Now = func() time.Time { return now } })
}

var viewRowRE = regexp.MustCompile(`(?s)<tr data-(arm|version|segment|quantile|bayes-metric)="([^"]+)"[^>]*>(.*?)</tr>`)

// viewRows are the rows of the views' tables on a page, by kind and key, as
// the text of their cells.
func viewRows(dom string) map[string][]string {
	out := map[string][]string{}
	for _, m := range viewRowRE.FindAllStringSubmatch(dom, -1) {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(m[3], -1) {
			cells = append(cells, htmlText(tagRE.ReplaceAllString(c[1], "")))
		}
		out[m[1]+"/"+m[2]] = cells
	}
	return out
}

// checkNumbers compares the numbers of a cell with want, in order.
func checkNumbers(t *testing.T, where, cell string, want ...float64) {
	t.Helper()
	ns := numbers(cell)
	if len(ns) < len(want) {
		t.Errorf("%s: cell %q has %d numbers, want %d", where, cell, len(ns), len(want))
		return
	}
	for i, w := range want {
		agree(t, fmt.Sprintf("%s[%d]", where, i), ns[i], w)
	}
}

// checkViews compares every number of the views on a page (dom) with the
// API's JSON: the bandit's state, the segments, the quantiles and the results'
// Bayesian view.
func checkViews(t *testing.T, what, dom string, bandit *jobs.BanditState, seg *segmentsResult, q *quantilesResult, res *results.Results) {
	t.Helper()
	rows := viewRows(dom)
	n := 0
	if bandit != nil {
		cur := bandit.Versions[len(bandit.Versions)-1]
		effs := map[string]jobs.BanditEffect{}
		for _, e := range bandit.Effects {
			effs[e.Variant] = e
		}
		for i, v := range bandit.Variants {
			cells, ok := rows["arm/"+v]
			if !ok || len(cells) != 6 {
				t.Errorf("%s: bandit arm %s: cells %q", what, v, cells)
				continue
			}
			n++
			where := what + " arm " + v
			checkNumbers(t, where+" mean", cells[1], bandit.ArmMeans[i])
			checkNumbers(t, where+" weight", cells[2], cur.Weights[i])
			checkNumbers(t, where+" P(best)", cells[3], cur.ProbBest[i])
			if i > 0 {
				e := effs[v]
				checkNumbers(t, where+" effect", cells[4], e.Estimate, e.Lower, e.Upper)
				checkNumbers(t, where+" naive", cells[5], e.Naive)
			}
		}
		for _, ver := range bandit.Versions {
			cells, ok := rows["version/"+strconv.Itoa(ver.Version)]
			if !ok || len(cells) != 2+2*len(bandit.Variants) {
				t.Errorf("%s: weight version %d: cells %q", what, ver.Version, cells)
				continue
			}
			n++
			for i := range bandit.Variants {
				checkNumbers(t, fmt.Sprintf("%s version %d weight %d", what, ver.Version, i), cells[2+i], ver.Weights[i])
				checkNumbers(t, fmt.Sprintf("%s version %d P(best) %d", what, ver.Version, i), cells[2+len(bandit.Variants)+i], ver.ProbBest[i])
			}
		}
		m := regexp.MustCompile(`Cumulative regret[^:]*: ([^<]*)\.</p>`).FindStringSubmatch(dom)
		if m == nil {
			t.Errorf("%s: no regret", what)
		} else {
			checkNumbers(t, what+" regret", m[1], bandit.Regret)
		}
	}
	if seg != nil {
		for _, s := range seg.Segments {
			cells, ok := rows["segment/"+s.Segment]
			if !ok || len(cells) != 6 {
				t.Errorf("%s: segment %s: cells %q", what, s.Segment, cells)
				continue
			}
			n++
			where := what + " segment " + s.Segment
			if cells[1] != strconv.FormatInt(s.Control, 10) || cells[2] != strconv.FormatInt(s.Treated, 10) {
				t.Errorf("%s: units %s/%s, the API says %d/%d", where, cells[1], cells[2], s.Control, s.Treated)
			}
			checkNumbers(t, where+" effect", cells[3], s.Absolute.Estimate, s.Absolute.CILow, s.Absolute.CIHigh)
			agreeP(t, where+" adjusted p", cells[4], s.Adjusted)
			agreeP(t, where+" interaction p", strings.TrimSuffix(cells[5], " · differs"), s.InteractionAdjusted)
			if strings.HasSuffix(cells[5], "differs") != s.Differs {
				t.Errorf("%s: %q, the API says differs %v", where, cells[5], s.Differs)
			}
		}
		if h := seg.Heterogeneity; h != nil {
			m := regexp.MustCompile(`Cochran's Q\): p (= |&lt; )([0-9.]+)\.`).FindStringSubmatch(dom)
			if m == nil {
				t.Errorf("%s: no heterogeneity p-value", what)
			} else {
				agreeP(t, what+" heterogeneity", m[1]+m[2], h.PValue)
			}
		}
		if ps := seg.PostStratified; ps != nil {
			m := regexp.MustCompile(`Post-stratified overall effect: ([^\]]+\])`).FindStringSubmatch(htmlText(dom))
			if m == nil {
				t.Errorf("%s: no post-stratified effect", what)
			} else {
				checkNumbers(t, what+" post-stratified", m[1], ps.Estimate, ps.CILow, ps.CIHigh)
			}
		}
	}
	if q != nil {
		for _, x := range q.Quantiles {
			k := "quantile/p" + strconv.FormatFloat(100*x.Quantile, 'f', -1, 64)
			cells, ok := rows[k]
			if !ok || len(cells) != 4 {
				t.Errorf("%s: %s: cells %q", what, k, cells)
				continue
			}
			n++
			checkNumbers(t, what+" "+k+" control", cells[1], x.Control.Estimate)
			checkNumbers(t, what+" "+k+" treated", cells[2], x.Treated.Estimate)
			checkNumbers(t, what+" "+k+" difference", cells[3], x.Absolute.Estimate, x.Absolute.CILow, x.Absolute.CIHigh)
		}
	}
	if res != nil {
		for _, m := range res.Metrics {
			for _, c := range m.Comparisons {
				if c.Bayesian == nil {
					continue
				}
				cells, ok := rows["bayes-metric/"+m.Name]
				if !ok || len(cells) != 6 || cells[1] != c.Variant {
					t.Errorf("%s: Bayesian %s: cells %q", what, m.Name, cells)
					continue
				}
				n++
				b := c.Bayesian.Relative
				where := what + " Bayesian " + m.Name
				checkNumbers(t, where+" posterior", cells[2], b.Expected, b.CILow, b.CIHigh)
				checkNumbers(t, where+" chance to win", cells[3], b.ChanceToWin)
				checkNumbers(t, where+" risk control", cells[4], b.RiskControl)
				checkNumbers(t, where+" risk treatment", cells[5], b.RiskTreatment)
			}
		}
	}
	if n != len(rows) || n == 0 {
		t.Errorf("%s: the page has %d view rows, the API %d", what, len(rows), n)
	}
}

// TestReportViews: an analyst's HTML report shows the bandit's state, the
// segments, the quantiles and the Bayesian view with the API's numbers, the
// allocation chart's data are the weight history of the API, and a viewer's
// report shows none of them but says why.
func TestReportViews(t *testing.T) {
	ts := newViewsServer(t)
	setupViews(t, ts)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)
	var bandit jobs.BanditState
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/arms/bandit", nil, &bandit)
	if len(bandit.Versions) != 2 {
		t.Fatalf("bandit versions %+v, want 0 and 1", bandit.Versions)
	}
	var seg segmentsResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "device"}, &seg)
	var q quantilesResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/quantiles", map[string]any{"experiment": "promo", "metric": "revenue"}, &q)
	var res results.Results
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/promo/results", nil, &res)

	_, promo := ts.do("GET", "/v1/experiments/promo/report.html", analyst, nil)
	checkViews(t, "promo report", string(promo), nil, &seg, &q, &res)
	_, arms := ts.do("GET", "/v1/experiments/arms/report.html", analyst, nil)
	checkViews(t, "arms report", string(arms), &bandit, nil, nil, nil)
	if !strings.Contains(string(arms), `Bandit allocation by weight version`) {
		t.Errorf("the bandit's report has no allocation chart")
	}

	r, err := BuildReport(context.Background(), ts.db, ts.srv.results, "arms", ReportOptions{Who: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ch, ok := r.Chart("allocation")
	if !ok {
		t.Fatalf("no allocation chart; charts %q", r.ChartNames())
	}
	drawn := ch.(*reports.Allocation)
	if len(drawn.Versions) != len(bandit.Versions) || fmt.Sprint(drawn.Variants) != fmt.Sprint(bandit.Variants) {
		t.Fatalf("drawn %+v, the API's %+v", drawn, bandit.Versions)
	}
	for i, v := range drawn.Versions {
		w := bandit.Versions[i]
		if v.Version != w.Version || fmt.Sprint(v.Weights) != fmt.Sprint(w.Weights) || fmt.Sprint(v.ProbBest) != fmt.Sprint(w.ProbBest) {
			t.Errorf("drawn version %+v, the API's %+v", v, w)
		}
	}

	status, private := ts.do("GET", "/v1/experiments/promo/report.html", viewer, nil)
	if status != 200 {
		t.Fatalf("viewer's report: %d %s", status, private)
	}
	if rows := viewRows(string(private)); len(rows) != 0 {
		t.Errorf("a viewer's report shows the views: %v", rows)
	}
	for _, want := range []string{"The Bayesian view (chance to win, risk, credible intervals): it has no differentially private release", "Segment breakdowns and quantiles of revenue: they have no differentially private release"} {
		if !strings.Contains(htmlText(string(private)), want) {
			t.Errorf("the viewer's report does not say %q", want)
		}
	}
}

// TestConsoleViewsInChromium: the console's experiment pages, rendered by
// Debian's headless Chromium, show the bandit's state and allocation chart,
// the segments, the quantiles and the Bayesian view with the API's numbers
// for an analyst; a viewer sees none of them and is told why. Screenshots
// are saved (docs/console.md shows them).
func TestConsoleViewsInChromium(t *testing.T) {
	browse := chromium(t)
	if browse == nil {
		t.Skip("chromium not installed (apt-get install chromium; LIFT_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	ts := newViewsServer(t)
	setupViews(t, ts)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)
	var bandit jobs.BanditState
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/arms/bandit", nil, &bandit)
	var seg segmentsResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "revenue", "attribute": "device"}, &seg)
	var q quantilesResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/quantiles", map[string]any{"experiment": "promo", "metric": "revenue"}, &q)
	var res results.Results
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/promo/results", nil, &res)

	base := sessionProxy(t, ts.http.URL, newBrowser(t, ts).signIn(analyst))
	dom := string(browse("--dump-dom", base+"/experiments/promo?segment=device"))
	checkViews(t, "analyst's promo page", dom, nil, &seg, &q, &res)
	dom = string(browse("--dump-dom", base+"/experiments/arms"))
	checkViews(t, "analyst's bandit page", dom, &bandit, nil, nil, nil)
	if !strings.Contains(dom, "Bandit allocation by weight version") || !strings.Contains(dom, `href="/experiments/arms/files/allocation.svg"`) {
		t.Errorf("the bandit's page lacks the allocation chart or its download")
	}
	screenshotSized(t, browse, base+"/experiments/promo", "console-views-promo-analyst.png", 3200)
	screenshotSized(t, browse, base+"/experiments/arms", "console-views-bandit-analyst.png", 2600)

	vbase := sessionProxy(t, ts.http.URL, newBrowser(t, ts).signIn(viewer))
	dom = string(browse("--dump-dom", vbase+"/experiments/promo"))
	if rows := viewRows(dom); len(rows) != 0 {
		t.Errorf("the viewer's page shows the views: %v", rows)
	}
	if !strings.Contains(htmlText(dom), "Segment breakdowns and quantiles of revenue: they have no differentially private release; analysts see them.") {
		t.Errorf("the viewer's page does not say why the views are left out")
	}
	screenshotSized(t, browse, vbase+"/experiments/promo", "console-views-promo-viewer.png", 1800)
}

// replayServer serves page at /page and passes every other path (the
// stylesheet) to base: Chromium cannot POST a form from the command line, so
// it renders the console's answer to the form from here.
func replayServer(t *testing.T, base string, page []byte) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/page" {
			rp.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// geoCSV is geoNoisyRows as the CSV a user uploads.
func geoCSV() string {
	var b strings.Builder
	b.WriteString("market,week,sales\n")
	for _, r := range geoNoisyRows() {
		fmt.Fprintf(&b, "%s,%s,%s\n", r["unit"], r["period"], strconv.FormatFloat(r["value"].(float64), 'g', -1, 64))
	}
	return b.String()
}

// TestConsoleGeo: the console's geo form runs the pipeline of POST
// /v1/analyses/geo over an uploaded CSV panel and shows, rendered by
// Chromium, the API's numbers (every fit's effect, cumulative effect, p-values,
// fit, the weights, the effect path) and its four charts; bad input is a 4xx
// with the API's message next to the field; a forged form is refused and a
// viewer cannot open the page.
func TestConsoleGeo(t *testing.T) {
	ts := newTestServer(t)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)
	body := map[string]any{"rows": geoNoisyRows(), "treated": []string{"t1", "t2"}, "start": "2026-W21", "outcome": "sales"}
	var res geoResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/geo", body, &res)

	b := newBrowser(t, ts)
	ck := b.signIn(analyst)
	if resp := b.do("/analyses/geo", nil); resp.StatusCode != 200 || !strings.Contains(b.last, `<label for="treated">`) || !strings.Contains(b.last, `href="/analyses/geo" aria-current="page"`) {
		t.Fatalf("the geo form: %d\n%s", resp.StatusCode, b.last)
	}
	form := url.Values{"csrf": {b.csrf()}, "source": {"upload"}, "panel": {geoCSV()}, "unit_col": {"market"}, "period_col": {"week"}, "value_col": {"sales"},
		"treated": {"t1, t2"}, "start": {"2026-W21"}, "method": {"scm"}}
	for _, c := range []struct {
		name   string
		change url.Values
		status int
		field  string // the form field whose error is shown, "" for the csrf refusal
		msg    string
	}{
		{"forged form", url.Values{"csrf": {"forged"}}, 403, "", "csrf: the form&#39;s token does not match"},
		{"unknown market", url.Values{"treated": {"t1, nowhere"}}, 400, "treated", "treated[1]:"},
		{"no such column", url.Values{"value_col": {"revenue"}}, 400, "panel", `panel: the header has no column &#34;revenue&#34;`},
		{"bad method", url.Values{"method": {"magic"}}, 400, "method", `method: must be scm or augmented`},
		{"stored, no dates", url.Values{"source": {"stored"}, "metric": {"nope"}}, 400, "from", "from:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			for k, v := range c.change {
				f[k] = v
			}
			resp := b.do("/analyses/geo", f)
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			want := c.msg
			if c.field != "" {
				want = `id="` + c.field + `-error" role="alert">` + c.msg
			}
			if !strings.Contains(b.last, want) {
				t.Errorf("the page does not show %q:\n%s", want, b.last)
			}
			if strings.Contains(b.last, "<svg") {
				t.Errorf("a refused form shows a result")
			}
		})
	}
	b.do("/analyses/geo", nil)
	form.Set("csrf", b.csrf())
	if resp := b.do("/analyses/geo", form); resp.StatusCode != 200 {
		t.Fatalf("running the analysis: %d\n%s", resp.StatusCode, b.last)
	}
	page := b.last

	vb := newBrowser(t, ts)
	vb.signIn(viewer)
	if resp := vb.do("/analyses/geo", nil); resp.StatusCode != 403 || !strings.Contains(vb.last, "no differentially private release") {
		t.Errorf("a viewer's geo page: %d\n%s", resp.StatusCode, vb.last)
	}
	if strings.Contains(vb.last, `href="/analyses/geo"`) {
		t.Errorf("a viewer's navigation links the geo page")
	}

	browse := chromium(t)
	if browse == nil {
		t.Skip("chromium not installed (apt-get install chromium; LIFT_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	base := replayServer(t, sessionProxy(t, ts.http.URL, ck), []byte(page))
	dom := htmlText(string(browse("--dump-dom", base+"/page")))
	if n := strings.Count(dom, "<svg"); n != 4 {
		t.Errorf("the page has %d charts, want 4", n)
	}
	rows := func(attr string) map[string][]string {
		out := map[string][]string{}
		for _, m := range regexp.MustCompile(`(?s)<tr data-`+attr+`="([^"]+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(dom, -1) {
			var cells []string
			for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
				cells = append(cells, tagRE.ReplaceAllString(c[1], ""))
			}
			out[m[1]] = cells
		}
		return out
	}
	fits := rows("unit")
	ests := append([]synth.Estimate{res.Average}, res.Markets...)
	if len(fits) != len(ests) {
		t.Fatalf("the page has %d fits, the JSON %d", len(fits), len(ests))
	}
	for _, e := range ests {
		c := fits[e.Unit]
		where := "fit " + e.Unit
		// unit, effect, cumulative, lift, conformal p, conformal interval, placebo p, rank, placebo interval, RMSPE, R²
		if len(c) != 11 {
			t.Errorf("%s: cells %q", where, c)
			continue
		}
		checkNumbers(t, where+" effect", c[1], e.Effect)
		checkNumbers(t, where+" cumulative", c[2], e.Cumulative)
		checkNumbers(t, where+" lift", c[3], e.Lift)
		agreeP(t, where+" conformal p", c[4], e.Conformal.PValue)
		agreeP(t, where+" placebo p", c[6], e.Placebo.PValue)
		checkNumbers(t, where+" RMSPE", c[9], e.PreRMSPE)
		checkNumbers(t, where+" R²", c[10], e.R2)
	}
	donors := map[string][]string{}
	if first := regexp.MustCompile(`(?s)<table class="weights" data-unit="([^"]+)">(.*?)</table>`).FindStringSubmatch(dom); first == nil || first[1] != res.Average.Unit {
		t.Errorf("the first weights table is not the average fit's")
	} else {
		for _, m := range regexp.MustCompile(`(?s)<tr data-donor="([^"]+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(first[2], -1) {
			var cells []string
			for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
				cells = append(cells, tagRE.ReplaceAllString(c[1], ""))
			}
			donors[m[1]] = cells
		}
	}
	if len(donors) != len(res.Average.Weights) {
		t.Errorf("the page has %d donors of the average, the JSON %d", len(donors), len(res.Average.Weights))
	}
	for _, w := range res.Average.Weights {
		if c, ok := donors[w.Unit]; !ok || len(c) != 2 {
			t.Errorf("donor %s: cells %q", w.Unit, c)
		} else {
			checkNumbers(t, "weight of "+w.Unit, c[1], w.Weight)
		}
	}
	path := rows("period")
	for _, pt := range res.Average.Path[res.NPre:] {
		c, ok := path[pt.Period]
		if !ok || len(c) != 6 {
			t.Errorf("period %s: cells %q", pt.Period, c)
			continue
		}
		checkNumbers(t, "period "+pt.Period+" treated", c[1], pt.Treated)
		checkNumbers(t, "period "+pt.Period+" synthetic", c[2], pt.Synthetic)
		checkNumbers(t, "period "+pt.Period+" effect", c[3], pt.Effect)
	}
	if len(path) != res.NPost {
		t.Errorf("the page has %d post periods, the JSON %d", len(path), res.NPost)
	}
	screenshotSized(t, browse, base+"/page", "console-geo.png", 3400)
}

// TestConsoleUnitPages: a unit's page shows its consent history as the API
// answers it; an admin downloads the unit's export (the API's JSON), resets
// its profile and erases it through forms that need the session's CSRF token
// and a confirmation, and an analyst or viewer cannot; a decision's page
// shows why the unit saw its items, as GET /v1/journeys/KEY/decisions/ID
// says; with rows forwarded to ClickHouse, the erasure says its ClickHouse
// part is pending. Rendered in Chromium, with screenshots.
func TestConsoleUnitPages(t *testing.T) {
	ts := newJourneyServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, nil)
	ingest := ts.key("collector", experiment.RoleIngest)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)
	var d journey.Decision
	unit := ""
	for i := range 60 {
		unit = "u-" + strconv.Itoa(i)
		ts.mustAs(ingest, http.StatusOK, "PUT", "/v1/units/"+unit+"/consent", map[string]any{
			"tier": 3, "purposes": []string{"personalization", "analytics"}, "policy_id": "privacy", "policy_version": "2026-06", "channels": []string{"web"}}, nil)
		ts.mustAs(ingest, http.StatusOK, "PUT", "/v1/units/"+unit+"/consent", map[string]any{
			"tier": 2, "purposes": []string{"personalization"}, "opt_out_categories": []string{"health"}, "policy_id": "privacy", "policy_version": "2026-07"}, nil)
		ts.mustAs(ingest, http.StatusOK, "POST", "/v1/journeys/home/decide", map[string]any{
			"unit": unit, "context": map[string]any{"recent_items": []string{"item-5"}}}, &d)
		if d.Policy == experiment.PolicyPersonalized {
			break
		}
	}
	if d.Policy != experiment.PolicyPersonalized {
		t.Fatal("no personalized decision among 60 units")
	}
	var hist consentHistory
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/units/"+unit+"/consent", nil, &hist)
	var rec store.DecisionRecord
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/journeys/home/decisions/"+d.ID, nil, &rec)
	var items []journey.Item
	if err := json.Unmarshal(rec.Items, &items); err != nil {
		t.Fatal(err)
	}
	var prov journey.Provenance
	if err := json.Unmarshal(rec.Provenance, &prov); err != nil {
		t.Fatal(err)
	}

	checkHistory := func(what, dom string) {
		t.Helper()
		rows := regexp.MustCompile(`(?s)<tr data-consent-version="([0-9]+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(dom, -1)
		if len(rows) != len(hist.History) || len(rows) != 2 {
			t.Fatalf("%s: %d consent rows, the API %d", what, len(rows), len(hist.History))
		}
		for i, m := range rows {
			h := hist.History[i]
			var cells []string
			for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
				cells = append(cells, htmlText(c[1]))
			}
			want := []string{strconv.Itoa(h.Version), strconv.Itoa(h.Tier), strings.Join(h.Purposes, ", "), strings.Join(h.OptOutCategories, ", "), strings.Join(h.Channels, ", "),
				h.PolicyID + " " + h.PolicyVersion, h.GrantedAt.UTC().Format("2006-01-02 15:04"), h.RecordedAt.UTC().Format("2006-01-02 15:04")}
			if fmt.Sprint(cells) != fmt.Sprint(want) {
				t.Errorf("%s: consent version %s shows %q, the API %q", what, m[1], cells, want)
			}
		}
	}
	checkDecision := func(what, dom string) {
		t.Helper()
		rows := regexp.MustCompile(`(?s)<tr data-item="([^"]+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(dom, -1)
		if len(rows) != len(items) || len(rows) == 0 {
			t.Fatalf("%s: %d items, the API %d", what, len(rows), len(items))
		}
		for i, m := range rows {
			var cells []string
			for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
				cells = append(cells, htmlText(c[1]))
			}
			if len(cells) != 3 || cells[0] != items[i].ID || cells[2] != items[i].Reason {
				t.Errorf("%s: item %d shows %q, the API %+v", what, i, cells, items[i])
				continue
			}
			checkNumbers(t, what+" score of "+items[i].ID, cells[1], items[i].Score)
		}
		for id, want := range map[string]string{
			"consent": fmt.Sprintf("tier %d (%s) · policy %s %s · stored version %d · opted out of %s", prov.Consent.Tier, prov.Consent.Source, prov.Consent.PolicyID, prov.Consent.PolicyVersion, prov.Consent.StoredVersion, strings.Join(prov.Consent.OptOutCategories, ", ")),
			"signals": strings.Join(prov.Consent.Signals, ", ") + " · session items " + strings.Join(prov.SessionItems, ", "),
			"model":   prov.Model + " " + prov.ModelVersion,
			"policy":  rec.Policy,
			"rules":   fmt.Sprintf("personalizes from consent tier %d · %d items · latency budget %s · control policy %s", prov.Rules.ConsentTier, prov.Rules.K, prov.Rules.LatencyBudget, prov.Rules.ControlPolicy),
		} {
			m := regexp.MustCompile(`<dd id="` + id + `">([^<]*)</dd>`).FindStringSubmatch(dom)
			if m == nil || htmlText(m[1]) != want {
				t.Errorf("%s: %s shows %q, want %q", what, id, m, want)
			}
		}
	}

	admin := newBrowser(t, ts)
	ck := admin.signIn(ts.admin)
	if resp := admin.do("/units?unit="+url.QueryEscape(unit), nil); resp.StatusCode != 200 {
		t.Fatalf("unit page: %d\n%s", resp.StatusCode, admin.last)
	}
	checkHistory("admin's unit page", admin.last)
	unitTok := admin.csrf()
	resp := admin.do("/units/data.json?unit="+url.QueryEscape(unit), nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	var got, want store.UnitData
	if err := json.Unmarshal([]byte(admin.last), &got); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusOK, "GET", "/v1/units/"+unit+"/data", nil, &want)
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		t.Errorf("the console's export\n%s\nthe API's\n%s", g, w)
	}
	if resp := admin.do("/journeys/home/decisions/"+d.ID, nil); resp.StatusCode != 200 {
		t.Fatalf("decision page: %d\n%s", resp.StatusCode, admin.last)
	}
	checkDecision("decision page", admin.last)

	ana := newBrowser(t, ts)
	ana.signIn(analyst)
	ana.do("/units?unit="+url.QueryEscape(unit), nil)
	checkHistory("analyst's unit page", ana.last)
	if strings.Contains(ana.last, `action="/units/erase"`) {
		t.Errorf("an analyst's unit page has the erase form")
	}
	anaTok := ana.csrf()
	vw := newBrowser(t, ts)
	vw.signIn(viewer)
	if resp := vw.do("/units?unit="+url.QueryEscape(unit), nil); resp.StatusCode != 403 {
		t.Errorf("a viewer's unit page: %d, want 403", resp.StatusCode)
	}

	for _, c := range []struct {
		name   string
		b      *browser
		path   string
		form   url.Values
		status int
		shows  string
	}{
		{"reset, forged", admin, "/units/reset", url.Values{"csrf": {"forged"}, "unit": {unit}, "confirm": {"1"}}, 403, "csrf:"},
		{"reset, not confirmed", admin, "/units/reset", url.Values{"csrf": {unitTok}, "unit": {unit}}, 400, `id="reset-error" role="alert">confirm: tick the box`},
		{"reset by an analyst", ana, "/units/reset", url.Values{"csrf": {anaTok}, "unit": {unit}, "confirm": {"1"}}, 403, "needs role admin"},
		{"erase, forged", admin, "/units/erase", url.Values{"csrf": {"forged"}, "unit": {unit}, "confirm": {unit}}, 403, "csrf:"},
		{"erase, wrong confirmation", admin, "/units/erase", url.Values{"csrf": {unitTok}, "unit": {unit}, "confirm": {"u-x"}}, 400, `id="erase-error" role="alert">confirm: type the unit`},
		{"erase by an analyst", ana, "/units/erase", url.Values{"csrf": {anaTok}, "unit": {unit}, "confirm": {unit}}, 403, "needs role admin"},
		{"erase, no unit", admin, "/units/erase", url.Values{"csrf": {unitTok}, "confirm": {unit}}, 400, "unit: is required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if resp := c.b.do(c.path, c.form); resp.StatusCode != c.status || !strings.Contains(c.b.last, c.shows) {
				t.Errorf("%d, want %d showing %q:\n%s", resp.StatusCode, c.status, c.shows, c.b.last)
			}
		})
	}
	var still consentHistory
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/units/"+unit+"/consent", nil, &still)
	var data store.UnitData
	ts.must(http.StatusOK, "GET", "/v1/units/"+unit+"/data", nil, &data)
	if len(still.History) != 2 || data.ResetAt != nil {
		t.Fatalf("a refused form changed the unit: consent %d versions, reset %v", len(still.History), data.ResetAt)
	}

	browse := chromium(t)
	if browse != nil {
		base := sessionProxy(t, ts.http.URL, ck)
		checkHistory("unit page in Chromium", string(browse("--dump-dom", base+"/units?unit="+url.QueryEscape(unit))))
		checkDecision("decision page in Chromium", string(browse("--dump-dom", base+"/journeys/home/decisions/"+d.ID)))
		screenshotSized(t, browse, base+"/units?unit="+url.QueryEscape(unit), "console-unit.png", 1200)
		screenshotSized(t, browse, base+"/journeys/home/decisions/"+d.ID, "console-decision.png", 1000)
	}

	if resp := admin.do("/units/reset", url.Values{"csrf": {unitTok}, "unit": {unit}, "confirm": {"1"}}); resp.StatusCode != 200 || !strings.Contains(admin.last, `id="reset-result"`) {
		t.Fatalf("reset: %d\n%s", resp.StatusCode, admin.last)
	}
	ts.must(http.StatusOK, "GET", "/v1/units/"+unit+"/data", nil, &data)
	if data.ResetAt == nil {
		t.Errorf("the console's reset left no profile_reset_at in the export")
	}
	// Rows are forwarded to ClickHouse (a forward cursor exists): the page says
	// the ClickHouse part is pending, as the API's answer does.
	if err := ts.db.SetForwardCursor(context.Background(), "clickhouse:exposures", 0); err != nil {
		t.Fatal(err)
	}
	if resp := admin.do("/units/erase", url.Values{"csrf": {unitTok}, "unit": {unit}, "confirm": {unit}}); resp.StatusCode != 200 {
		t.Fatalf("erase: %d\n%s", resp.StatusCode, admin.last)
	}
	if !strings.Contains(admin.last, `<p id="erase-clickhouse">ClickHouse: pending.`) {
		t.Errorf("the erasure page does not say the ClickHouse part is pending:\n%s", admin.last)
	}
	shown := regexp.MustCompile(`<code id="pseudonym">([^<]+)</code>`).FindStringSubmatch(admin.last)
	var again store.Erasure
	ts.must(http.StatusOK, "DELETE", "/v1/units/"+unit, nil, &again)
	if shown == nil || shown[1] != again.Pseudonym || !again.Already || again.ClickHouse != "pending" {
		t.Errorf("the page shows pseudonym %q; erasing again through the API says %+v", shown, again)
	}
	removed := regexp.MustCompile(`<tr data-removed="consents"><td>[^<]*</td><td>([0-9]+)</td>`).FindStringSubmatch(admin.last)
	if removed == nil || removed[1] != "2" {
		t.Errorf("consent versions deleted shown %q, want 2", removed)
	}
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/units/"+unit+"/consent", nil, &still)
	if len(still.History) != 0 {
		t.Errorf("after the erasure the API still has %d consent versions", len(still.History))
	}
}

// TestConsoleGeoStored: the geo form over stored events (a sum metric, the
// market a unit attribute, dates typed as days) shows what POST
// /v1/analyses/geo answers for the same request.
func TestConsoleGeoStored(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if _, err := ts.db.CreateMetric(ctx, "test", &experiment.Metric{Name: "sales", EventType: "purchase", Aggregation: experiment.Sum}); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	for mi, m := range []string{"m0", "m1", "m2", "m3", "m4", "t1"} {
		u := m + "-u"
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"city": m}})
		for d := range 14 {
			v := float64(10+2*mi+(d*(mi+1))%5) + float64(d)/4
			if m == "t1" {
				v = float64(15+(d*3)%5) + float64(d)/4 // inside the donors' range
				if d >= 10 {
					v += 6
				}
			}
			evs = append(evs, experiment.Event{EventID: fmt.Sprintf("%s-%d", m, d), Unit: u, Type: "purchase", TS: from.Add(time.Duration(d)*24*time.Hour + time.Hour), Value: v})
		}
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.UpsertUnitAttributes(ctx, attrs); err != nil {
		t.Fatal(err)
	}
	var res geoResult
	ts.must(http.StatusOK, "POST", "/v1/analyses/geo", map[string]any{"metric": "sales", "market": "city", "from": "2026-03-01T00:00:00Z", "to": "2026-03-15T00:00:00Z",
		"start": "2026-03-11T00:00:00Z", "treated": []string{"t1"}}, &res)
	b := newBrowser(t, ts)
	b.signIn(ts.admin)
	b.do("/analyses/geo", nil)
	resp := b.do("/analyses/geo", url.Values{"csrf": {b.csrf()}, "source": {"stored"}, "metric": {"sales"}, "market": {"city"}, "from": {"2026-03-01"}, "to": {"2026-03-15"},
		"period": {"day"}, "start": {"2026-03-11"}, "treated": {"t1"}, "method": {"scm"}})
	if resp.StatusCode != 200 {
		t.Fatalf("%d\n%s", resp.StatusCode, b.last)
	}
	m := regexp.MustCompile(`(?s)<tr data-unit="t1"[^>]*>(.*?)</tr>`).FindStringSubmatch(b.last)
	if m == nil {
		t.Fatalf("no fit of t1 on the page:\n%s", b.last)
	}
	var cells []string
	for _, c := range cellRE.FindAllStringSubmatch(m[1], -1) {
		cells = append(cells, htmlText(c[1]))
	}
	if len(cells) != 11 || res.NPeriods != 14 || res.NPre != 10 {
		t.Fatalf("cells %q; the API has %d periods, %d before the start", cells, res.NPeriods, res.NPre)
	}
	checkNumbers(t, "effect", cells[1], res.Average.Effect)
	checkNumbers(t, "cumulative", cells[2], res.Average.Cumulative)
	agreeP(t, "conformal p", cells[4], res.Average.Conformal.PValue)
	checkNumbers(t, "RMSPE", cells[9], res.Average.PreRMSPE)
	if !strings.Contains(b.last, "Effect on sales") {
		t.Errorf("the page does not name the metric")
	}
}

// TestReportSegmentsCUPEDps: for a metric with a pre-exposure covariate the
// report's segments view adds CUPEDps, with the numbers POST
// /v1/analyses/segments answers with "cuped": true (their method is checked
// against GrowthBook's vectors in analysis.TestPostStratifyGBStats).
func TestReportSegmentsCUPEDps(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	analyst := ts.key("ana", experiment.RoleAnalyst)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "spend", "event_type": "order", "aggregation": "sum",
		"covariate": map[string]any{"days": 14}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "cps", "variants": twoArms,
		"metrics": []map[string]any{{"name": "spend", "primary": true}}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/cps/start", nil, nil)
	t0 := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	for i := range 600 {
		u := fmt.Sprintf("c%04d", i)
		arm := []string{"control", "treatment"}[i%2]
		pre := float64((i*37)%23) + 1
		y := 0.8*pre + float64(i%5)
		if arm == "treatment" {
			y += 2
		}
		xs = append(xs, experiment.Exposure{Experiment: "cps", Unit: u, Variant: arm, TS: t0})
		evs = append(evs, experiment.Event{EventID: "pre" + u, Unit: u, Type: "order", TS: t0.Add(-48 * time.Hour), Value: pre},
			experiment.Event{EventID: "post" + u, Unit: u, Type: "order", TS: t0.Add(time.Hour), Value: y})
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"plan": []string{"free", "pro", "team"}[(i/2)%3]}})
	}
	if err := ts.db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.db.UpsertUnitAttributes(ctx, attrs); err != nil {
		t.Fatal(err)
	}
	var seg segmentsResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "cps", "metric": "spend", "attribute": "plan", "cuped": true}, &seg)
	c := seg.CUPEDPostStratified
	if c == nil || !c.CUPED || c.Adjusted != 3 || seg.Covariate != "spend over the 14 days before exposure" {
		t.Fatalf("cuped_post_stratified %+v, covariate %q", c, seg.Covariate)
	}
	_, page := ts.do("GET", "/v1/experiments/cps/report.html", analyst, nil)
	m := regexp.MustCompile(`With CUPED \(CUPEDps\): ([^<]*?), each segment regression-adjusted on ([^<.]*)\.`).FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("the report has no CUPEDps sentence")
	}
	checkNumbers(t, "report CUPEDps", m[1], c.Absolute.Estimate, c.Absolute.CILow, c.Absolute.CIHigh)
	if m[2] != seg.Covariate {
		t.Errorf("report covariate %q, API %q", m[2], seg.Covariate)
	}
	// The pre-period explains most of the variance: narrower than post-stratification alone.
	if c.Absolute.SE >= seg.PostStratified.SE {
		t.Errorf("CUPEDps SE %v not below the post-stratified %v", c.Absolute.SE, seg.PostStratified.SE)
	}
}
