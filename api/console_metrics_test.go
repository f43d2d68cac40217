package api

import (
	"bytes"
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
)

// fieldError is the message the page shows next to form field f, "" when none.
func fieldError(page, f string) string {
	m := regexp.MustCompile(`<p class="error" id="` + regexp.QuoteMeta(f) + `-error" role="alert">([^<]*)</p>`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// formOf reads the values a browser would submit from the page's form whose
// action is action: inputs (text and hidden), ticked checkboxes and the
// selected option of each select.
func formOf(t *testing.T, page, action string) url.Values {
	t.Helper()
	m := regexp.MustCompile(`(?s)<form method="post" action="` + regexp.QuoteMeta(action) + `"[^>]*>(.*?)</form>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form posting to %s:\n%s", action, page)
	}
	body := m[1]
	v := url.Values{}
	attr := func(tag, name string) (string, bool) {
		a := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if a == nil {
			return "", false
		}
		return htmlText(a[1]), true
	}
	for _, tag := range regexp.MustCompile(`<input[^>]*>`).FindAllString(body, -1) {
		name, _ := attr(tag, "name")
		typ, _ := attr(tag, "type")
		val, _ := attr(tag, "value")
		if name == "" || typ == "checkbox" && !strings.Contains(tag, " checked") {
			continue
		}
		v.Add(name, val)
	}
	for _, sel := range regexp.MustCompile(`(?s)<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>`).FindAllStringSubmatch(body, -1) {
		first, chosen := "", ""
		for i, o := range regexp.MustCompile(`<option([^>]*)>([^<]*)</option>`).FindAllStringSubmatch(sel[2], -1) {
			val, ok := attr(o[0], "value")
			if !ok {
				val = htmlText(o[2])
			}
			if i == 0 {
				first = val
			}
			if strings.Contains(o[1], " selected") {
				chosen = val
			}
		}
		if chosen == "" {
			chosen = first
		}
		v.Set(sel[1], chosen)
	}
	return v
}

// TestConsoleMetrics: the metrics page lists each metric's current version,
// status and the version each experiment pinned (flagging a newer one); a
// metric's page shows its versions, each beside the one before; analysts
// store a new version, deprecate and restore through the form, with the API's
// message next to the field and nothing written when it is refused; admins
// delete an unused metric, and a used one is refused naming its users, as the
// API does; viewers read only; every form checks the session's CSRF token.
func TestConsoleMetrics(t *testing.T) {
	ts := newTestServer(t)
	viewer := ts.key("vic", experiment.RoleViewer)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "description": "money in"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/metrics", map[string]any{"name": "orders", "event_type": "purchase", "aggregation": "count"}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "checkout", "variants": twoArms, "metrics": []string{"revenue"}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "later", "variants": twoArms, "metrics": []string{"revenue"}}, nil)
	ts.must(http.StatusOK, "PUT", "/v1/metrics/revenue", map[string]any{"event_type": "purchase", "aggregation": "sum", "description": "money in", "cap": map[string]any{"value": 100}}, nil)

	vb := newBrowser(t, ts)
	vb.signIn(viewer)
	if resp := vb.do("/metric-definitions", nil); resp.StatusCode != 200 {
		t.Fatalf("metrics page: %d\n%s", resp.StatusCode, vb.last)
	}
	row := regexp.MustCompile(`(?s)<tr data-metric="revenue">.*?</tr>`).FindString(vb.last)
	for _, want := range []string{`<td class="version">v2</td>`, `<span class="status running">active</span>`, `data-use="checkout">checkout</a> v1 <span class="badge outdated"`, `v2 is current`,
		`data-use="later">later</a> (draft: current)`} {
		if !strings.Contains(row, want) {
			t.Errorf("revenue's row lacks %s:\n%s", want, row)
		}
	}
	if resp := vb.do("/metric-definitions/revenue", nil); resp.StatusCode != 200 {
		t.Fatalf("metric page: %d\n%s", resp.StatusCode, vb.last)
	}
	v2 := regexp.MustCompile(`(?s)<table class="list definition" data-version="2">.*?</table>`).FindString(vb.last)
	if !strings.Contains(v2, `<tr data-field="cap.value" class="added" data-change="added">`) || !strings.Contains(v2, `<ins>100</ins> (added)`) ||
		!strings.Contains(v2, `<tr data-field="aggregation"><td><code>aggregation</code></td><td><code>&#34;sum&#34;</code>`) {
		t.Errorf("v2 beside v1 should add cap.value and keep the rest:\n%s", v2)
	}
	if !strings.Contains(vb.last, `id="read-only"`) || strings.Contains(vb.last, `action="/metric-definitions/revenue/`) {
		t.Errorf("a viewer is offered the forms:\n%s", vb.last)
	}
	if resp := vb.do("/metric-definitions/revenue/deprecate", url.Values{"csrf": {vb.csrf()}}); resp.StatusCode != 403 {
		t.Errorf("a viewer deprecates: %d, want 403", resp.StatusCode)
	}

	ab := newBrowser(t, ts)
	ab.signIn(analyst)
	ab.do("/metric-definitions/revenue", nil)
	base := formOf(t, ab.last, "/metric-definitions/revenue/versions")
	if base.Get("cap_upper") != "100" || base.Get("event_type") != "purchase" || base.Get("aggregation") != "sum" || base.Get("csrf") == "" {
		t.Fatalf("the form is not filled with the current definition: %v", base)
	}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, x := range base {
			v[k] = x
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	versions := func() int {
		var out metricVersionList
		ts.must(200, "GET", "/v1/metrics/revenue/versions", nil, &out)
		return len(out.Versions)
	}
	for _, c := range []struct {
		name  string
		form  url.Values
		field string         // the form group whose message is shown
		api   map[string]any // the same definition sent to PUT /v1/metrics/revenue: its message is the form's; nil: the form's own check
		msg   string         // the message's start, when api is nil
	}{
		{"percentile", with("cap_upper", "", "cap_percentile", "2"), "cap",
			map[string]any{"event_type": "purchase", "aggregation": "sum", "description": "money in", "cap": map[string]any{"percentile": 2}}, ""},
		{"window", with("window_start", "5", "window_end", "2"), "window",
			map[string]any{"event_type": "purchase", "aggregation": "sum", "description": "money in", "cap": map[string]any{"value": 100}, "window": map[string]any{"start_days": 5, "end_days": 2}}, ""},
		{"ratio without parts", with("aggregation", "ratio", "event_type", "", "cap_upper", ""), "numerator",
			map[string]any{"aggregation": "ratio", "description": "money in"}, ""},
		{"margin", with("guardrail_margin", "1.5"), "guardrail_margin",
			map[string]any{"event_type": "purchase", "aggregation": "sum", "description": "money in", "cap": map[string]any{"value": 100}, "guardrail_margin": 1.5}, ""},
		{"not a number", with("window_start", "x", "window_end", "7"), "window", nil, `window.start_days: must be a number, got "x"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.msg
			if c.api != nil {
				status, raw := ts.do("PUT", "/v1/metrics/revenue", analyst, c.api)
				if status != 400 {
					t.Fatalf("the API takes %v: %d %s", c.api, status, raw)
				}
				want = errorOf(t, raw).Message
			}
			resp := ab.do("/metric-definitions/revenue/versions", c.form)
			if resp.StatusCode != 400 {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if got := fieldError(ab.last, c.field); got == "" || !strings.HasPrefix(got, want) || c.api != nil && got != want {
				t.Errorf("next to %s: %q, want the API's %q", c.field, got, want)
			}
			if n := versions(); n != 2 {
				t.Errorf("a refused form wrote a version: %d versions", n)
			}
		})
	}
	if resp := ab.do("/metric-definitions/revenue/versions", with("csrf", "forged", "description", "x")); resp.StatusCode != 403 || versions() != 2 {
		t.Errorf("a forged form: %d, %d versions; want 403 and nothing written", resp.StatusCode, versions())
	}
	// The form sent back unchanged makes no version; a change makes v3.
	if resp := ab.do("/metric-definitions/revenue/versions", base); resp.StatusCode != http.StatusSeeOther || versions() != 2 {
		t.Errorf("the unchanged form: %d, %d versions; want 303 and no new version", resp.StatusCode, versions())
	}
	if resp := ab.do("/metric-definitions/revenue/versions", with("description", "money in, net of refunds", "window_start", "0", "window_end", "7")); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/metric-definitions/revenue" {
		t.Fatalf("new version: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), ab.last)
	}
	var cur experiment.Metric
	ts.must(200, "GET", "/v1/metrics/revenue", nil, &cur)
	if cur.Version != 3 || cur.Description != "money in, net of refunds" || cur.Window == nil || cur.Window.EndDays != 7 || cur.Cap == nil || cur.Cap.Value != 100 {
		t.Errorf("v3 is %+v", cur)
	}
	ab.do("/metric-definitions/revenue", nil)
	v3 := regexp.MustCompile(`(?s)<table class="list definition" data-version="3">.*?</table>`).FindString(ab.last)
	if !strings.Contains(v3, `data-field="description" class="changed"`) || !strings.Contains(v3, `<del>&#34;money in&#34;</del> <ins>&#34;money in, net of refunds&#34;</ins>`) ||
		!strings.Contains(v3, `data-field="window.end_days" class="added"`) {
		t.Errorf("v3 beside v2:\n%s", v3)
	}
	// Deprecate and restore.
	if resp := ab.do("/metric-definitions/revenue/deprecate", url.Values{"csrf": {ab.csrf()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deprecate: %d\n%s", resp.StatusCode, ab.last)
	}
	ts.must(200, "GET", "/v1/metrics/revenue", nil, &cur)
	ab.do("/metric-definitions", nil)
	if !cur.Deprecated || !strings.Contains(regexp.MustCompile(`(?s)<tr data-metric="revenue">.*?</tr>`).FindString(ab.last), "deprecated") {
		t.Errorf("after deprecate: %+v", cur)
	}
	ab.do("/metric-definitions/revenue", nil)
	if resp := ab.do("/metric-definitions/revenue/restore", url.Values{"csrf": {ab.csrf()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("restore: %d", resp.StatusCode)
	}
	cur = experiment.Metric{}
	if ts.must(200, "GET", "/v1/metrics/revenue", nil, &cur); cur.Deprecated {
		t.Error("restore left it deprecated")
	}
	// Deleting: admins only; a metric in use is refused with the API's message.
	ab.do("/metric-definitions/orders", nil)
	if resp := ab.do("/metric-definitions/orders/delete", url.Values{"csrf": {ab.csrf()}, "confirm": {"orders"}}); resp.StatusCode != 403 {
		t.Errorf("an analyst deletes: %d, want 403", resp.StatusCode)
	}
	admin := newBrowser(t, ts)
	admin.signIn(ts.admin)
	admin.do("/metric-definitions/revenue", nil)
	_, raw := ts.do("DELETE", "/v1/metrics/revenue", ts.admin, nil)
	apiMsg := errorOf(t, raw).Message
	if resp := admin.do("/metric-definitions/revenue/delete", url.Values{"csrf": {admin.csrf()}, "confirm": {"revenue"}}); resp.StatusCode != 409 || fieldError(admin.last, "delete") != apiMsg ||
		!strings.Contains(apiMsg, `experiment "checkout"`) {
		t.Errorf("deleting a used metric: %d %q, want 409 and the API's %q", resp.StatusCode, fieldError(admin.last, "delete"), apiMsg)
	}
	admin.do("/metric-definitions/orders", nil)
	if resp := admin.do("/metric-definitions/orders/delete", url.Values{"csrf": {admin.csrf()}, "confirm": {"order"}}); resp.StatusCode != 400 || !strings.HasPrefix(fieldError(admin.last, "delete"), "confirm:") {
		t.Errorf("a wrong confirmation: %d %q", resp.StatusCode, fieldError(admin.last, "delete"))
	}
	if resp := admin.do("/metric-definitions/orders/delete", url.Values{"csrf": {admin.csrf()}, "confirm": {"orders"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d\n%s", resp.StatusCode, admin.last)
	}
	ts.must(404, "GET", "/v1/metrics/orders", nil, nil)
}

// TestConsoleTemplates: admins create a template through the form (the API's
// messages next to the fields, nothing written when refused); analysts read
// the list; the new-experiment form filled from a template without script
// (GET /experiments/new?template=NAME), sent as it is, creates the experiment
// the API creates from the same template.
func TestConsoleTemplates(t *testing.T) {
	ts := newTestServer(t)
	viewer := ts.key("vic", experiment.RoleViewer)
	analyst := ts.key("ana", experiment.RoleAnalyst)
	for _, m := range []map[string]any{
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum"},
		{"name": "orders", "event_type": "purchase", "aggregation": "count"},
		{"name": "unsubscribes", "event_type": "unsubscribe", "aggregation": "binary", "higher_is_better": false},
	} {
		ts.must(http.StatusCreated, "POST", "/v1/metrics", m, nil)
	}
	b := newBrowser(t, ts)
	b.signIn(ts.admin)
	if resp := b.do("/templates", nil); resp.StatusCode != 200 || !strings.Contains(b.last, `id="no-templates"`) {
		t.Fatalf("templates page: %d\n%s", resp.StatusCode, b.last)
	}
	good := url.Values{"csrf": {b.csrf()}, "name": {"checkout-std"}, "description": {"checkout tests"}, "metrics": {"revenue", "orders"}, "primary": {"revenue"},
		"guardrails": {"unsubscribes"}, "alpha": {"0.1"}, "correction": {"bh"}, "mde": {"0.05"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, x := range good {
			v[k] = x
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v[kv[i]] = []string{kv[i+1]}
		}
		return v
	}
	apiBody := map[string]any{"name": "checkout-std", "description": "checkout tests", "metrics": []map[string]any{{"name": "revenue", "primary": true}, {"name": "orders"}},
		"guardrails": []string{"unsubscribes"}, "analysis": map[string]any{"alpha": 0.1, "correction": "bh", "mde": 0.05}}
	withAPI := func(k string, v any) map[string]any {
		out := map[string]any{}
		for x, y := range apiBody {
			out[x] = y
		}
		out[k] = v
		return out
	}
	for _, c := range []struct {
		name, field string
		form        url.Values
		api         map[string]any
	}{
		{"name", "name", with("name", "a b"), withAPI("name", "a b")},
		{"guardrail among the metrics", "guardrails", with("guardrails", "orders"), withAPI("guardrails", []string{"orders"})},
		{"alpha", "alpha", with("alpha", "2"), withAPI("analysis", map[string]any{"alpha": 2, "correction": "bh", "mde": 0.05})},
		{"correction", "correction", with("correction", "bonf"), withAPI("analysis", map[string]any{"alpha": 0.1, "correction": "bonf", "mde": 0.05})},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, raw := ts.do("POST", "/v1/templates", ts.admin, c.api)
			if status != 400 {
				t.Fatalf("the API takes it: %d %s", status, raw)
			}
			want := errorOf(t, raw).Message
			if resp := b.do("/templates", c.form); resp.StatusCode != 400 || fieldError(b.last, c.field) != want {
				t.Errorf("%d, next to %s %q; want 400 and the API's %q", resp.StatusCode, c.field, fieldError(b.last, c.field), want)
			}
		})
	}
	var list templateList
	if ts.must(200, "GET", "/v1/templates", nil, &list); len(list.Templates) != 0 {
		t.Fatalf("a refused form wrote %+v", list.Templates)
	}
	if resp := b.do("/templates", with("csrf", "forged")); resp.StatusCode != 403 {
		t.Errorf("a forged form: %d, want 403", resp.StatusCode)
	}
	if resp := b.do("/templates", good); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", resp.StatusCode, b.last)
	}
	var tpl experiment.Template
	ts.must(200, "GET", "/v1/templates/checkout-std", nil, &tpl)
	if len(tpl.Metrics) != 2 || !tpl.Metrics[0].Primary || tpl.Metrics[1].Name != "orders" || len(tpl.Guardrails) != 1 || tpl.Analysis == nil ||
		tpl.Analysis.Alpha != 0.1 || tpl.Analysis.Correction != "bh" || tpl.Analysis.MDE != 0.05 {
		t.Errorf("stored template %+v (analysis %+v)", tpl, tpl.Analysis)
	}
	// Analysts read; viewers are refused (the API's templates need role analyst).
	ab := newBrowser(t, ts)
	ab.signIn(analyst)
	if resp := ab.do("/templates", nil); resp.StatusCode != 200 || !strings.Contains(ab.last, `data-template="checkout-std"`) || strings.Contains(ab.last, `action="/templates"`) {
		t.Errorf("analyst's templates page: %d\n%s", resp.StatusCode, ab.last)
	}
	vb := newBrowser(t, ts)
	vb.signIn(viewer)
	if resp := vb.do("/templates", nil); resp.StatusCode != 403 {
		t.Errorf("viewer's templates page: %d, want 403", resp.StatusCode)
	}

	// The new-experiment form filled from the template, server-side.
	if resp := b.do("/experiments/new?template=checkout-std", nil); resp.StatusCode != 200 {
		t.Fatalf("filled form: %d\n%s", resp.StatusCode, b.last)
	}
	form := formOf(t, b.last, "/experiments/new")
	if got := form["metrics"]; strings.Join(got, ",") != "orders,revenue,unsubscribes" || form.Get("primary") != "revenue" || form.Get("alpha") != "0.1" ||
		form.Get("correction") != "bh" || form.Get("mde") != "0.05" || form.Get("template") != "checkout-std" {
		t.Errorf("the form is not filled from the template: %v", form)
	}
	form.Set("key", "from-console")
	if resp := b.do("/experiments/new", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create from the filled form: %d\n%s", resp.StatusCode, b.last)
	}
	var got, want experiment.Experiment
	ts.must(200, "GET", "/v1/experiments/from-console", nil, &got)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "from-api", "variants": twoArms, "template": "checkout-std"}, &want)
	names := func(ms []experiment.MetricRef) map[string]bool {
		out := map[string]bool{}
		for _, m := range ms {
			out[m.Name] = m.Primary
		}
		return out
	}
	if got.Template != "checkout-std" || len(got.Metrics) != len(want.Metrics) || got.Analysis != want.Analysis {
		t.Errorf("from the form: template %q, metrics %+v, plan %+v; from the API: %+v, %+v", got.Template, got.Metrics, got.Analysis, want.Metrics, want.Analysis)
	}
	for n, p := range names(want.Metrics) {
		if q, ok := names(got.Metrics)[n]; !ok || q != p {
			t.Errorf("metric %s: from the form %v (present %v), from the API primary %v", n, q, ok, p)
		}
	}
	// An unknown template is said next to the picker.
	if resp := b.do("/experiments/new?template=nope", nil); resp.StatusCode != 400 || !strings.HasPrefix(fieldError(b.last, "template"), `template: unknown template "nope"`) {
		t.Errorf("unknown template: %d %q", resp.StatusCode, fieldError(b.last, "template"))
	}
}

// TestReportMetricVersions: the report (HTML, Markdown, exact and private)
// and the console's experiment page say which version of each metric
// definition the results read and flag a newer one; a draft reads the
// current version.
func TestReportMetricVersions(t *testing.T) {
	ts := newTestServer(t)
	setupConsole(t, ts)
	viewer := ts.key("vic", experiment.RoleViewer)
	ts.must(http.StatusOK, "PUT", "/v1/metrics/revenue", map[string]any{"event_type": "purchase", "aggregation": "sum", "bounds": map[string]float64{"lower": 0, "upper": 60}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "next", "variants": twoArms, "metrics": []string{"revenue"}}, nil)
	ctx := context.Background()
	want := []reports.MetricDefinition{{Metric: "revenue", Version: 1, Current: 2, Pinned: true}, {Metric: "converted", Version: 1, Current: 1, Pinned: true}, {Metric: "visits", Version: 1, Current: 1, Pinned: true}}
	for _, private := range []bool{false, true} {
		r, err := BuildReport(ctx, ts.db, ts.srv.results, "checkout", ReportOptions{Private: private, Who: "test", TableOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Definitions, want) {
			t.Errorf("private %v: definitions %+v, want %+v", private, r.Definitions, want)
		}
		var md bytes.Buffer
		if err := r.Markdown(&md, ""); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md.String(), "- revenue v1 (pinned at the start; v2 is current and is not used here)\n- converted v1 (pinned at the start; current)") {
			t.Errorf("private %v: Markdown\n%s", private, md.String())
		}
	}
	for _, key := range []string{ts.admin, viewer} {
		status, page := ts.do("GET", "/v1/experiments/checkout/report.html", key, nil)
		row := regexp.MustCompile(`(?s)<tr data-definition="revenue" class="newer">.*?</tr>`).FindString(string(page))
		if status != 200 || !strings.Contains(row, `<td class="version">v1</td><td class="current">v2</td>`) || !strings.Contains(row, "a newer version exists") {
			t.Errorf("report.html: %d, revenue's row %q", status, row)
		}
	}
	vb := newBrowser(t, ts)
	vb.signIn(viewer)
	vb.do("/experiments/checkout", nil)
	if d := regexp.MustCompile(`(?s)<dd id="metric-versions">.*?</dd>`).FindString(vb.last); !strings.Contains(d, `revenue</a> v1 <span class="badge outdated"`) || !strings.Contains(d, "v2 is current") ||
		!strings.Contains(d, `visits</a> v1</span>`) {
		t.Errorf("the experiment page's versions: %s", d)
	}
	vb.do("/experiments/next", nil)
	if d := regexp.MustCompile(`(?s)<dd id="metric-versions">.*?</dd>`).FindString(vb.last); !strings.Contains(d, `revenue</a> v2 (current; pinned at the start)`) {
		t.Errorf("a draft's versions: %s", d)
	}
}

// TestConsoleMetricsInChromium: the metrics, metric, templates and
// filled new-experiment pages, rendered by Debian's headless Chromium, show
// the versions, the flag on an outdated pin, a refused form's message next to
// its field, and the form filled from a template. Screenshots are saved
// (docs/console.md shows them).
func TestConsoleMetricsInChromium(t *testing.T) {
	browse := chromium(t)
	if browse == nil {
		t.Skip("chromium not installed (apt-get install chromium; LIFT_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	ts := newTestServer(t)
	for _, m := range []map[string]any{
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "description": "money in"},
		{"name": "unsubscribes", "event_type": "unsubscribe", "aggregation": "binary", "higher_is_better": false},
	} {
		ts.must(http.StatusCreated, "POST", "/v1/metrics", m, nil)
	}
	ts.must(http.StatusCreated, "POST", "/v1/experiments", map[string]any{"key": "checkout", "variants": twoArms, "metrics": []string{"revenue", "unsubscribes"}}, nil)
	ts.must(http.StatusOK, "POST", "/v1/experiments/checkout/start", nil, nil)
	ts.must(http.StatusOK, "PUT", "/v1/metrics/revenue", map[string]any{"event_type": "purchase", "aggregation": "sum", "description": "money in, net of refunds",
		"cap": map[string]any{"percentile": 0.99}, "window": map[string]any{"start_days": 0, "end_days": 14}}, nil)
	ts.must(http.StatusCreated, "POST", "/v1/templates", map[string]any{"name": "checkout-std", "description": "checkout tests",
		"metrics": []map[string]any{{"name": "revenue", "primary": true}}, "guardrails": []string{"unsubscribes"}, "analysis": map[string]any{"alpha": 0.1, "mde": 0.05}}, nil)
	b := newBrowser(t, ts)
	base := sessionProxy(t, ts.http.URL, b.signIn(ts.admin))

	dom := string(browse("--dump-dom", base+"/metric-definitions"))
	if row := regexp.MustCompile(`(?s)<tr data-metric="revenue">.*?</tr>`).FindString(dom); !strings.Contains(row, "v2 is current") || !strings.Contains(row, `<td class="version">v2</td>`) {
		t.Errorf("the metrics page's revenue row: %s", row)
	}
	screenshot(t, browse, base+"/metric-definitions", "console-metrics.png")
	dom = string(browse("--dump-dom", base+"/metric-definitions/revenue"))
	if !strings.Contains(dom, `data-field="cap.percentile" class="added"`) || !strings.Contains(dom, `data-field="description" class="changed"`) {
		t.Errorf("the metric page does not set v2 beside v1")
	}
	screenshotSized(t, browse, base+"/metric-definitions/revenue", "console-metric.png", 2400)
	// A refused form, as the server answers it.
	b.do("/metric-definitions/revenue", nil)
	form := formOf(t, b.last, "/metric-definitions/revenue/versions")
	form.Set("cap_percentile", "1.5")
	b.do("/metric-definitions/revenue/versions", form)
	replay := replayServer(t, base, []byte(b.last))
	dom = string(browse("--dump-dom", replay+"/page"))
	if !strings.Contains(htmlText(dom), `<p class="error" id="cap-error" role="alert">cap.percentile: must be in (0, 1), got 1.5</p>`) {
		t.Errorf("the refused form's message is not next to the cap fields")
	}
	screenshotSized(t, browse, replay+"/page", "console-metric-refused.png", 2400)
	screenshot(t, browse, base+"/templates", "console-templates.png")
	dom = string(browse("--dump-dom", base+"/experiments/new?template=checkout-std"))
	if !strings.Contains(dom, `value="unsubscribes" checked`) || !strings.Contains(dom, `id="alpha" name="alpha" inputmode="decimal" value="0.1"`) {
		t.Errorf("the new-experiment form is not filled from the template")
	}
	screenshot(t, browse, base+"/experiments/new?template=checkout-std", "console-new-from-template.png")
}
