package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// The console's metric definitions and experiment templates
// (docs/console.md#metrics-and-templates): the metrics with their current
// version, status and the versions experiments pinned; a metric's version
// history, each version beside the one before; for analysts and admins the
// forms of PUT /v1/metrics/NAME (a new version), deprecate, restore and (admins)
// DELETE; the templates of POST /v1/templates, and the new-experiment form
// filled from one. Every change goes through the store functions the API
// calls, so the validation messages are the API's.

// metricsPath is the console's metrics page (/metrics is Prometheus').
const metricsPath = "/metric-definitions"

// consoleMetricRoutes registers the pages of this file.
func (s *Server) consoleMetricRoutes() {
	html := "text/html"
	s.route(http.MethodGet, metricsPath, Public, s.consolePage(s.consoleMetrics), op{Summary: "The console: metric definitions, their current version and status, and the versions experiments pinned", ContentType: html})
	s.route(http.MethodGet, metricsPath+"/:name", Public, s.consolePage(s.consoleMetric), op{Summary: "The console: a metric's version history and, for analysts and admins, the forms that change it", ContentType: html})
	s.route(http.MethodPost, metricsPath+"/:name/versions", Public, s.consolePage(s.consoleMetricVersion), op{
		Summary: "Store a metric's next version from the console's form (PUT /v1/metrics/NAME; analysts and admins); the API's validation messages are shown next to the fields", ContentType: html})
	s.route(http.MethodPost, metricsPath+"/:name/deprecate", Public, s.consolePage(s.consoleMetricStatus(true)), op{Summary: "Deprecate a metric from the console (analysts and admins; form field csrf)", ContentType: html})
	s.route(http.MethodPost, metricsPath+"/:name/restore", Public, s.consolePage(s.consoleMetricStatus(false)), op{Summary: "Undo a metric's deprecation from the console (analysts and admins; form field csrf)", ContentType: html})
	s.route(http.MethodPost, metricsPath+"/:name/delete", Public, s.consolePage(s.consoleMetricDelete), op{
		Summary: "Delete an unused metric from the console (admins; form fields confirm: the metric's name typed again, csrf); a metric in use is refused naming its users", ContentType: html})
	s.route(http.MethodGet, "/templates", Public, s.consolePage(s.consoleTemplates), op{Summary: "The console: experiment templates and, for admins, the form that creates one", ContentType: html})
	s.route(http.MethodPost, "/templates", Public, s.consolePage(s.consoleCreateTemplate), op{
		Summary: "Create an experiment template from the console's form (POST /v1/templates; admins); the API's validation messages are shown next to the fields", ContentType: html})
}

// metricUse is one experiment reading a metric, and the version it reads.
type metricUse struct {
	Experiment string
	Status     experiment.Status
	Version    int  // 0: a draft, which reads the current version
	Outdated   bool // a newer version than the pinned one exists
	Current    int  // the metric's current version
}

// metricRow is a line of the metrics page.
type metricRow struct {
	M    *experiment.Metric
	Uses []metricUse
}

// metricUses lists, by metric name, the experiments that read it: those that
// pinned a version (started experiments: their metrics and the parts of their
// ratio metrics) and drafts that list it (they read the current version).
func metricUses(es []*experiment.Experiment, current map[string]int) map[string][]metricUse {
	out := map[string][]metricUse{}
	for _, e := range es {
		seen := map[string]bool{}
		names := make([]string, 0, len(e.MetricVersions))
		for n := range e.MetricVersions {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v := e.MetricVersions[n]
			seen[n] = true
			out[n] = append(out[n], metricUse{Experiment: e.Key, Status: e.Status, Version: v, Outdated: current[n] > v, Current: current[n]})
		}
		for _, m := range e.Metrics {
			if !seen[m.Name] {
				seen[m.Name] = true
				out[m.Name] = append(out[m.Name], metricUse{Experiment: e.Key, Status: e.Status, Current: current[m.Name]})
			}
		}
	}
	return out
}

