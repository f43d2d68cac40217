package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/store"
)

// The console's analysis and personalization views (docs/console.md): a geo
// analysis (the pipeline of POST /v1/analyses/geo) from a form, over stored
// events or an uploaded panel, and its page and charts; a unit's consent
// history, data export, reset and erasure (admins); a decision's provenance.
// Every number comes from the API's own functions.

// consoleViewRoutes registers the pages of this file.
func (s *Server) consoleViewRoutes() {
	html := "text/html"
	s.route(http.MethodGet, "/analyses/geo", Public, s.consolePage(s.consoleGeoForm), op{Summary: "The console: the analyst's form for a geo analysis (synthetic control)", ContentType: html})
	s.route(http.MethodPost, "/analyses/geo", Public, s.consolePage(s.consoleGeoRun), op{
		Summary: "Run a geo analysis from the console's form (the pipeline of POST /v1/analyses/geo) and show its page; the API's validation messages are shown next to the fields", ContentType: html})
	s.route(http.MethodGet, "/units", Public, s.consolePage(s.consoleUnit), op{Summary: "The console: a unit's consent history, and for admins its data export, profile reset and erasure",
		Query: []param{{Name: "unit", Type: "string", Description: "the unit's id"}}, ContentType: html})
	s.route(http.MethodGet, "/units/data.json", Public, s.consolePage(s.consoleUnitExport), op{Summary: "The console's download of everything Lift holds about a unit (GET /v1/units/ID/data; admins)",
		Query: []param{{Name: "unit", Type: "string"}}, ContentType: "application/json"})
	s.route(http.MethodPost, "/units/reset", Public, s.consolePage(s.consoleUnitReset), op{Summary: "Reset a unit's personalization profile from the console (admins; form fields unit, confirm, csrf)", ContentType: html})
	s.route(http.MethodPost, "/units/erase", Public, s.consolePage(s.consoleUnitErase), op{Summary: "Erase a unit from the console (admins; form fields unit, confirm: the unit's id typed again, csrf)", ContentType: html})
	s.route(http.MethodGet, "/journeys/:key/decisions/:id", Public, s.consolePage(s.consoleDecision), op{Summary: "The console: why a unit saw a decision's items (GET /v1/journeys/KEY/decisions/ID)", ContentType: html})
}

// geoForm is the geo page: the values typed, the API's message per form field,
// and the analysis' page once run.
type geoForm struct {
	V       map[string]string
	Metrics []string
	Errors  map[string]string
	Problem string
	Result  template.HTML // reports.GeoPage.HTMLBody
}

func (s *Server) geoFormData(c echo.Context) (*geoForm, error) {
	f := &geoForm{V: map[string]string{"source": "stored", "period": "day", "method": "scm", "unit_col": "unit", "period_col": "period", "value_col": "value"}, Errors: map[string]string{}}
	ms, err := s.db.ListMetrics(c.Request().Context())
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Aggregation != experiment.Ratio && m.Aggregation != experiment.Mean {
			f.Metrics = append(f.Metrics, m.Name)
		}
	}
	return f, nil
}

// needsAnalyst refuses a viewer: the analyses have exact numbers only, and no
// DP release.
func needsAnalyst(k *experiment.APIKey, what string) error {
	if k.Role.SeesExact() {
		return nil
	}
	return experiment.E("api.console", experiment.Forbidden, experiment.Errorf("API key %q has role %q; %s shows exact numbers only (it has no differentially private release), so it needs role analyst or admin", k.Name, k.Role, what))
}

func (s *Server) consoleGeoForm(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if err := needsAnalyst(k, "a geo analysis"); err != nil {
		return err
	}
	f, err := s.geoFormData(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "views-geo.html", page2(k, se, "Geo analysis", "geo", f))
}

// geoFormFields maps the API's field paths to the geo form's fields.
var geoFormFields = map[string]string{
	"rows": "panel", "panel": "panel", "metric": "metric", "market": "market", "from": "from", "to": "to", "period": "period",
	"treated": "treated", "start": "start", "method": "method", "alpha": "alpha", "lambda": "lambda",
}

// dateTime reads a date (2026-03-01) as its midnight UTC in RFC 3339; other
// text is passed on for the API to judge.
func dateTime(v string) string {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.Format(time.RFC3339)
	}
	return v
}

