package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// setupConsolePages is setupConsole plus the holdout "global" of setupHoldout
// (experiment promo) with a privacy budget, so that every page has data.
func setupConsolePages(t *testing.T, ts *tserver) {
	t.Helper()
	setupConsole(t, ts)
	setupHoldout(t, ts)
	ts.must(http.StatusOK, "PUT", "/v1/holdouts/global/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)
}

var verdictRE = regexp.MustCompile(`(?s)<tr data-key="([^"]+)">.*?<span class="verdict ([a-z]+)" title="[^"]*">([^<]+)</span>`)

// TestConsoleVerdictBadge: the list's badge is the verdict the experiment
// page's results table gives its primary metric, for the key's role (the
// viewer's from the DP release).
func TestConsoleVerdictBadge(t *testing.T) {
	ts := newJobServer(t)
	setupConsolePages(t, ts)
	for _, c := range []struct {
		who  string
		role experiment.Role
	}{{"analyst", experiment.RoleAnalyst}, {"viewer", experiment.RoleViewer}} {
		t.Run(c.who, func(t *testing.T) {
			b := newBrowser(t, ts)
			b.signIn(ts.key(c.who, c.role))
			list := func() map[string]string {
				if resp := b.do("/", nil); resp.StatusCode != 200 {
					t.Fatalf("%d\n%s", resp.StatusCode, b.last)
				}
				badges := map[string]string{}
				for _, m := range verdictRE.FindAllStringSubmatch(b.last, -1) {
					badges[m[1]] = m[3]
				}
				if len(badges) != 2 {
					t.Fatalf("badges %v, want checkout and promo", badges)
				}
				return badges
			}
			// Exact keys read the stored results: none before the pages store them.
			if c.who == "analyst" {
				if bs := list(); bs["checkout"] != "not computed" || bs["promo"] != "not computed" {
					t.Errorf("before any results are stored: %v", bs)
				}
			}
			b.do("/experiments/checkout", nil)
			// The primary metric (revenue) has one comparison: its verdict cell.
			m := regexp.MustCompile(`(?s)<tr class="primary[^"]*"[^>]*data-metric="revenue" data-variant="treatment">.*?<td class="verdict">([^<]*)</td>`).FindStringSubmatch(b.last)
			if m == nil {
				t.Fatalf("no primary row on the experiment page:\n%s", b.last)
			}
			if strings.Contains(b.last, `id="srm-alarm"`) {
				m[1] = "SRM alarm"
			}
			b.do("/experiments/promo", nil)
			promoPage := b.last
			badges := list() // after both pages stored their results
			if badges["checkout"] != m[1] {
				t.Errorf("the list says %q, the experiment page %q", badges["checkout"], m[1])
			}
			// promo has no primary metric: its one metric, converted, decides.
			cells := regexp.MustCompile(`<td class="verdict">([^<]*)</td>`).FindAllStringSubmatch(promoPage, -1)
			want := "no result"
			if len(cells) == 1 {
				want = cells[0][1]
			}
			if strings.Contains(promoPage, `id="srm-alarm"`) { // the page's alarm comes before its rows
				want = "SRM alarm"
			}
			if badges["promo"] != want {
				t.Errorf("promo: the list says %q, the experiment page %q", badges["promo"], want)
			}
		})
	}
}

// TestConsoleProgress: the experiment page's power progress is the API's
// (the "progress" of GET /v1/experiments/KEY/results) for an analyst; a
// viewer's is computed from the DP release and shows no exact count.
func TestConsoleProgress(t *testing.T) {
	ts := newJobServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum",
		"bounds": map[string]float64{"lower": 0, "upper": 50}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{
		"key": "button", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"metrics": []map[string]any{{"name": "revenue", "primary": true}}, "analysis": map[string]any{"mde": 0.05},
	}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/button/start", nil, nil)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for i := range 600 {
		u := fmt.Sprintf("u%d", i)
		xs = append(xs, experiment.Exposure{Experiment: "button", Unit: u, Variant: []string{"control", "treatment"}[i%2], TS: t0})
		evs = append(evs, experiment.Event{EventID: "e" + u, Unit: u, Type: "purchase", TS: t0.Add(time.Hour), Value: float64(5 + i%13)})
	}
	if err := ts.db.LogExposures(context.Background(), xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.db.IngestEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusOK, "PUT", "/v1/experiments/button/privacy", map[string]any{"epsilon": 2, "release_epsilon": 0.5}, nil)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	var api experimentResultsAnswer
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/experiments/button/results", nil, &api)
	if api.Progress == nil || api.Progress.Progress == nil {
		t.Fatalf("the API gives no progress: %+v", api.Progress)
	}
	p := api.Progress.Progress

	b := newBrowser(t, ts)
	b.signIn(analyst)
	if resp := b.do("/experiments/button", nil); resp.StatusCode != 200 {
		t.Fatalf("%d\n%s", resp.StatusCode, b.last)
	}
	if !strings.Contains(b.last, `<span id="required">`+fmt.Sprint(p.RequiredPerArm)+`</span> units per arm`) {
		t.Errorf("the page lacks the API's required_per_arm %d:\n%s", p.RequiredPerArm, b.last)
	}
	for name, a := range p.Arms {
		row := regexp.MustCompile(`<tr data-arm="` + name + `"><td>[^<]*</td><td class="n">(\d+)</td>`).FindStringSubmatch(b.last)
		if row == nil || row[1] != fmt.Sprint(a.N) {
			t.Errorf("arm %s: the page shows %v, the API n = %d", name, row, a.N)
		}
	}

	v := newBrowser(t, ts)
	v.signIn(ts.key("exec", experiment.RoleViewer))
	if resp := v.do("/experiments/button", nil); resp.StatusCode != 200 {
		t.Fatalf("viewer: %d\n%s", resp.StatusCode, v.last)
	}
	sec := regexp.MustCompile(`(?s)<h2 id="progress-h">.*?</section>`).FindString(v.last)
	if !strings.Contains(sec, "differentially private release") {
		t.Errorf("the viewer's progress does not say it is from the DP release:\n%s", sec)
	}
	// Its counts are the DP release's (the period's, the one the viewer's
	// page read), not the exact 300 per arm.
	var dp PrivateResults
	ts.mustAs(ts.key("exec2", experiment.RoleViewer), http.StatusOK, "GET", "/v1/experiments/button/results/private", nil, &dp)
	for name, n := range dp.Exposures {
		row := regexp.MustCompile(`<tr data-arm="` + name + `"><td>[^<]*</td><td class="n">(\d+)</td>`).FindStringSubmatch(sec)
		if row == nil || row[1] != fmt.Sprint(n) {
			t.Errorf("viewer, arm %s: the page shows %v, the DP release n = %d (exact %d)", name, row, n, p.Arms[name].N)
		}
	}
}