func (s *Server) consoleMetrics(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	ctx := c.Request().Context()
	ms, err := s.db.ListMetrics(ctx)
	if err != nil {
		return err
	}
	es, err := s.db.ListExperiments(ctx)
	if err != nil {
		return err
	}
	current := map[string]int{}
	for _, m := range ms {
		current[m.Name] = m.Version
	}
	uses := metricUses(es, current)
	rows := make([]metricRow, len(ms))
	for i, m := range ms {
		rows[i] = metricRow{M: m, Uses: uses[m.Name]}
	}
	d := struct {
		Rows    []metricRow
		Deleted string
	}{rows, c.QueryParam("deleted")}
	return s.render(c, http.StatusOK, "metrics.html", page2(k, se, "Metrics", "metrics", d))
}

// fieldChange is one field of a version's definition beside the version
// before: Change is "" (the same), "added", "changed" or "removed".
type fieldChange struct {
	Field, Value, Before, Change string
}

// versionView is one version of a metric on its page.
type versionView struct {
	experiment.MetricVersion
	Fields  []fieldChange
	Changes int // fields added, changed or removed against the version before
}

// metricPage is a metric's page.
type metricPage struct {
	M        *experiment.Metric
	Versions []versionView // newest first
	Uses     []metricUse
	Ratios   []string // ratio metrics built on it (current definitions)
	CanEdit  bool     // analysts and admins
	CanDel   bool     // admins
	Next     int      // the version a change makes
	V        map[string]string
	Errors   map[string]string // form field → the API's message
	Problem  string
}

// flatDefinition is a definition as field paths (window.end_days) and their
// JSON values, without the fields the registry sets (name, version,
// deprecated).
func flatDefinition(m *experiment.Metric) map[string]string {
	out := map[string]string{}
	b, err := json.Marshal(m)
	if err != nil {
		return out
	}
	var doc map[string]any
	if json.Unmarshal(b, &doc) != nil {
		return out
	}
	delete(doc, "name")
	delete(doc, "version")
	delete(doc, "deprecated")
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if o, ok := v.(map[string]any); ok {
			for k, x := range o {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
			return
		}
		j, _ := json.Marshal(v)
		out[prefix] = string(j)
	}
	walk("", doc)
	return out
}

