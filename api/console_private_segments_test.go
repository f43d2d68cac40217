package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// setupPromoSegments registers experiment promo (50/50, primary metric buyers,
// binary) with 1,201 exposed units: 1,200 in country US and one in IS (a
// segment partition selection suppresses), each on device ios or web; and a
// privacy budget (ε 4, δ given, ε 1 per release).
func setupPromoSegments(t *testing.T, ts *tserver, delta float64) {
	t.Helper()
	ctx := context.Background()
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "buyers", "event_type": "order", "aggregation": "binary"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "promo", "variants": twoArms, "metrics": []map[string]any{{"name": "buyers", "primary": true}}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/promo/start", nil, nil)
	ts.must(http.StatusOK, "PUT", "/v1/experiments/promo/privacy", map[string]any{"epsilon": 4, "delta": delta, "release_epsilon": 1}, nil)
	start := time.Now().UTC().Add(-time.Hour)
	var xs []experiment.Exposure
	var evs []experiment.Event
	var attrs []store.UnitAttributes
	for i := range 1201 {
		u := fmt.Sprintf("u%04d", i)
		arm := []string{"control", "treatment"}[i%2]
		country := "US"
		if i == 1200 {
			country = "IS"
		}
		xs = append(xs, experiment.Exposure{Experiment: "promo", Unit: u, Variant: arm, TS: start})
		if i%3 != 0 || arm == "treatment" && i%5 == 0 {
			evs = append(evs, experiment.Event{EventID: u, Unit: u, Type: "order", TS: start.Add(time.Minute), Value: 1})
		}
		attrs = append(attrs, store.UnitAttributes{Unit: u, Attributes: map[string]any{"country": country, "device": []string{"ios", "web"}[i/2%2]}})
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
}

var privSegRowRE = regexp.MustCompile(`(?s)<tr data-private-segment="([^"]+)"[^>]*>(.*?)</tr>`)

// privateSegmentRows are the rows of a page's private segments table by
// segment, as the text of their cells.
func privateSegmentRows(dom string) map[string][]string {
	out := map[string][]string{}
	for _, m := range privSegRowRE.FindAllStringSubmatch(dom, -1) {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
			cells = append(cells, htmlText(tagRE.ReplaceAllString(c[1], "")))
		}
		out[htmlText(m[1])] = cells
	}
	return out
}

// checkPrivateSegments compares a page's private segments with the API's
// private breakdown (the same release): the same segments, every number
// equal to the shown precision; the suppressed segment absent and said as
// such; no exact number of the exact breakdown (its effects' intervals), and
// no exact view.
func checkPrivateSegments(t *testing.T, what, dom string, api *PrivateSegmentsResult, exact *segmentsResult) {
	t.Helper()
	rows := privateSegmentRows(dom)
	if len(rows) != len(api.Segments) || len(rows) == 0 {
		t.Errorf("%s: private segments %v, the API releases %d", what, rows, len(api.Segments))
	}
	for _, s := range api.Segments {
		cells, ok := rows[s.Name]
		if !ok || len(cells) != 8 {
			t.Errorf("%s: segment %s: cells %q", what, s.Name, cells)
			continue
		}
		where := what + " " + s.Name
		if cells[1] != strconv.FormatInt(s.N, 10) {
			t.Errorf("%s: noised units %s, the API's %d", where, cells[1], s.N)
		}
		for i, u := range s.Release.Units {
			if cells[2+i] != strconv.FormatInt(u.N, 10) {
				t.Errorf("%s: units of %s %s, the API's %d", where, u.Variant, cells[2+i], u.N)
			}
		}
		m := s.Release.Metrics[0]
		checkNumbers(t, where+" control mean", cells[4], m.Variants[0].Mean)
		checkNumbers(t, where+" treated mean", cells[5], m.Variants[1].Mean)
		a := m.Comparisons[0].Absolute
		checkNumbers(t, where+" effect", cells[6], a.Estimate, a.CILow, a.CIHigh)
		agreeP(t, where+" p", cells[7], a.PValue)
	}
	if _, ok := rows["IS"]; ok {
		t.Errorf("%s: the one-unit segment IS is shown", what)
	}
	if !strings.Contains(htmlText(dom), "smaller segments are suppressed, and neither they nor their number are shown") {
		t.Errorf("%s: the page does not say that small segments are suppressed", what)
	}
	if strings.Contains(dom, `id="segments-table"`) || len(viewRows(dom)) != 0 {
		t.Errorf("%s: the page shows the exact views", what)
	}
	for _, s := range exact.Segments {
		e := s.Absolute
		ci := fmt.Sprintf("%s [%s, %s]", fmtNumTest(e.Estimate), fmtNumTest(e.CILow), fmtNumTest(e.CIHigh))
		if strings.Contains(dom, ci) {
			t.Errorf("%s: the page shows segment %s's exact effect %s", what, s.Segment, ci)
		}
	}
}

