package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/scorer"
)

// The console's holdouts, journeys, analyses and privacy pages. Each reads
// through the composition its API route uses, under the session key's role:
// holdouts and privacy are open to viewers (DP numbers only); journeys and
// analyses show exact numbers and need role analyst, as their routes do.

func (s *Server) consolePageRoutes() {
	html := "text/html"
	s.route(http.MethodGet, "/holdouts", Public, s.consolePage(s.consoleHoldouts), op{Summary: "The console: each holdout's cohorts with their long-run incrementality and chart (DP numbers for viewers)", ContentType: html})
	s.route(http.MethodGet, "/journeys", Public, s.consolePage(s.consoleJourneys), op{Summary: "The console: each journey's guardrails by day, the personalized-vs-control comparison and the model card (analysts)", ContentType: html})
	s.route(http.MethodGet, "/analyses", Public, s.consolePage(s.consoleAnalyses), op{Summary: "The console: forms that run difference-in-differences and uplift on stored data (analysts)", ContentType: html})
	s.route(http.MethodPost, "/analyses", Public, s.consolePage(s.consoleRunAnalysis), op{Summary: "Run a difference-in-differences or an uplift analysis from the console's form (field kind: did or uplift); the API's messages are shown next to the fields", ContentType: html})
	s.route(http.MethodGet, "/privacy", Public, s.consolePage(s.consolePrivacy), op{Summary: "The console: every privacy scope's budget, what has been spent, by whom and when", ContentType: html,
		Query: []param{{Name: "scope", Type: "string", Description: "one scope alone (experiment:KEY or holdout:NAME)"}, {Name: "page", Type: "integer", Description: "page of the scope's ledger, 20 entries, from 1 (with scope)"}}})
}

// needs refuses a page to a key below role.
func needs(k *experiment.APIKey, role experiment.Role, what string) error {
	if k.Role.Allows(role) {
		return nil
	}
	return experiment.E("api.console", experiment.Forbidden, experiment.Errorf("API key %q has role %q; %s needs role %s: its numbers are exact", k.Name, k.Role, what, role))
}

// inlineSVG renders a chart for a page; a chart that cannot be drawn is
// left out with the reason.
func inlineSVG(ch reports.Chart) (template.HTML, string) {
	b, err := reports.Bytes(ch, reports.SVG, reports.RenderOptions{})
	if err != nil {
		_, _, msg := describe(err)
		return "", msg
	}
	return svgElement(b), ""
}

// svgElement is an SVG document as an element of a page (without its XML
// declaration); the SVG is drawn by reports' canvas, so it is trusted.
func svgElement(b []byte) template.HTML {
	if i := bytes.Index(b, []byte("<svg")); i > 0 {
		b = b[i:]
	}
	return template.HTML(b)
}

// fmtEffect prints an effect with its interval: "1.23 [0.45, 2.01]".
func fmtEffect(est, lo, hi float64) string {
	return consoleNum(est) + " [" + consoleNum(lo) + ", " + consoleNum(hi) + "]"
}

// holdoutsData is the holdouts page.
type holdoutsData struct {
	Private  bool
	Holdouts []holdoutView
	// AsOf is when the exact numbers shown were computed, Stale the sentence
	// saying newer ones are being computed (viewAge.shown).
	AsOf, Stale string
}

type holdoutView struct {
	H           *experiment.Holdout
	Experiments []string
	Primary     string
	Cohorts     []cohortView
	Chart       template.HTML
	ChartNote   string
}

// cohortView is one version of a holdout and its incrementality.
type cohortView struct {
	Version      int
	Start        time.Time
	End          *time.Time
	Units        string // "holdout N · exposed M"
	Rows         []cohortRow
	Unready      string // why there are no numbers
	ReleasedAt   *time.Time
	EpsilonSpent float64
	Health       *cohortHealth // console_health.go
}

type cohortRow struct {
	Metric, Abs, Rel, P string
	Primary             bool
	Note                string
}