// TestConsolePages: each page for each role: status, the API's numbers, and
// for viewers nothing exact.
func TestConsolePages(t *testing.T) {
	ts := newJobServer(t)
	setupConsolePages(t, ts)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	viewer := ts.key("exec", experiment.RoleViewer)
	ab, vb := newBrowser(t, ts), newBrowser(t, ts)
	ab.signIn(analyst)
	vb.signIn(viewer)

	// Holdouts: the analyst's cohort is GET /v1/holdouts/global/results.
	var exact results.Results
	ts.mustAs(analyst, http.StatusOK, "GET", "/v1/holdouts/global/results?version=1", nil, &exact)
	if resp := ab.do("/holdouts", nil); resp.StatusCode != 200 {
		t.Fatalf("holdouts: %d\n%s", resp.StatusCode, ab.last)
	}
	cmp := exact.Metrics[0].Comparisons[0]
	wantAbs := fmtEffect(cmp.Absolute.Estimate, cmp.Absolute.CILow, cmp.Absolute.CIHigh)
	row := regexp.MustCompile(`<tr data-metric="converted">.*?<td class="n abs">([^<]*)</td><td class="n rel">([^<]*)</td><td class="n p">([^<]*)</td>`).FindStringSubmatch(ab.last)
	if row == nil || !shownAs(htmlText(row[1]), cmp.Absolute.Estimate, cmp.Absolute.CILow, cmp.Absolute.CIHigh) || !shownAs(row[3], cmp.Absolute.PValue) {
		t.Errorf("the analyst's cohort row %q, want absolute %q, p %s", row, wantAbs, consoleNum(cmp.Absolute.PValue))
	}
	if !strings.Contains(ab.last, fmt.Sprintf("holdout %d · exposed %d", exact.Exposures["holdout"], exact.Exposures["exposed"])) {
		t.Errorf("the analyst's page lacks the API's units %v", exact.Exposures)
	}
	if !strings.Contains(ab.last, "<svg") {
		t.Errorf("the holdouts page has no chart")
	}
	// The viewer's is the version's DP release, the API's private results.
	if resp := vb.do("/holdouts", nil); resp.StatusCode != 200 {
		t.Fatalf("viewer holdouts: %d\n%s", resp.StatusCode, vb.last)
	}
	var dp PrivateResults
	ts.mustAs(viewer, http.StatusOK, "GET", "/v1/holdouts/global/results/private?version=1", nil, &dp)
	dc := dp.Metrics[0].Comparisons[0]
	row = regexp.MustCompile(`<tr data-metric="converted">.*?<td class="n abs">([^<]*)</td>`).FindStringSubmatch(vb.last)
	if row == nil || !shownAs(htmlText(row[1]), dc.Absolute.Estimate, dc.Absolute.CILow, dc.Absolute.CIHigh) {
		t.Errorf("the viewer's cohort row %q, want the release's %q", row, fmtEffect(dc.Absolute.Estimate, dc.Absolute.CILow, dc.Absolute.CIHigh))
	}
	for _, x := range []string{"[" + consoleNum(cmp.Absolute.CILow) + ", " + consoleNum(cmp.Absolute.CIHigh) + "]", fmt.Sprintf("holdout %d · exposed %d<", exact.Exposures["holdout"], exact.Exposures["exposed"])} {
		if strings.Contains(htmlText(vb.last), x) {
			t.Errorf("the viewer's holdouts page shows the exact %q", x)
		}
	}

	// Privacy: every scope's account, as GET …/privacy gives it.
	for _, who := range []*browser{ab, vb} {
		if resp := who.do("/privacy", nil); resp.StatusCode != 200 {
			t.Fatalf("privacy: %d\n%s", resp.StatusCode, who.last)
		}
		for _, path := range []string{"/v1/experiments/checkout/privacy", "/v1/holdouts/global/privacy"} {
			var a experiment.PrivacyAccount
			ts.mustAs(viewer, http.StatusOK, "GET", path, nil, &a)
			sec := regexp.MustCompile(`(?s)<section class="card scope" data-scope="` + regexp.QuoteMeta(a.Scope) + `".*?</section>`).FindString(who.last)
			want := fmt.Sprintf("Budget ε = %v · spent ε = %v · left ε = %v · ε per release %v", a.Budget.Epsilon, a.EpsilonSpent, a.EpsilonLeft, a.Budget.ReleaseEpsilon)
			if !strings.Contains(sec, want) {
				t.Errorf("%s: the privacy page lacks %q:\n%s", a.Scope, want, sec)
			}
			if n := strings.Count(sec, "<tr><td>"); n != len(a.Entries) {
				t.Errorf("%s: %d ledger rows, the API %d", a.Scope, n, len(a.Entries))
			}
			for _, e := range a.Entries {
				if !strings.Contains(sec, "<td>"+e.When.UTC().Format("2006-01-02 15:04 MST")+"</td><td>"+e.Who+"</td>") {
					t.Errorf("%s: no row for %s at %s", a.Scope, e.Who, e.When)
				}
			}
		}
		if !strings.Contains(who.last, "experiment promo") || !strings.Contains(who.last, `id="no-budget"`) {
			t.Errorf("the privacy page does not list promo as without a budget")
		}
	}

	// Journeys and analyses are exact: analysts only.
	for _, path := range []string{"/journeys", "/analyses"} {
		if resp := vb.do(path, nil); resp.StatusCode != 403 || !strings.Contains(vb.last, "needs role analyst") {
			t.Errorf("viewer %s: %d, want 403", path, resp.StatusCode)
		}
		if resp := ab.do(path, nil); resp.StatusCode != 200 {
			t.Errorf("analyst %s: %d\n%s", path, resp.StatusCode, ab.last)
		}
	}
	// The navigation lists what the role may open.
	vb.do("/", nil)
	for _, c := range []struct {
		b    *browser
		has  []string
		lack []string
	}{
		{vb, []string{`href="/holdouts"`, `href="/privacy"`, `href="/summaries"`}, []string{`href="/journeys"`, `href="/analyses"`}},
		{ab, []string{`href="/holdouts"`, `href="/journeys"`, `href="/analyses"`, `href="/privacy"`}, nil},
	} {
		c.b.do("/", nil)
		nav := regexp.MustCompile(`(?s)<nav aria-label="Sections">.*?</nav>`).FindString(c.b.last)
		for _, x := range c.has {
			if !strings.Contains(nav, x) {
				t.Errorf("the navigation lacks %s:\n%s", x, nav)
			}
		}
		for _, x := range c.lack {
			if strings.Contains(nav, x) {
				t.Errorf("the navigation offers %s to a viewer", x)
			}
		}
	}
}