// fmtNumTest prints a number as the reports do (4 decimals, or 4 significant
// digits when tiny or huge).
func fmtNumTest(v float64) string {
	if v != 0 && (v >= 1e6 || v <= -1e6 || v < 1e-3 && v > -1e-3) {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

// TestPrivateSegmentsReport: a viewer's report and a share link's show the
// segments through the DP path only, with the numbers of the API's private
// breakdown of the period; an analyst's report keeps the exact view.
func TestPrivateSegmentsReport(t *testing.T) {
	ts := newTestServer(t)
	setupPromoSegments(t, ts, 2e-5)
	viewer := ts.key("vic", experiment.RoleViewer)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	var exact segmentsResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country"}, &exact)

	status, page := ts.do("GET", "/v1/experiments/promo/report.html", viewer, nil)
	if status != 200 {
		t.Fatalf("viewer's report: %d %s", status, page)
	}
	var api PrivateSegmentsResult
	ts.mustAs(viewer, http.StatusOK, "POST", "/v1/analyses/segments/private", map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country"}, &api)
	checkPrivateSegments(t, "viewer's report", string(page), &api, &exact)
	if api.Private.EpsilonSpent != 2 {
		t.Errorf("ε spent %g, want 2: the report's release and the breakdown's, which the API's request reuses", api.Private.EpsilonSpent)
	}
	var sh shareOut
	ts.must(http.StatusCreated, "POST", "/v1/experiments/promo/shares", map[string]any{}, &sh)
	_, shared := ts.do("GET", "/shared/"+sh.Token+"/report.html", "", nil)
	checkPrivateSegments(t, "shared report", string(shared), &api, &exact)
	// Another attribute by ?segment=, on a share link too.
	_, byDevice := ts.do("GET", "/shared/"+sh.Token+"/report.html?segment=device", "", nil)
	var dev PrivateSegmentsResult
	ts.mustAs("", http.StatusOK, "GET", "/shared/"+sh.Token+"/segments.json?metric=buyers&attribute=device", nil, &dev)
	if rows := privateSegmentRows(string(byDevice)); len(rows) != 2 || len(dev.Segments) != 2 {
		t.Errorf("by device: %v, the API's %+v", rows, dev.Segments)
	}
	r, err := BuildReport(context.Background(), ts.db, ts.srv.results, "promo", ReportOptions{Private: true, Who: "vic"})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := r.Markdown(&md, ""); err != nil {
		t.Fatal(err)
	}
	us := api.Segments[0]
	if want := fmt.Sprintf("## Segments of buyers by country (differentially private)\n\n| segment |"); !strings.Contains(md.String(), want) ||
		!strings.Contains(md.String(), fmt.Sprintf("| US | %d | %d | %d |", us.N, us.Release.Units[0].N, us.Release.Units[1].N)) {
		t.Errorf("Markdown lacks the private segments:\n%s", md.String())
	}
	// The console's picker offers the attributes.
	vb := newBrowser(t, ts)
	vb.signIn(viewer)
	vb.do("/experiments/promo?segment=device", nil)
	if !strings.Contains(vb.last, `<option selected>device</option>`) || len(privateSegmentRows(vb.last)) != 2 {
		t.Errorf("the viewer's page by device: %v", privateSegmentRows(vb.last))
	}
	_, analystPage := ts.do("GET", "/v1/experiments/promo/report.html", analyst, nil)
	if strings.Contains(string(analystPage), "data-private-segment") || !strings.Contains(string(analystPage), `id="segments-table"`) {
		t.Errorf("the analyst's report should have the exact segments only")
	}
}

// TestPrivateSegmentsDeltaZero: with a budget of δ = 0 the private breakdown
// is refused naming the budget's field and where to set it (not "delta", a
// field no request has), nothing is spent, and the report says why it has no
// breakdown.
func TestPrivateSegmentsDeltaZero(t *testing.T) {
	ts := newTestServer(t)
	setupPromoSegments(t, ts, 0)
	viewer := ts.key("vic", experiment.RoleViewer)
	var sh shareOut
	ts.must(http.StatusCreated, "POST", "/v1/experiments/promo/shares", map[string]any{}, &sh)
	for _, c := range []struct {
		name, method, path, key string
		body                    any
	}{
		{"API", "POST", "/v1/analyses/segments/private", viewer, map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country"}},
		{"share link", "GET", "/shared/" + sh.Token + "/segments.json?metric=buyers&attribute=country", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, b := ts.do(c.method, c.path, c.key, c.body)
			e := errorOf(t, b)
			if status != http.StatusConflict || !strings.HasPrefix(e.Message, "privacy.delta: ") || !strings.Contains(e.Message, "PUT /v1/experiments/promo/privacy") {
				t.Errorf("%d %+v, want 409 naming privacy.delta and where to set it", status, e)
			}
		})
	}
	var acct struct {
		EpsilonSpent float64 `json:"epsilon_spent"`
	}
	ts.must(http.StatusOK, "GET", "/v1/experiments/promo/privacy", nil, &acct)
	if acct.EpsilonSpent != 0 {
		t.Errorf("a refused breakdown spent ε %g", acct.EpsilonSpent)
	}
	_, page := ts.do("GET", "/v1/experiments/promo/report.html", viewer, nil)
	if !strings.Contains(htmlText(string(page)), "There is no private segment breakdown of buyers by country: privacy.delta: the privacy budget of experiment \"promo\" has δ = 0") {
		t.Errorf("the report does not say why it has no private segments")
	}
}

// TestPrivateSegmentsInChromium: the console's experiment page of a viewer
// and the shared report, rendered by Debian's headless Chromium, show the DP
// segments with the API's private numbers, say that small segments are
// suppressed, and show no exact number. Screenshots are saved.
func TestPrivateSegmentsInChromium(t *testing.T) {
	browse := chromium(t)
	if browse == nil {
		t.Skip("chromium not installed (apt-get install chromium; LIFT_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	ts := newTestServer(t)
	setupPromoSegments(t, ts, 2e-5)
	viewer := ts.key("vic", experiment.RoleViewer)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	var exact segmentsResult
	ts.mustAs(analyst, http.StatusOK, "POST", "/v1/analyses/segments", map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country"}, &exact)
	vbase := sessionProxy(t, ts.http.URL, newBrowser(t, ts).signIn(viewer))
	dom := string(browse("--dump-dom", vbase+"/experiments/promo"))
	var api PrivateSegmentsResult
	ts.mustAs(viewer, http.StatusOK, "POST", "/v1/analyses/segments/private", map[string]any{"experiment": "promo", "metric": "buyers", "attribute": "country"}, &api)
	checkPrivateSegments(t, "viewer's console page", dom, &api, &exact)
	screenshotSized(t, browse, vbase+"/experiments/promo", "console-private-segments-viewer.png", 2200)

	var sh shareOut
	ts.must(http.StatusCreated, "POST", "/v1/experiments/promo/shares", map[string]any{}, &sh)
	dom = string(browse("--dump-dom", ts.http.URL+"/shared/"+sh.Token+"/report.html"))
	checkPrivateSegments(t, "shared report", dom, &api, &exact)
	screenshotSized(t, browse, ts.http.URL+"/shared/"+sh.Token+"/report.html", "shared-private-segments.png", 2000)
}