func (s *Server) consoleHoldouts(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	ctx := c.Request().Context()
	hs, err := s.db.ListHoldouts(ctx)
	if err != nil {
		return err
	}
	es, err := s.db.ListExperiments(ctx)
	if err != nil {
		return err
	}
	d := holdoutsData{Private: !k.Role.SeesExact()}
	age := s.newViewAge()
	for _, h := range hs {
		v := holdoutView{H: h}
		for _, e := range es {
			if e.Holdout == h.Name {
				v.Experiments = append(v.Experiments, e.Key)
			}
		}
		sort.Strings(v.Experiments)
		if v.Primary, err = holdoutPrimary(ctx, s.db, h.Name); err != nil {
			return err
		}
		// One row per cohort (a forest); over time as well once there are two.
		pr := reports.Privacy{Private: d.Private}
		forest := &reports.Forest{Title: "Long-run incrementality of " + v.Primary + " by cohort", Unit: "relative lift, %", Level: 0.95, Privacy: pr}
		line := &reports.Incrementality{Title: "Incrementality of " + v.Primary + " by cohort start", Holdout: h.Name, Metric: v.Primary, Unit: "relative lift, %", Level: 0.95, Dots: true, Privacy: pr}
		for ver := 1; ver <= h.Version; ver++ {
			cv, pt, err := s.cohort(c, k, h, ver, v.Primary, age)
			if err != nil {
				return err
			}
			v.Cohorts = append(v.Cohorts, cv)
			if pt != nil {
				forest.Effects = append(forest.Effects, reports.Effect{Label: fmt.Sprintf("v%d (from %s)", ver, cv.Start.Format("2006-01-02")), Interval: pt.Interval})
				line.Points = append(line.Points, *pt)
			}
		}
		switch {
		case v.Primary == "":
			v.ChartNote = "No chart: no experiment naming this holdout has a primary metric."
		case len(forest.Effects) == 0:
			v.ChartNote = "No chart: no cohort has a relative effect of " + v.Primary + " yet."
		default:
			v.Chart, v.ChartNote = inlineSVG(forest)
			if len(line.Points) > 1 {
				svg, note := inlineSVG(line)
				v.Chart += svg
				v.ChartNote += note
			}
		}
		d.Holdouts = append(d.Holdouts, v)
	}
	d.AsOf, d.Stale = age.shown()
	p := page2(k, se, "Holdouts", "holdouts", d)
	if age.pending() {
		p.Refresh = consoleRefresh
	}
	return s.render(c, http.StatusOK, "holdouts.html", p)
}