// TestConsoleJourneys: the journeys page shows the comparison's daily
// guardrails (GET /v1/journeys/KEY/comparison) and the model card.
func TestConsoleJourneys(t *testing.T) {
	ts := newJourneyServer(t)
	ts.must(http.StatusCreated, "POST", "/v1/journeys", homeJourney, nil)
	for i := range 40 {
		ts.must(http.StatusOK, "POST", "/v1/journeys/home/decide", map[string]any{"unit": fmt.Sprintf("user-%d", i)}, nil)
	}
	var cmp struct {
		Days []struct {
			Day          time.Time
			Decisions    int64
			FallbackRate float64 `json:"fallback_rate"`
			P50          float64 `json:"latency_p50_ms"`
			P95          float64 `json:"latency_p95_ms"`
			P99          float64 `json:"latency_p99_ms"`
			Gini         float64 `json:"gini"`
		} `json:"days"`
	}
	ts.must(http.StatusOK, "GET", "/v1/journeys/home/comparison", nil, &cmp)
	if len(cmp.Days) == 0 {
		t.Fatal("the API's comparison has no day")
	}
	b := newBrowser(t, ts)
	b.signIn(ts.admin)
	if resp := b.do("/journeys", nil); resp.StatusCode != 200 {
		t.Fatalf("%d\n%s", resp.StatusCode, b.last)
	}
	for _, d := range cmp.Days {
		want := fmt.Sprintf(`<td class="n p50">%s</td><td class="n p95">%s</td><td class="n p99">%s</td><td class="n gini">%s</td>`, consoleNum(d.P50), consoleNum(d.P95), consoleNum(d.P99), consoleNum(d.Gini))
		if !strings.Contains(b.last, want) || !strings.Contains(b.last, fmt.Sprintf(`<td class="n">%d</td>`, d.Decisions)) {
			t.Errorf("day %s: the page lacks %s", d.Day.Format("2006-01-02"), want)
		}
	}
	var card struct {
		IntendedUse string   `json:"intended_use"`
		NotFor      []string `json:"not_for"`
	}
	ts.must(http.StatusOK, "GET", "/v1/models/shop/card", nil, &card)
	if !strings.Contains(b.last, "<dt>Intended use</dt><dd>"+card.IntendedUse+"</dd>") || len(card.NotFor) == 0 || !strings.Contains(htmlText(b.last), "<li>"+card.NotFor[0]+"</li>") {
		t.Errorf("the page lacks the model card:\n%s", b.last)
	}
}