// geoPanelRows reads an uploaded CSV panel with a header naming the unit,
// period and value columns.
func geoPanelRows(r io.Reader, unitCol, periodCol, valueCol string) ([]geoRowIn, error) {
	const op = "api.console.geo"
	bad := func(format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field("panel"), experiment.Errorf(format, args...))
	}
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, bad("must be CSV with a header row: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	var idx [3]int
	for j, name := range []string{unitCol, periodCol, valueCol} {
		i, ok := col[name]
		if !ok {
			return nil, bad("the header has no column %q (it has %s)", name, strings.Join(header, ", "))
		}
		idx[j] = i
	}
	var rows []geoRowIn
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("%v", err)
		}
		if len(rows) == MaxGeoRows {
			return nil, experiment.E(op, experiment.TooLarge, experiment.Field("panel"), experiment.Errorf("more than %d rows", MaxGeoRows))
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[idx[2]]), 64)
		if err != nil {
			return nil, bad("line %d: %s must be a number, got %q", line, valueCol, rec[idx[2]])
		}
		rows = append(rows, geoRowIn{Unit: strings.TrimSpace(rec[idx[0]]), Period: strings.TrimSpace(rec[idx[1]]), Value: &v})
	}
	return rows, nil
}

func (s *Server) consoleGeoRun(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	const op = "api.console.geo"
	if err := needsAnalyst(k, "a geo analysis"); err != nil {
		return err
	}
	if !tokensEqual(se.csrf, c.FormValue("csrf")) || !sameOrigin(c) {
		return experiment.E(op, experiment.Forbidden, experiment.Field("csrf"), experiment.Errorf("the form's token does not match this session; reload the page"))
	}
	f, err := s.geoFormData(c)
	if err != nil {
		return err
	}
	for _, n := range []string{"source", "metric", "market", "from", "to", "period", "treated", "start", "method", "intercept", "panel", "unit_col", "period_col", "value_col"} {
		if v := strings.TrimSpace(c.FormValue(n)); v != "" || n == "intercept" || n == "market" {
			f.V[n] = v
		}
	}
	req := geoRequest{Method: f.V["method"], Intercept: f.V["intercept"] != ""}
	for _, t := range strings.Split(f.V["treated"], ",") {
		if t = strings.TrimSpace(t); t != "" {
			req.Treated = append(req.Treated, t)
		}
	}
	if f.V["source"] == "upload" {
		req.Start = f.V["start"]
		var panel io.Reader = strings.NewReader(f.V["panel"])
		if fh, err := c.FormFile("file"); err == nil {
			file, err := fh.Open()
			if err != nil {
				return experiment.E(op, experiment.Invalid, experiment.Field("panel"), err)
			}
			defer file.Close()
			panel = file
		}
		rows, err := geoPanelRows(panel, f.V["unit_col"], f.V["period_col"], f.V["value_col"])
		if err != nil {
			return s.geoFormError(c, k, se, f, err)
		}
		req.Rows, req.Outcome = rows, f.V["value_col"]
	} else {
		req.Metric, req.Market, req.Period = f.V["metric"], f.V["market"], f.V["period"]
		req.From, req.To, req.Start = dateTime(f.V["from"]), dateTime(f.V["to"]), dateTime(f.V["start"])
	}
	ga, err := s.geoAnalysis(c.Request().Context(), &req)
	if err != nil {
		return s.geoFormError(c, k, se, f, err)
	}
	g, err := GeoPage(ga.rep, ga.outcome, len(ga.panel.Units), len(ga.panel.Periods))
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := g.HTMLBody(&b, reports.RenderOptions{}); err != nil {
		return err
	}
	f.Result = template.HTML(b.String()) // rendered by reports' html/template
	return s.render(c, http.StatusOK, "views-geo.html", page2(k, se, "Geo analysis", "geo", f))
}

// geoFormError shows the form again with the API's message next to the field
// it names (a 4xx), or fails the page.
func (s *Server) geoFormError(c echo.Context, k *experiment.APIKey, se *consoleSession, f *geoForm, err error) error {
	kind := experiment.KindOf(err)
	if kind != experiment.Invalid && kind != experiment.InsufficientData && kind != experiment.NotFound && kind != experiment.TooLarge {
		return err
	}
	status, _, msg := describe(err)
	fld := ""
	for e := err; e != nil && fld == ""; e = errors.Unwrap(e) {
		var x *experiment.Error
		if !errors.As(e, &x) {
			break
		}
		if x.Field != "" {
			p := x.Field
			if i := strings.IndexAny(p, "[."); i > 0 {
				p = p[:i]
			}
			fld = geoFormFields[p]
		}
		e = x
	}
	if fld != "" {
		f.Errors[fld] = msg
	} else {
		f.Problem = msg
	}
	return s.render(c, status, "views-geo.html", page2(k, se, "Geo analysis", "geo", f))
}

// unitPage is the unit page: the consent history and, after a reset or an
// erasure, what it did.
type unitPage struct {
	Unit    string
	History []experiment.Consent
	Admin   bool
	Reset   *store.ProfileReset
	Erased  *store.Erasure
	Errors  map[string]string
}

// unitOf reads the unit of a console form or query (field unit).
func unitOf(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", experiment.E("api.console.units", experiment.Invalid, experiment.Field("unit"), experiment.Errorf("is required: the unit's id"))
	}
	if p := experiment.IdentProblem(v); p != "" {
		return "", experiment.E("api.console.units", experiment.Invalid, experiment.Field("unit"), experiment.Errorf("%s", p))
	}
	return v, nil
}