// cohort is a holdout version's incrementality: the exact results
// (results.Service.HoldoutResults) or, for viewers, the version's DP release
// (PrivateHoldoutResults, the API's private holdout results), and the
// primary metric's relative effect as a point of the holdout's chart. The
// exact numbers come from the console's cache (recentResults), their age
// noted in age.
func (s *Server) cohort(c echo.Context, k *experiment.APIKey, h *experiment.Holdout, ver int, primary string, age *viewAge) (cohortView, *reports.TimeEffect, error) {
	ctx := c.Request().Context()
	cv := cohortView{Version: ver}
	cv.Start, cv.End = cohortDates(h, ver)
	var pt *reports.TimeEffect
	point := func(metric string, est, lo, hi float64) {
		if metric == primary {
			pt = &reports.TimeEffect{Time: cv.Start, Interval: reports.Interval{Estimate: 100 * est, Low: 100 * lo, High: 100 * hi}}
		}
	}
	unready := func(err error) bool {
		if experiment.Is(err, experiment.BudgetExceeded) || experiment.Is(err, experiment.InsufficientData) || experiment.Is(err, experiment.NotFound) {
			_, _, cv.Unready = describe(err)
			return true
		}
		return false
	}
	if k.Role.SeesExact() {
		r, err := s.recentResults(age).HoldoutResults(ctx, h.Name, ver, nil, results.Options{NoSnapshot: true})
		if errors.Is(err, errComputing) {
			// The health is computed meanwhile too, for the reload.
			cv.Unready = computingText
			cv.Health, err = s.consoleHoldoutHealth(ctx, h.Name, ver, age)
			return cv, nil, err
		}
		if unready(err) {
			return cv, nil, nil
		}
		if err != nil {
			return cv, nil, err
		}
		cv.Units = fmt.Sprintf("holdout %d · exposed %d", r.Exposures["holdout"], r.Exposures["exposed"])
		if cv.Health, err = s.consoleHoldoutHealth(ctx, h.Name, ver, age); err != nil {
			return cv, nil, err
		}
		for _, m := range r.Metrics {
			row := cohortRow{Metric: m.Name, Primary: m.Name == primary, Note: m.Error}
			if len(m.Comparisons) > 0 {
				cmp := m.Comparisons[0]
				row.Abs = fmtEffect(cmp.Absolute.Estimate, cmp.Absolute.CILow, cmp.Absolute.CIHigh)
				row.P = consoleNum(cmp.Absolute.PValue)
				if finiteEffect(cmp.Relative) && unestimable(cmp.Flags) == "" {
					row.Rel = fmtEffect(100*cmp.Relative.Estimate, 100*cmp.Relative.CILow, 100*cmp.Relative.CIHigh) + " %"
					point(m.Name, cmp.Relative.Estimate, cmp.Relative.CILow, cmp.Relative.CIHigh)
				}
				if u := unestimable(cmp.Flags); u != "" {
					row.Note = u
				}
			}
			cv.Rows = append(cv.Rows, row)
		}
		return cv, pt, nil
	}
	pr, err := PrivateHoldoutResults(ctx, s.db, s.results, h.Name, ver, k.Name, privacy.Options{Now: s.opt.Now})
	if unready(err) {
		return cv, nil, nil
	}
	if err != nil {
		return cv, nil, err
	}
	cv.Units = fmt.Sprintf("holdout %d · exposed %d (noised)", pr.Exposures["holdout"], pr.Exposures["exposed"])
	now := time.Now
	if s.opt.Now != nil {
		now = s.opt.Now
	}
	cv.Health = privateHoldoutHealth(h, ver, pr.Exposures, now())
	released := pr.Private.ReleasedAt
	cv.ReleasedAt, cv.EpsilonSpent = &released, pr.Private.EpsilonSpent
	for _, m := range pr.Metrics {
		row := cohortRow{Metric: m.Name, Primary: m.Name == primary}
		if len(m.Comparisons) > 0 {
			cmp := m.Comparisons[0]
			row.Abs = fmtEffect(cmp.Absolute.Estimate, cmp.Absolute.CILow, cmp.Absolute.CIHigh)
			row.P = consoleNum(cmp.Absolute.PValue)
			if cmp.Relative != nil {
				row.Rel = fmtEffect(100*cmp.Relative.Estimate, 100*cmp.Relative.CILow, 100*cmp.Relative.CIHigh) + " %"
				if !cmp.NotEnoughSignal {
					point(m.Name, cmp.Relative.Estimate, cmp.Relative.CILow, cmp.Relative.CIHigh)
				}
			}
			row.Note = cmp.Note
		}
		cv.Rows = append(cv.Rows, row)
	}
	for name, why := range pr.Omitted {
		cv.Rows = append(cv.Rows, cohortRow{Metric: name, Primary: name == primary, Note: "not released privately: " + why})
	}
	return cv, pt, nil
}

// journeysData is the journeys page.
type journeysData struct {
	Journeys []journeyView
	// AsOf is when the comparisons shown were computed; Stale, when newer
	// ones are being computed, says so (viewAge.shown).
	AsOf, Stale string
}

type journeyView struct {
	J          *experiment.Journey
	Live       *journey.Guardrails
	Comparison *journey.Comparison
	Error      string // why there is no comparison
	Card       *scorer.Card
	CardNote   string
	Primary    string
}