// TestConsoleAnalyses: the forms run the API's difference-in-differences and
// uplift and show their numbers and charts; errors are the API's messages
// next to the field; a forged form is refused.
func TestConsoleAnalyses(t *testing.T) {
	ts := newJobServer(t)
	setupConsole(t, ts)
	b := newBrowser(t, ts)
	b.signIn(ts.key("ana", experiment.RoleAnalyst))
	b.do("/analyses", nil)
	tok := b.csrf()
	did := url.Values{"csrf": {tok}, "kind": {"did"}, "did_metric": {"revenue"}, "treated": {"checkout/treatment"}, "control": {"checkout/control"},
		"rollout": {"2026-03-01T00:00:00Z"}, "from": {"2026-02-27"}, "to": {"2026-03-03"}, "period": {"day"}}
	body := map[string]any{"metric": "revenue", "treated": map[string]any{"experiment": "checkout", "variant": "treatment"}, "control": map[string]any{"experiment": "checkout", "variant": "control"},
		"rollout": "2026-03-01T00:00:00Z", "from": "2026-02-27T00:00:00Z", "to": "2026-03-03T00:00:00Z", "period": "day"}
	status, raw := ts.do("POST", "/v1/analyses/did", ts.admin, body)
	var api didResult
	if status != 200 || json.Unmarshal(raw, &api) != nil {
		t.Fatalf("the API's did: %d %s", status, raw)
	}
	if resp := b.do("/analyses", did); resp.StatusCode != 200 {
		t.Fatalf("did form: %d\n%s", resp.StatusCode, b.last)
	}
	want := fmt.Sprintf("Effect %s [%s, %s] · SE %s · p = %s", consoleNum(api.Estimate), consoleNum(api.CILow), consoleNum(api.CIHigh), consoleNum(api.SE), consoleNum(api.PValue))
	if !strings.Contains(htmlText(b.last), want) || !strings.Contains(b.last, `data-chart="trends"><svg`) || strings.Contains(b.last, "<?xml") {
		t.Errorf("the page lacks the API's %q or its chart:\n%s", want, b.last)
	}
	if math.IsNaN(api.Estimate) {
		t.Fatal("NaN estimate")
	}
	for _, c := range []struct {
		name, field, value, formField string
		apiField                      string // the API's field the message names
		body                          map[string]any
	}{
		{"bad from", "from", "yesterday", "from", "from", map[string]any{"from": "yesterday"}},
		{"unknown metric", "did_metric", "nope", "did_metric", "metric", map[string]any{"metric": "nope"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range did {
				f[k] = v
			}
			f.Set(c.field, c.value)
			resp := b.do("/analyses", f)
			bb := map[string]any{}
			for k, v := range body {
				bb[k] = v
			}
			for k, v := range c.body {
				bb[k] = v
			}
			st, raw := ts.do("POST", "/v1/analyses/did", ts.admin, bb)
			if resp.StatusCode != st || st < 400 {
				t.Errorf("status %d, the API's %d", resp.StatusCode, st)
			}
			msg := errorOf(t, raw).Message
			m := regexp.MustCompile(`<p class="error" id="` + c.formField + `-error" role="alert">([^<]*)</p>`).FindStringSubmatch(b.last)
			if m == nil || htmlText(m[1]) != msg || !strings.HasPrefix(msg, c.apiField) {
				t.Errorf("next to %s: %q, the API says %q", c.formField, m, msg)
			}
		})
	}
	f := url.Values{}
	for k, v := range did {
		f[k] = v
	}
	f.Set("csrf", "forged")
	if resp := b.do("/analyses", f); resp.StatusCode != 403 {
		t.Errorf("a forged form: %d, want 403", resp.StatusCode)
	}
}

var shownNumRE = regexp.MustCompile(`-?[0-9.]+(e[-+][0-9]+)?`)

// shownAs reports whether the numbers printed in s (consoleNum: 4
// significant digits) are want, each within half a unit of its 4th digit,
// or within 1e-9 of the largest |want| (an effect of zero recomputed
// differs in its last bits from one request to the next).
func shownAs(s string, want ...float64) bool {
	got := shownNumRE.FindAllString(s, -1)
	if len(got) != len(want) {
		return false
	}
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	for i, g := range got {
		x, err := strconv.ParseFloat(g, 64)
		if err != nil || math.Abs(x-want[i]) > max(5e-4*math.Abs(want[i]), 1e-9*scale) {
			return false
		}
	}
	return true
}