// versionViews sets each version beside the one before it, newest first.
func versionViews(vs []experiment.MetricVersion) []versionView {
	out := make([]versionView, len(vs))
	prev := map[string]string{}
	for i, v := range vs {
		cur := flatDefinition(v.Definition)
		keys := make([]string, 0, len(cur)+len(prev))
		for k := range cur {
			keys = append(keys, k)
		}
		for k := range prev {
			if _, ok := cur[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		vv := versionView{MetricVersion: v}
		for _, k := range keys {
			now, inNow := cur[k]
			was, inPrev := prev[k]
			fc := fieldChange{Field: k, Value: now, Before: was}
			switch {
			case i == 0:
			case !inPrev:
				fc.Change = "added"
			case !inNow:
				fc.Change = "removed"
			case now != was:
				fc.Change = "changed"
			}
			if fc.Change != "" {
				vv.Changes++
			}
			vv.Fields = append(vv.Fields, fc)
		}
		out[len(vs)-1-i] = vv
		prev = cur
	}
	return out
}

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// metricFormValues are the form's fields for a definition (the current one, to
// start the next version from).
func metricFormValues(m *experiment.Metric) map[string]string {
	v := map[string]string{"description": m.Description, "event_type": m.EventType, "aggregation": string(m.Aggregation),
		"numerator": m.Numerator, "denominator": m.Denominator}
	if w := m.Window; w != nil {
		v["window_start"], v["window_end"] = fmtFloat(w.StartDays), fmtFloat(w.EndDays)
		if w.MaturedOnly {
			v["matured_only"] = "1"
		}
	}
	if cp := m.Cap; cp != nil {
		if u, ok := cp.UpperValue(); ok {
			v["cap_upper"] = fmtFloat(u)
		}
		if cp.Percentile != 0 {
			v["cap_percentile"] = fmtFloat(cp.Percentile)
		}
		if cp.Lower != nil {
			v["cap_lower"] = fmtFloat(*cp.Lower)
		}
		if cp.LowerPercentile != 0 {
			v["cap_lower_percentile"] = fmtFloat(cp.LowerPercentile)
		}
	}
	if cv := m.Covariate; cv != nil {
		v["covariate_days"] = fmtFloat(cv.Days)
	}
	if b := m.Bounds; b != nil {
		v["bounds_lower"], v["bounds_upper"] = fmtFloat(b.Lower), fmtFloat(b.Upper)
	}
	if m.Higher != nil {
		v["higher_is_better"] = strconv.FormatBool(*m.Higher)
	}
	if m.GuardrailMargin != 0 {
		v["guardrail_margin"] = fmtFloat(m.GuardrailMargin)
	}
	return v
}

// metricFormFields are the form fields of a metric form, in order.
var metricFormFields = []string{"description", "event_type", "aggregation", "numerator", "denominator", "window_start", "window_end", "matured_only",
	"cap_upper", "cap_percentile", "cap_lower", "cap_lower_percentile", "covariate_days", "bounds_lower", "bounds_upper", "higher_is_better", "guardrail_margin"}

// metricFromForm reads a definition from the form's values; cur is the
// current definition, whose way of writing the upper cap (value or upper) is
// kept. A value that is not a number is a message by form group.
func metricFromForm(name string, v map[string]string, cur *experiment.Metric) (*experiment.Metric, map[string]string) {
	errs := map[string]string{}
	m := &experiment.Metric{Name: name, Description: v["description"], EventType: v["event_type"], Aggregation: experiment.Aggregation(v["aggregation"]),
		Numerator: v["numerator"], Denominator: v["denominator"]}
	num := func(group, path, field string) *float64 {
		s := v[field]
		if s == "" {
			return nil
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			if errs[group] == "" {
				errs[group] = path + ": must be a number, got " + strconv.Quote(s)
			}
			return nil
		}
		return &x
	}
	ws, we := num("window", "window.start_days", "window_start"), num("window", "window.end_days", "window_end")
	if ws != nil || we != nil || v["matured_only"] != "" {
		m.Window = &experiment.Window{MaturedOnly: v["matured_only"] != ""}
		if ws != nil {
			m.Window.StartDays = *ws
		}
		if we != nil {
			m.Window.EndDays = *we
		}
	}
	cu, cpct, cl, clp := num("cap", "cap.upper", "cap_upper"), num("cap", "cap.percentile", "cap_percentile"), num("cap", "cap.lower", "cap_lower"), num("cap", "cap.lower_percentile", "cap_lower_percentile")
	if cu != nil || cpct != nil || cl != nil || clp != nil {
		m.Cap = &experiment.Cap{Lower: cl}
		if cu != nil {
			// As the current definition writes it: value (positive) or upper.
			if *cu > 0 && (cur == nil || cur.Cap == nil || cur.Cap.Upper == nil) {
				m.Cap.Value = *cu
			} else {
				m.Cap.Upper = cu
			}
		}
		if cpct != nil {
			m.Cap.Percentile = *cpct
		}
		if clp != nil {
			m.Cap.LowerPercentile = *clp
		}
	}
	if d := num("covariate", "covariate.days", "covariate_days"); d != nil {
		m.Covariate = &experiment.Covariate{Days: *d}
	}
	bl, bu := num("bounds", "bounds.lower", "bounds_lower"), num("bounds", "bounds.upper", "bounds_upper")
	if bl != nil || bu != nil {
		m.Bounds = &experiment.Bounds{}
		if bl != nil {
			m.Bounds.Lower = *bl
		}
		if bu != nil {
			m.Bounds.Upper = *bu
		} else {
			errs["bounds"] = "bounds.upper: give both bounds, lower and upper"
		}
	}
	switch h := v["higher_is_better"]; h {
	case "":
	case "true", "false":
		b := h == "true"
		m.Higher = &b
	default:
		errs["higher_is_better"] = "higher_is_better: must be true or false, got " + strconv.Quote(h)
	}
	if g := num("guardrail_margin", "guardrail_margin", "guardrail_margin"); g != nil {
		m.GuardrailMargin = *g
	}
	return m, errs
}

// metricFormGroup is the form group of an API error's field path
// (cap.percentile → cap); "" when the form has no such field.
func metricFormGroup(err error) string {
	f := errField(err)
	if i := strings.IndexAny(f, ".["); i > 0 {
		f = f[:i]
	}
	switch f {
	case "description", "event_type", "aggregation", "numerator", "denominator", "window", "cap", "covariate", "bounds", "higher_is_better", "guardrail_margin":
		return f
	}
	return ""
}

// errField is the field path an error names, "" when none.
func errField(err error) string {
	for e := err; e != nil; {
		x, ok := e.(*experiment.Error)
		if !ok {
			u, ok := e.(interface{ Unwrap() error })
			if !ok {
				return ""
			}
			e = u.Unwrap()
			continue
		}
		if x.Field != "" {
			return x.Field
		}
		e = x.Err
	}
	return ""
}

func (s *Server) metricPageData(c echo.Context, k *experiment.APIKey, name string) (*metricPage, error) {
	ctx := c.Request().Context()
	m, err := s.db.GetMetric(ctx, name)
	if err != nil {
		return nil, err
	}
	vs, err := s.db.MetricVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	es, err := s.db.ListExperiments(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := s.db.ListMetrics(ctx)
	if err != nil {
		return nil, err
	}
	current := map[string]int{}
	p := &metricPage{M: m, Next: m.Version + 1, Versions: versionViews(vs), V: metricFormValues(m), Errors: map[string]string{},
		CanEdit: k.Role.Allows(experiment.RoleAnalyst) && k.Role.SeesExact(), CanDel: k.Role.Allows(experiment.RoleAdmin)}
	for _, x := range ms {
		current[x.Name] = x.Version
		if x.Aggregation == experiment.Ratio && (x.Numerator == name || x.Denominator == name) {
			p.Ratios = append(p.Ratios, x.Name)
		}
	}
	p.Uses = metricUses(es, current)[name]
	return p, nil
}

func (s *Server) consoleMetric(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	p, err := s.metricPageData(c, k, c.Param("name"))
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "metric.html", page2(k, se, "Metric "+p.M.Name, "metrics", p))
}

// metricForm checks a metric form: the role, the session's CSRF token and a
// form from this site.
func metricForm(c echo.Context, k *experiment.APIKey, se *consoleSession, role experiment.Role, what string) error {
	const op = "api.console.metrics"
	if !k.Role.Allows(role) || !k.Role.SeesExact() {
		return experiment.E(op, experiment.Forbidden, experiment.Errorf("API key %q has role %q; %s needs role %s", k.Name, k.Role, what, role))
	}
	if !tokensEqual(se.csrf, c.FormValue("csrf")) || !sameOrigin(c) {
		return experiment.E(op, experiment.Forbidden, experiment.Field("csrf"), experiment.Errorf("the form's token does not match this session; reload the page"))
	}
	return nil
}

func metricURL(name string) string { return metricsPath + "/" + url.PathEscape(name) }

func (s *Server) consoleMetricVersion(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if err := metricForm(c, k, se, experiment.RoleAnalyst, "changing a metric"); err != nil {
		return err
	}
	p, err := s.metricPageData(c, k, c.Param("name"))
	if err != nil {
		return err
	}
	for _, f := range metricFormFields {
		p.V[f] = strings.TrimSpace(c.FormValue(f))
	}
	m, errs := metricFromForm(p.M.Name, p.V, p.M)
	if len(errs) == 0 {
		_, err := s.db.PutMetric(c.Request().Context(), actor(c), p.M.Name, m)
		if err == nil {
			return c.Redirect(http.StatusSeeOther, metricURL(p.M.Name))
		}
		if k := experiment.KindOf(err); k != experiment.Invalid && k != experiment.Conflict && k != experiment.NotFound {
			return err
		}
		_, _, msg := describe(err)
		errs = map[string]string{}
		if g := metricFormGroup(err); g != "" {
			errs[g] = msg
		} else {
			p.Problem = msg
		}
	}
	p.Errors = errs
	return s.render(c, http.StatusBadRequest, "metric.html", page2(k, se, "Metric "+p.M.Name, "metrics", p))
}

func (s *Server) consoleMetricStatus(deprecated bool) consoleHandler {
	what := "deprecating a metric"
	if !deprecated {
		what = "restoring a metric"
	}
	return func(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
		if err := metricForm(c, k, se, experiment.RoleAnalyst, what); err != nil {
			return err
		}
		m, err := s.db.DeprecateMetric(c.Request().Context(), actor(c), c.Param("name"), deprecated)
		if err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, metricURL(m.Name))
	}
}

func (s *Server) consoleMetricDelete(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if err := metricForm(c, k, se, experiment.RoleAdmin, "deleting a metric"); err != nil {
		return err
	}
	p, err := s.metricPageData(c, k, c.Param("name"))
	if err != nil {
		return err
	}
	if strings.TrimSpace(c.FormValue("confirm")) != p.M.Name {
		p.Errors["delete"] = "confirm: type the metric's name again to confirm the deletion"
		return s.render(c, http.StatusBadRequest, "metric.html", page2(k, se, "Metric "+p.M.Name, "metrics", p))
	}
	if err := s.db.DeleteMetric(c.Request().Context(), actor(c), p.M.Name); err != nil {
		if experiment.KindOf(err) != experiment.Conflict {
			return err
		}
		_, _, p.Errors["delete"] = describe(err)
		return s.render(c, http.StatusConflict, "metric.html", page2(k, se, "Metric "+p.M.Name, "metrics", p))
	}
	return c.Redirect(http.StatusSeeOther, metricsPath+"?deleted="+url.QueryEscape(p.M.Name))
}

// templatesPage is the templates page: the templates and the admin's form.
type templatesPage struct {
	Templates []*experiment.Template
	Admin     bool
	Metrics   []string // defined metrics that are not deprecated
	V         map[string]string
	Chosen    map[string]bool // metrics ticked
	Guards    map[string]bool // guardrails ticked
	Errors    map[string]string
	Problem   string
	Created   string
}

func (s *Server) templatesData(c echo.Context, k *experiment.APIKey) (*templatesPage, error) {
	ctx := c.Request().Context()
	ts, err := s.db.ListTemplates(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := s.db.ListMetrics(ctx)
	if err != nil {
		return nil, err
	}
	p := &templatesPage{Templates: ts, Admin: k.Role.Allows(experiment.RoleAdmin), V: map[string]string{"alpha": "0.05", "correction": "holm"},
		Chosen: map[string]bool{}, Guards: map[string]bool{}, Errors: map[string]string{}, Created: c.QueryParam("created")}
	for _, m := range ms {
		if !m.Deprecated {
			p.Metrics = append(p.Metrics, m.Name)
		}
	}
	return p, nil
}

func (s *Server) consoleTemplates(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if err := needs(k, experiment.RoleAnalyst, "the templates page"); err != nil {
		return err
	}
	p, err := s.templatesData(c, k)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "templates.html", page2(k, se, "Templates", "templates", p))
}

// templateFormField is the form field of an API error's field path
// (metrics[1].primary → metrics, analysis.alpha → alpha).
func templateFormField(err error) string {
	f := errField(err)
	if strings.HasPrefix(f, "analysis.") {
		return formFields[f]
	}
	if i := strings.IndexAny(f, ".["); i > 0 {
		f = f[:i]
	}
	switch f {
	case "name", "description", "metrics", "guardrails":
		return f
	}
	return ""
}

// planFromForm reads the analysis plan fields shared by the experiment and
// template forms into plan; a value that is not a number is a message by form
// field.
func planFromForm(v map[string]string, plan *experiment.AnalysisPlan, errs map[string]string) {
	plan.Correction = v["correction"]
	plan.Sequential = v["sequential"] != ""
	plan.PrimaryMetric = ""
	for _, f := range []struct {
		field string
		dst   *float64
	}{{"alpha", &plan.Alpha}, {"mde", &plan.MDE}} {
		if v[f.field] == "" {
			*f.dst = 0
			continue
		}
		x, err := strconv.ParseFloat(v[f.field], 64)
		if err != nil {
			errs[f.field] = f.field + ": must be a number, got " + strconv.Quote(v[f.field])
			continue
		}
		*f.dst = x
	}
}

func (s *Server) consoleCreateTemplate(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	const op = "api.console.templates"
	if !k.Role.Allows(experiment.RoleAdmin) {
		return experiment.E(op, experiment.Forbidden, experiment.Errorf("API key %q has role %q; creating a template needs role admin", k.Name, k.Role))
	}
	if !tokensEqual(se.csrf, c.FormValue("csrf")) || !sameOrigin(c) {
		return experiment.E(op, experiment.Forbidden, experiment.Field("csrf"), experiment.Errorf("the form's token does not match this session; reload the page"))
	}
	p, err := s.templatesData(c, k)
	if err != nil {
		return err
	}
	for _, n := range []string{"name", "description", "primary", "alpha", "correction", "mde", "sequential"} {
		p.V[n] = strings.TrimSpace(c.FormValue(n))
	}
	form, _ := c.FormParams()
	t := &experiment.Template{Name: p.V["name"], Description: p.V["description"], Analysis: &experiment.AnalysisPlan{}}
	for _, m := range form["metrics"] {
		p.Chosen[m] = true
		t.Metrics = append(t.Metrics, experiment.MetricRef{Name: m, Primary: m == p.V["primary"]})
	}
	for _, g := range form["guardrails"] {
		p.Guards[g] = true
		t.Guardrails = append(t.Guardrails, g)
	}
	planFromForm(p.V, t.Analysis, p.Errors)
	if len(p.Errors) == 0 {
		_, err := s.db.PutTemplate(c.Request().Context(), actor(c), t, true)
		if err == nil {
			return c.Redirect(http.StatusSeeOther, "/templates?created="+url.QueryEscape(t.Name)+"#template-"+url.QueryEscape(t.Name))
		}
		if k := experiment.KindOf(err); k != experiment.Invalid && k != experiment.Conflict && k != experiment.NotFound {
			return err
		}
		_, _, msg := describe(err)
		if f := templateFormField(err); f != "" {
			p.Errors[f] = msg
		} else {
			p.Problem = msg
		}
	}
	return s.render(c, http.StatusBadRequest, "templates.html", page2(k, se, "Templates", "templates", p))
}

// fillFromTemplate pre-fills the new-experiment form from template name: its
// metrics and guardrails ticked, its primary metric and plan. An unknown
// template is a message next to the picker.
func (s *Server) fillFromTemplate(c echo.Context, f *newExperimentForm, name string) error {
	t, err := s.db.GetTemplate(c.Request().Context(), name)
	if experiment.Is(err, experiment.NotFound) {
		_, _, f.Errors["template"] = describe(experiment.E("api.console", experiment.Invalid, experiment.Field("template"), experiment.Errorf("unknown template %q: create it first (the Templates page, POST /v1/templates)", name)))
		return nil
	}
	if err != nil {
		return err
	}
	f.V["template"] = t.Name
	for _, m := range t.Metrics {
		f.Chosen[m.Name] = true
		if m.Primary {
			f.V["primary"] = m.Name
		}
	}
	for _, g := range t.Guardrails {
		f.Chosen[g] = true
	}
	if a := t.Analysis; a != nil {
		if a.PrimaryMetric != "" {
			f.V["primary"] = a.PrimaryMetric
		}
		if a.Alpha != 0 {
			f.V["alpha"] = fmtFloat(a.Alpha)
		}
		if a.Correction != "" {
			f.V["correction"] = a.Correction
		}
		if a.MDE != 0 {
			f.V["mde"] = fmtFloat(a.MDE)
		}
		if a.Sequential {
			f.V["sequential"] = "1"
		}
	}
	return nil
}

// templateNames are the names of the templates, for the form's picker.
func (s *Server) templateNames(c echo.Context) ([]string, error) {
	ts, err := s.db.ListTemplates(c.Request().Context())
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	slices.Sort(out)
	return out, nil
}