func (s *Server) consoleJourneys(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if err := needs(k, experiment.RoleAnalyst, "the journeys page"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	js, err := s.db.ListJourneys(ctx)
	if err != nil {
		return err
	}
	now := s.opt.Now().UTC()
	to := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	from := to.Add(-7 * 24 * time.Hour) // the API's default window
	if s.opt.Journeys != nil {
		if err := s.opt.Journeys.Flush(ctx); err != nil {
			return err
		}
	}
	var d journeysData
	age := s.newViewAge()
	for _, j := range js {
		v := journeyView{J: j}
		if e, err := s.db.GetExperiment(ctx, j.Experiment); err == nil {
			v.Primary = e.Primary()
		}
		// Computed once per version of the data (after the flush above):
		// the roll-up of the window's decisions and the two results; the
		// newest comparison is shown while a newer one is computed.
		what := "journey comparison " + strconv.Quote(j.Key) + " " + from.Format(time.RFC3339) + " " + to.Format(time.RFC3339)
		cmp, err := s.recentResults(age).lookup(ctx, what, func(ctx context.Context) (any, error) {
			return journey.Compare(ctx, s.db, s.cachedResults(), j.Key, from, to)
		})
		switch {
		case errors.Is(err, errComputing):
			v.Error = computingText
		case err == nil:
			v.Comparison = cmp.(*journey.Comparison)
		case experiment.Is(err, experiment.InsufficientData) || experiment.Is(err, experiment.NotFound):
			_, _, v.Error = describe(err)
		default:
			return err
		}
		if s.opt.Journeys == nil {
			v.CardNote = "This server serves no journeys (no models loaded): live guardrails and the model card are unavailable."
		} else {
			for _, g := range s.opt.Journeys.Guardrails() {
				if g.Journey == j.Key {
					g := g
					v.Live = &g
				}
			}
			if m, ok := s.opt.Journeys.Models().Get(j.Model); !ok {
				v.CardNote = fmt.Sprintf("Model %q is not loaded.", j.Model)
			} else if m.Card == nil {
				v.CardNote = fmt.Sprintf("Model %q has no card (expected beside its file, see lift model train).", j.Model)
			} else {
				v.Card = m.Card
			}
		}
		d.Journeys = append(d.Journeys, v)
	}
	d.AsOf, d.Stale = age.shown()
	p := page2(k, se, "Journeys", "journeys", d)
	if age.pending() {
		p.Refresh = consoleRefresh
	}
	return s.render(c, http.StatusOK, "journeys.html", p)
}

// analysesData is the analyses page: the two forms with what was typed, the
// API's messages by form field, and the last answer with its charts.
type analysesData struct {
	Kind        string // the form that was sent: did or uplift
	V           map[string]string
	Errors      map[string]string
	Problem     string
	Metrics     []string
	Arms        []string // EXPERIMENT/VARIANT
	Experiments []string
	DiD         *didResult
	Uplift      *upliftResult
	Charts      []shownChart
}

type shownChart struct {
	Name string
	SVG  template.HTML
	Note string
}

func (s *Server) analysesForm(c echo.Context) (*analysesData, error) {
	ctx := c.Request().Context()
	d := &analysesData{V: map[string]string{}, Errors: map[string]string{}}
	ms, err := s.db.ListMetrics(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		d.Metrics = append(d.Metrics, m.Name)
	}
	es, err := s.db.ListExperiments(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		d.Experiments = append(d.Experiments, e.Key)
		for _, v := range e.Variants {
			d.Arms = append(d.Arms, e.Key+"/"+v.Name)
		}
	}
	return d, nil
}

func (s *Server) consoleAnalyses(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if err := needs(k, experiment.RoleAnalyst, "the analyses page"); err != nil {
		return err
	}
	d, err := s.analysesForm(c)
	if err != nil {
		return err
	}
	d.V["period"], d.V["learner"], d.V["base"], d.V["bootstrap"] = "day", "x", "trees", "200"
	return s.render(c, http.StatusOK, "analyses.html", page2(k, se, "Analyses", "analyses", d))
}

// analysisFields maps the API's field paths (their first part) to the form's
// fields, by form.
var analysisFields = map[string]map[string]string{
	"did": {"metric": "did_metric", "treated": "treated", "cohorts": "treated", "control": "control", "rollout": "rollout",
		"from": "from", "to": "to", "period": "period", "alpha": "did_alpha"},
	"uplift": {"experiment": "experiment", "treatment": "treatment", "control": "uplift_control", "metric": "uplift_metric",
		"features": "features", "learner": "learner", "base": "base", "seed": "seed", "test_share": "test_share", "bootstrap": "bootstrap", "alpha": "uplift_alpha"},
}

var fieldHead = regexp.MustCompile(`^[a-z_]+`)

// errorField is the form field of an API error (its field path's first part).
func errorField(kind string, err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		var x *experiment.Error
		if !errors.As(e, &x) {
			return ""
		}
		if x.Field != "" {
			return analysisFields[kind][fieldHead.FindString(x.Field)]
		}
		e = x
	}
	return ""
}

// respRecorder is the answer of an API handler called by a console page.
type respRecorder struct {
	h      http.Header
	status int
	b      bytes.Buffer
}

func (r *respRecorder) Header() http.Header         { return r.h }
func (r *respRecorder) Write(p []byte) (int, error) { return r.b.Write(p) }
func (r *respRecorder) WriteHeader(status int)      { r.status = status }