func (s *Server) unitPageData(c echo.Context, k *experiment.APIKey, unit string) (*unitPage, error) {
	u := &unitPage{Unit: unit, Admin: k.Role.Allows(experiment.RoleAdmin), Errors: map[string]string{}}
	if unit == "" {
		return u, nil
	}
	h, err := s.db.ConsentHistory(c.Request().Context(), unit)
	if err != nil {
		return nil, err
	}
	u.History = h
	return u, nil
}

func (s *Server) consoleUnit(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if err := needsAnalyst(k, "a unit's data"); err != nil {
		return err
	}
	unit := ""
	if c.QueryParam("unit") != "" {
		var err error
		if unit, err = unitOf(c.QueryParam("unit")); err != nil {
			return err
		}
	}
	u, err := s.unitPageData(c, k, unit)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "views-unit.html", page2(k, se, "Units", "units", u))
}

// needsAdminForm checks a unit form: an admin key, the session's CSRF token,
// a form from this site; it returns the unit.
func needsAdminForm(c echo.Context, k *experiment.APIKey, se *consoleSession, what string) (string, error) {
	const op = "api.console.units"
	if !k.Role.Allows(experiment.RoleAdmin) {
		return "", experiment.E(op, experiment.Forbidden, experiment.Errorf("API key %q has role %q; %s needs role admin", k.Name, k.Role, what))
	}
	if !tokensEqual(se.csrf, c.FormValue("csrf")) || !sameOrigin(c) {
		return "", experiment.E(op, experiment.Forbidden, experiment.Field("csrf"), experiment.Errorf("the form's token does not match this session; reload the page"))
	}
	return unitOf(c.FormValue("unit"))
}

func (s *Server) consoleUnitExport(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if !k.Role.Allows(experiment.RoleAdmin) {
		return experiment.E("api.console.units", experiment.Forbidden, experiment.Errorf("API key %q has role %q; a unit's data export needs role admin", k.Name, k.Role))
	}
	unit, err := unitOf(c.QueryParam("unit"))
	if err != nil {
		return err
	}
	c.SetParamNames("unit")
	c.SetParamValues(url.PathEscape(unit))
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "unit-data.json"))
	return s.exportUnit(c)
}

func (s *Server) consoleUnitReset(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	unit, err := needsAdminForm(c, k, se, "resetting a unit's profile")
	if err != nil {
		return err
	}
	u, err := s.unitPageData(c, k, unit)
	if err != nil {
		return err
	}
	if c.FormValue("confirm") == "" {
		u.Errors["reset"] = "confirm: tick the box to confirm the reset"
		return s.render(c, http.StatusBadRequest, "views-unit.html", page2(k, se, "Units", "units", u))
	}
	if u.Reset, err = s.db.ResetProfile(c.Request().Context(), actor(c), unit); err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "views-unit.html", page2(k, se, "Units", "units", u))
}

func (s *Server) consoleUnitErase(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	unit, err := needsAdminForm(c, k, se, "erasing a unit")
	if err != nil {
		return err
	}
	u, err := s.unitPageData(c, k, unit)
	if err != nil {
		return err
	}
	if strings.TrimSpace(c.FormValue("confirm")) != unit {
		u.Errors["erase"] = "confirm: type the unit's id again to confirm the erasure"
		return s.render(c, http.StatusBadRequest, "views-unit.html", page2(k, se, "Units", "units", u))
	}
	if u.Erased, err = s.erase(c.Request().Context(), actor(c), unit); err != nil {
		return err
	}
	u.History = nil // erased with the unit
	return s.render(c, http.StatusOK, "views-unit.html", page2(k, se, "Units", "units", u))
}

// decisionPage is a decision's provenance, decoded for the page.
type decisionPage struct {
	D          *store.DecisionRecord
	Items      []journey.Item
	Provenance *journey.Provenance
}

func (s *Server) consoleDecision(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	const op = "api.console.decision"
	if err := needsAnalyst(k, "a decision's provenance"); err != nil {
		return err
	}
	d, err := s.db.GetDecision(c.Request().Context(), c.Param("key"), c.Param("id"))
	if err != nil {
		return err
	}
	p := &decisionPage{D: d}
	if err := json.Unmarshal(d.Items, &p.Items); err != nil {
		return experiment.E(op, experiment.Internal, err)
	}
	if len(d.Provenance) > 0 {
		p.Provenance = &journey.Provenance{}
		if err := json.Unmarshal(d.Provenance, p.Provenance); err != nil {
			return experiment.E(op, experiment.Internal, err)
		}
	}
	return s.render(c, http.StatusOK, "views-decision.html", page2(k, se, "Why these items", "units", p))
}
