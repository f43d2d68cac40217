package api

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// healthCell is the text of the cell of class class in the row
// data-check="check" of the cohort-health table of version ver.
func healthCell(page string, ver int, check, class string) string {
	tab := regexp.MustCompile(`(?s)<table class="list cohort-health" data-version="` + fmt.Sprint(ver) + `">.*?</table>`).FindString(page)
	row := regexp.MustCompile(`(?s)<tr data-check="` + check + `"[^>]*>.*?</tr>`).FindString(tab)
	m := regexp.MustCompile(`<td class="n ` + class + `">([^<]*)</td>`).FindStringSubmatch(row)
	if m == nil {
		return ""
	}
	return htmlText(m[1])
}

// TestConsoleHealthInChromium: rendered by Chromium, the console's experiment
// page shows the report's health section with the numbers of GET
// /v1/experiments/KEY/health and …/overlaps, and the holdouts page each
// cohort's health with those of GET /v1/holdouts/NAME/health; a viewer's
// holdouts page shows the share from the DP release's noised counts, the age,
// and none of the exact counts (contamination, days, the sequential check).
func TestConsoleHealthInChromium(t *testing.T) {
	browse := chromium(t)
	if browse == nil {
		t.Skip("chromium not installed (apt-get install chromium; LIFT_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	ts := healthFixture(t)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)
	var h results.Health
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/checkout/health", nil, &h)
	var o results.Overlaps
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/checkout/overlaps", nil, &o)
	var hh results.HoldoutHealth
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/holdouts/global/health", nil, &hh)

	base := sessionProxy(t, ts.http.URL, newBrowser(t, ts).signIn(analyst))
	dom := string(browse("--dump-dom", base+"/experiments/checkout"))
	if !strings.Contains(dom, `<h2 id="health">Health</h2>`) {
		t.Fatalf("the analyst's experiment page has no health section:\n%s", dom)
	}
	if got := cellOf(t, dom, "health-srm", `data-check="sequential-srm"`, "p"); !shows(got, h.SequentialSRM.PValue) {
		t.Errorf("sequential SRM p: the page shows %q, the API %v", got, h.SequentialSRM.PValue)
	}
	if got := cellOf(t, dom, "health-imbalance", `data-imbalance="revenue"`, "p"); !shows(got, h.Imbalance[0].PValue) {
		t.Errorf("imbalance p: the page shows %q, the API %v", got, h.Imbalance[0].PValue)
	}
	in := o.Overlaps[0].Interactions[0]
	if got := cellOf(t, dom, "health-overlaps", `data-overlap="banner"`, "estimate"); !shows(got, in.Estimate, in.CILow, in.CIHigh) {
		t.Errorf("interaction: the page shows %q, the API %v [%v, %v]", got, in.Estimate, in.CILow, in.CIHigh)
	}
	screenshotSized(t, browse, base+"/experiments/checkout", "console-health-experiment-analyst.png", 3000)

	dom = string(browse("--dump-dom", base+"/holdouts"))
	for _, c := range []struct {
		check, class string
		want         []float64
	}{
		{"share", "share", []float64{100 * hh.Share}},
		{"sequential-srm", "p", []float64{hh.SequentialSRM.PValue}},
		{"drift", "p", []float64{hh.Drift.PValue}},
		{"contamination", "units", []float64{float64(hh.Contaminated)}},
		{"age", "age", []float64{hh.AgeDays}},
	} {
		if got := healthCell(dom, hh.Version, c.check, c.class); !shownAs(got, c.want...) {
			t.Errorf("holdout %s: the page shows %q, the API %v", c.check, got, c.want)
		}
	}
	for _, d := range hh.Days {
		if !regexp.MustCompile(`<tr data-date="` + d.Date + `"><td>[^<]*</td><td class="n">` + fmt.Sprint(d.Holdout) + `</td><td class="n">` + fmt.Sprint(d.Exposed) + `</td>`).MatchString(dom) {
			t.Errorf("the holdouts page lacks the API's day %+v", d)
		}
	}
	screenshotSized(t, browse, base+"/holdouts", "console-health-holdouts-analyst.png", 1800)

	ts.must(http.StatusOK, "PUT", "/v1/holdouts/global/privacy", map[string]any{"epsilon": 2, "release_epsilon": 1}, nil)
	vbase := sessionProxy(t, ts.http.URL, newBrowser(t, ts).signIn(viewer))
	dom = string(browse("--dump-dom", vbase+"/holdouts"))
	var dp PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/holdouts/global/results/private", nil, &dp)
	hu, xu := dp.Exposures["holdout"], dp.Exposures["exposed"]
	if got := healthCell(dom, hh.Version, "share", "share"); !shownAs(got, 100*float64(hu)/float64(hu+xu)) {
		t.Errorf("viewer: the share %q is not the DP release's %d/%d", got, hu, hu+xu)
	}
	if got := healthCell(dom, hh.Version, "age", "age"); got == "" {
		t.Errorf("viewer: no cohort age")
	}
	for _, check := range []string{"sequential-srm", "drift", "contamination"} {
		if strings.Contains(dom, `data-check="`+check+`"`) {
			t.Errorf("viewer: the holdouts page shows the exact check %s", check)
		}
	}
	if strings.Contains(dom, "cohort-days") {
		t.Errorf("viewer: the holdouts page shows the daily counts")
	}
	if !strings.Contains(htmlText(dom), "noised counts") {
		t.Errorf("viewer: the page does not say where its share comes from")
	}
	screenshotSized(t, browse, vbase+"/holdouts", "console-health-holdouts-viewer.png", 1400)
}