// callAPI runs an API handler on a JSON body as the session's key: the page
// and the route then share one pipeline, its checks and its messages.
func (s *Server) callAPI(c echo.Context, k *experiment.APIKey, h echo.HandlerFunc, query string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(c.Request().Context(), http.MethodPost, "/?"+query, bytes.NewReader(body))
	if err != nil {
		return nil, experiment.E("api.console", experiment.Internal, err)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := &respRecorder{h: http.Header{}, status: http.StatusOK}
	cc := s.echo.NewContext(req, rec)
	cc.Set(ctxKey, k)
	if err := h(cc); err != nil {
		return nil, err
	}
	return rec.b.Bytes(), nil
}

// group parses EXPERIMENT/VARIANT, or units separated by commas.
func groupOf(v string) *unitGroupIn {
	if e, variant, ok := strings.Cut(v, "/"); ok && !strings.Contains(v, ",") {
		return &unitGroupIn{Experiment: strings.TrimSpace(e), Variant: strings.TrimSpace(variant)}
	}
	g := &unitGroupIn{}
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			g.Units = append(g.Units, u)
		}
	}
	return g
}

// formTime accepts a date (midnight UTC) where the API wants RFC 3339.
func formTime(v string) string {
	if _, err := time.Parse("2006-01-02", v); err == nil {
		return v + "T00:00:00Z"
	}
	return v
}

func (s *Server) consoleRunAnalysis(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	const op = "api.console.analysis"
	if err := needs(k, experiment.RoleAnalyst, "the analyses page"); err != nil {
		return err
	}
	if !tokensEqual(se.csrf, c.FormValue("csrf")) || !sameOrigin(c) {
		return experiment.E(op, experiment.Forbidden, experiment.Field("csrf"), experiment.Errorf("the form's token does not match this session; reload the page"))
	}
	d, err := s.analysesForm(c)
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return experiment.E(op, experiment.Invalid, err)
	}
	for n, v := range form {
		if n != "csrf" && len(v) > 0 {
			d.V[n] = strings.TrimSpace(v[0])
		}
	}
	d.Kind = d.V["kind"]
	num := func(field string, dst *float64) {
		if v := d.V[field]; v != "" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				d.Errors[field] = field + ": must be a number, got " + strconv.Quote(v)
				return
			}
			*dst = x
		}
	}
	var body []byte
	var h echo.HandlerFunc
	var charts []string
	switch d.Kind {
	case "did":
		req := didRequest{Metric: d.V["did_metric"], Rollout: formTime(d.V["rollout"]), From: formTime(d.V["from"]), To: formTime(d.V["to"]), Period: d.V["period"], EventStudy: d.V["event_study"] != ""}
		if t := d.V["treated"]; t != "" {
			req.Treated = groupOf(t)
		}
		switch ctl := d.V["control"]; ctl {
		case "rest":
			req.Control = json.RawMessage(`"rest"`)
		case "":
		default:
			req.Control, _ = json.Marshal(groupOf(ctl))
		}
		num("did_alpha", &req.Alpha)
		body, _ = json.Marshal(req)
		h, charts = s.postDiD, []string{"trends"}
		if req.EventStudy {
			charts = append(charts, "event_study")
		}
	case "uplift":
		req := upliftRequest{Experiment: d.V["experiment"], Treatment: d.V["treatment"], Control: d.V["uplift_control"], Metric: d.V["uplift_metric"], Learner: d.V["learner"], Base: d.V["base"]}
		for _, f := range strings.Split(d.V["features"], ",") {
			if f = strings.TrimSpace(f); f != "" {
				req.Features = append(req.Features, f)
			}
		}
		num("test_share", &req.TestShare)
		num("uplift_alpha", &req.Alpha)
		if v := d.V["bootstrap"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				d.Errors["bootstrap"] = "bootstrap: must be a whole number, got " + strconv.Quote(v)
			}
			req.Bootstrap = &n
		}
		if v := d.V["seed"]; v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				d.Errors["seed"] = "seed: must be a whole number from 0, got " + strconv.Quote(v)
			}
			req.Seed = &n
		}
		body, _ = json.Marshal(req)
		h, charts = s.postUplift, []string{"qini", "uplift"}
	default:
		return experiment.E(op, experiment.Invalid, experiment.Field("kind"), experiment.Errorf("must be did or uplift, got %q", d.Kind))
	}
	status := http.StatusOK
	if len(d.Errors) == 0 {
		out, err := s.callAPI(c, k, h, "", body)
		if err == nil {
			if d.Kind == "did" {
				d.DiD = &didResult{}
				err = json.Unmarshal(out, d.DiD)
			} else {
				d.Uplift = &upliftResult{}
				err = json.Unmarshal(out, d.Uplift)
			}
			if err != nil {
				return experiment.E(op, experiment.Internal, err)
			}
			for _, ch := range charts {
				svg, err := s.callAPI(c, k, h, url.Values{"format": {"svg"}, "chart": {ch}}.Encode(), body)
				sc := shownChart{Name: ch, SVG: svgElement(svg)}
				if err != nil {
					_, _, sc.Note = describe(err)
				}
				d.Charts = append(d.Charts, sc)
			}
		} else {
			kind := experiment.KindOf(err)
			if !slices.Contains([]experiment.Kind{experiment.Invalid, experiment.NotFound, experiment.InsufficientData, experiment.Conflict}, kind) {
				return err
			}
			st, _, msg := describe(err)
			status = st
			if f := errorField(d.Kind, err); f != "" {
				d.Errors[f] = msg
			} else {
				d.Problem = msg
			}
		}
	} else {
		status = http.StatusBadRequest
	}
	return s.render(c, status, "analyses.html", page2(k, se, "Analyses", "analyses", d))
}

// privacyData is the privacy page: every scope with a budget.
type privacyData struct {
	Scopes   []scopeView
	NoBudget []string // scopes without a budget
}

type scopeView struct {
	Scope, Label, Link string
	A                  *experiment.PrivacyAccount // its Entries: one page of the ledger, newest first
	Prev, NextPage     string                     // links to the ledger's newer and older pages
}

// ledgerPage is how many ledger entries of a scope the privacy page shows at
// once; ?scope=SCOPE&page=N pages through the rest.
const ledgerPage = 20

func (s *Server) consolePrivacy(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	ctx := c.Request().Context()
	es, err := s.db.ListExperiments(ctx)
	if err != nil {
		return err
	}
	hs, err := s.db.ListHoldouts(ctx)
	if err != nil {
		return err
	}
	var scopes []scopeView
	for _, e := range es {
		scopes = append(scopes, scopeView{Scope: privacy.ExperimentScope(e.Key), Label: "experiment " + e.Key, Link: "/experiments/" + e.Key})
	}
	for _, h := range hs {
		scopes = append(scopes, scopeView{Scope: privacy.HoldoutScope(h.Name), Label: "holdout " + h.Name, Link: "/holdouts#holdout-" + h.Name})
	}
	page, err := pageParam(c)
	if err != nil {
		return err
	}
	if only := c.QueryParam("scope"); only != "" {
		i := slices.IndexFunc(scopes, func(sc scopeView) bool { return sc.Scope == only })
		if i < 0 {
			return experiment.E("api.console", experiment.NotFound, experiment.Field("scope"), experiment.Errorf("no experiment or holdout has the privacy scope %q", only))
		}
		scopes = scopes[i : i+1]
	} else if page > 1 {
		return experiment.E("api.console", experiment.Invalid, experiment.Field("page"), experiment.Errorf("a page of the ledger is a page of one scope: give scope too"))
	}
	var d privacyData
	ledger := privacy.NewLedger(s.db.Ledger())
	for _, sc := range scopes {
		// The newest entries up to this page's, and one more: whether
		// there is an older page.
		a, err := ledger.Account(ctx, sc.Scope, page*ledgerPage+1)
		switch {
		case experiment.Is(err, experiment.NotFound):
			d.NoBudget = append(d.NoBudget, sc.Label)
			continue
		case err != nil:
			return err
		}
		link := func(p int) string {
			return "/privacy?" + url.Values{"scope": {sc.Scope}, "page": {strconv.Itoa(p)}}.Encode()
		}
		if len(a.Entries) > page*ledgerPage {
			sc.NextPage = link(page + 1)
		}
		if page > 1 {
			sc.Prev = link(page - 1)
		}
		a.Entries = a.Entries[min((page-1)*ledgerPage, len(a.Entries)):min(page*ledgerPage, len(a.Entries))]
		sc.A = a
		d.Scopes = append(d.Scopes, sc)
	}
	return s.render(c, http.StatusOK, "privacy.html", page2(k, se, "Privacy", "privacy", d))
}
