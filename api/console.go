package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// The console: server-rendered pages at / for people with an API key
// (docs/console.md). A key is typed once into the sign-in form; the browser
// then holds only a session id (cookie lift_session: HttpOnly, SameSite=Strict,
// Secure over TLS); the store keeps the id's SHA-256 with the key's id, never
// its secret, so a restart signs nobody out. Sessions end at logout, after
// Options.SessionTTL, or when the key is revoked. Every form carries a CSRF token.
// Pages read through the same compositions as the API (BuildReport) under the
// key's role: viewers see DP numbers only.

//go:embed console
var consoleFS embed.FS

var consoleTemplates = template.Must(template.New("console").Funcs(template.FuncMap{
	"date": func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return t.UTC().Format("2006-01-02")
	},
	"pct":  func(x float64) string { return strconv.FormatFloat(100*x, 'f', -1, 64) + "%" },
	"dict": func(e map[string]string, f string) map[string]any { return map[string]any{"E": e, "F": f} },
	"list": func(xs ...string) []string { return xs },
	"num":  consoleNum,
	"x100": func(x float64) float64 { return 100 * x },
	"args": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"pct1": func(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" },
	"deref": func(x *float64) float64 {
		if x == nil {
			return 0
		}
		return *x
	},
	"day": func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"svg": func(b []byte) template.HTML { return template.HTML(b) }, // charts rendered by reports
}).ParseFS(consoleFS, "console/*.html"))

// consoleNum prints a number of a page with 4 significant digits (whole
// numbers as they are).
func consoleNum(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return strconv.FormatFloat(x, 'g', 4, 64)
}

const (
	sessionCookie = "lift_session"
	loginCookie   = "lift_login" // the sign-in form's CSRF token (double submit)
	pageSize      = 50
)

// consoleCSP is the console's Content-Security-Policy: the API's, but its own
// stylesheet may load and its forms may post to this server.
const consoleCSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// consoleSession is one signed-in browser.
type consoleSession struct {
	keyID   string
	csrf    string
	expires time.Time
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// startSession opens a session for the key and returns its id. The store
// keeps the session under the SHA-256 of the id, so that sessions outlive a
// restart of the server.
func (s *Server) startSession(ctx context.Context, keyID string) (string, error) {
	id, err := randomToken()
	if err != nil {
		return "", err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", err
	}
	now := s.opt.Now()
	if err := s.db.StartConsoleSession(ctx, id, store.ConsoleSession{KeyID: keyID, CSRF: csrf, Expires: now.Add(s.opt.SessionTTL)}, now); err != nil {
		return "", err
	}
	return id, nil
}

// session returns the live session of id, or nil when there is none (unknown,
// ended or expired).
func (s *Server) session(ctx context.Context, id string) (*consoleSession, error) {
	se, err := s.db.GetConsoleSession(ctx, id, s.opt.Now())
	if experiment.KindOf(err) == experiment.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &consoleSession{keyID: se.KeyID, csrf: se.CSRF, expires: se.Expires}, nil
}

// consoleRoutes: the console's pages. They are Public in the route table
// because they authenticate by session, not by the Authorization header.
func (s *Server) consoleRoutes() {
	html := "text/html"
	s.route(http.MethodGet, "/", Public, s.consolePage(s.consoleExperiments), op{Summary: "The console: experiments (signed-in browsers; otherwise a redirect to /login)", ContentType: html,
		Query: []param{{Name: "status", Type: "string", Description: "draft, running or stopped"}, {Name: "layer", Type: "string"}, {Name: "holdout", Type: "string"},
			{Name: "q", Type: "string", Description: "words in the key, name or description"}, {Name: "page", Type: "integer", Description: "page of 50, from 1"}}})
	s.route(http.MethodGet, "/login", Public, s.loginForm, op{Summary: "The console's sign-in form", ContentType: html})
	s.route(http.MethodPost, "/login", Public, s.login, op{Summary: "Sign in to the console with an API key (form fields key and csrf)", ContentType: html})
	s.route(http.MethodPost, "/logout", Public, s.consolePage(s.logout), op{Summary: "Sign out of the console (form field csrf)", ContentType: html})
	s.route(http.MethodGet, "/experiments/new", Public, s.consolePage(s.consoleNewExperiment), op{Summary: "The console: the admin's form for a new experiment", ContentType: html})
	s.route(http.MethodPost, "/experiments/new", Public, s.consolePage(s.consoleCreateExperiment), op{Summary: "Create (and optionally start) an experiment from the console's form; the API's validation messages are shown next to the fields", ContentType: html})
	s.route(http.MethodGet, "/experiments/:key", Public, s.consolePage(s.consoleExperiment), op{Summary: "The console: one experiment, its design and report (DP numbers for viewers)", ContentType: html})
	s.route(http.MethodGet, "/experiments/:key/files/:file", Public, s.consolePage(s.consoleDownload), op{
		Summary:     "The console's downloads: report.html, results.csv, results.parquet and the charts (NAME.svg, NAME.png, NAME.pdf)",
		Description: "The same documents as the /v1/experiments/KEY/ routes, for the signed-in key's role.", ContentType: "application/octet-stream"})
	s.route(http.MethodGet, "/console.css", Public, s.consoleCSS, op{Summary: "The console's stylesheet", ContentType: "text/css"})
	s.consoleViewRoutes()   // console_views.go
	s.consoleMetricRoutes() // console_metrics.go
}

// signedIn is the key of the request's session, with the session.
func (s *Server) signedIn(c echo.Context) (*experiment.APIKey, *consoleSession, error) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil, nil
	}
	se, err := s.session(c.Request().Context(), ck.Value)
	if se == nil || err != nil {
		return nil, nil, err
	}
	keys, err := s.db.ListKeys(c.Request().Context())
	if err != nil {
		return nil, nil, err
	}
	for _, k := range keys {
		if k.ID == se.keyID && k.RevokedAt == nil && k.Role.Allows(experiment.RoleViewer) {
			return k, se, nil
		}
	}
	// The key was revoked.
	return nil, nil, s.db.EndConsoleSession(c.Request().Context(), ck.Value)
}

type consoleHandler func(c echo.Context, k *experiment.APIKey, se *consoleSession) error

// consolePage wraps a console handler: the console's CSP, a signed-in key (else
// a redirect to the sign-in form that comes back here) and errors as pages.
func (s *Server) consolePage(h consoleHandler) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Content-Security-Policy", consoleCSP)
		c.Response().Header().Set("Cache-Control", "no-store")
		k, se, err := s.signedIn(c)
		if err != nil {
			return s.consoleError(c, nil, nil, err)
		}
		if k == nil {
			next := c.Request().URL.Path
			if c.Request().Method != http.MethodGet {
				next = "/"
			}
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(next))
		}
		c.Set(ctxKey, k)
		if err := h(c, k, se); err != nil {
			return s.consoleError(c, k, se, err)
		}
		return nil
	}
}

// page is what every console page's layout needs.
type page struct {
	Title    string
	Key      *experiment.APIKey // nil on the sign-in page
	CSRF     string
	Nav      string    // the current section
	Sections []section // the navigation: the sections the key's role may open
	Data     any
	// Refresh, when set, is how many seconds the browser waits before it
	// loads the page again: a page whose numbers are being computed.
	Refresh int
}

// section is one entry of the console's navigation.
type section struct {
	Nav, Path, Label string
	Role             experiment.Role // the least role that may open it
}

// consoleSections lists the console's sections in the order of the
// navigation; a new page adds its line here (and registers its routes in
// consoleRoutes).
func consoleSections() []section {
	const viewer, analyst = experiment.RoleViewer, experiment.RoleAnalyst
	return []section{
		{"experiments", "/", "Experiments", viewer},
		{"holdouts", "/holdouts", "Holdouts", viewer},
		{"metrics", metricsPath, "Metrics", viewer},       // console_metrics.go
		{"templates", "/templates", "Templates", analyst}, // console_metrics.go
		{"journeys", "/journeys", "Journeys", analyst},
		{"analyses", "/analyses", "Analyses", analyst},
		{"geo", "/analyses/geo", "Geo", analyst}, // console_views.go
		{"units", "/units", "Units", analyst},    // console_views.go
		{"privacy", "/privacy", "Privacy", viewer},
		{"summaries", "/summaries", "Summaries", viewer},
	}
}

func (s *Server) render(c echo.Context, status int, name string, p page) error {
	if p.Key != nil {
		for _, sec := range consoleSections() {
			if p.Key.Role.Allows(sec.Role) {
				p.Sections = append(p.Sections, sec)
			}
		}
	}
	var b bytes.Buffer
	if err := consoleTemplates.ExecuteTemplate(&b, name, p); err != nil {
		return experiment.E("api.console", experiment.Internal, err)
	}
	return c.HTMLBlob(status, b.Bytes())
}

// consoleError answers an error as a page with the API's status and message.
func (s *Server) consoleError(c echo.Context, k *experiment.APIKey, se *consoleSession, err error) error {
	status, code, msg := describe(err)
	c.Response().Header().Del("Content-Disposition")
	if status >= 500 {
		s.log.Error("console request failed", "request_id", requestIDOf(c), "path", logPath(c), "error", err.Error())
	}
	p := page{Title: http.StatusText(status), Key: k}
	if se != nil {
		p.CSRF = se.csrf
	}
	p.Data = map[string]string{"Code": code, "Message": msg, "RequestID": requestIDOf(c)}
	return s.render(c, status, "error.html", p)
}

func (s *Server) consoleCSS(c echo.Context) error {
	b, err := consoleFS.ReadFile("console/console.css")
	if err != nil {
		return experiment.E("api.consoleCSS", experiment.Internal, err)
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", b)
}

// safeNext is where to go after signing in: a path on this server, else /.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

type loginData struct {
	Next, Error string
}

func (s *Server) loginForm(c echo.Context) error {
	return s.showLogin(c, http.StatusOK, safeNext(c.QueryParam("next")), "")
}

// showLogin renders the sign-in form with a fresh CSRF token in a cookie and
// in the form.
func (s *Server) showLogin(c echo.Context, status int, next, msg string) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("Cache-Control", "no-store")
	tok, err := randomToken()
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https", MaxAge: 3600})
	return s.render(c, status, "login.html", page{Title: "Sign in", CSRF: tok, Data: loginData{Next: next, Error: msg}})
}

// sameOrigin rejects a form posted from another site when the browser says
// where it comes from.
func sameOrigin(c echo.Context) bool {
	o := c.Request().Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == c.Request().Host
}

func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (s *Server) login(c echo.Context) error {
	const op = "api.login"
	next := safeNext(c.FormValue("next"))
	ck, err := c.Cookie(loginCookie)
	if err != nil || !tokensEqual(ck.Value, c.FormValue("csrf")) || !sameOrigin(c) {
		return s.showLogin(c, http.StatusForbidden, next, "csrf: the form expired or came from another site; sign in again")
	}
	secret := strings.TrimSpace(c.FormValue("key"))
	if secret == "" {
		return s.showLogin(c, http.StatusBadRequest, next, "key: enter your API key")
	}
	k, err := s.db.Authenticate(c.Request().Context(), secret)
	if err != nil {
		if experiment.KindOf(err) == experiment.Unauthorized {
			return s.showLogin(c, http.StatusUnauthorized, next, "key: unknown or revoked API key")
		}
		return err
	}
	if !k.Role.Allows(experiment.RoleViewer) {
		return s.showLogin(c, http.StatusForbidden, next, fmt.Sprintf("key: API key %q has role %q; the console needs role viewer, analyst or admin", k.Name, k.Role))
	}
	id, err := s.startSession(c.Request().Context(), k.ID)
	if err != nil {
		return experiment.E(op, experiment.Internal, err)
	}
	c.Set(ctxKey, k)
	c.SetCookie(&http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https",
		MaxAge: int(s.opt.SessionTTL / time.Second)})
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if !tokensEqual(se.csrf, c.FormValue("csrf")) || !sameOrigin(c) {
		return experiment.E("api.logout", experiment.Forbidden, experiment.Field("csrf"), experiment.Errorf("the form's token does not match this session; reload the page"))
	}
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if err := s.db.EndConsoleSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https"})
	return c.Redirect(http.StatusSeeOther, "/login")
}

// experimentsData is the experiments page: the filters, their choices and one
// page of the matching experiments.
type experimentsData struct {
	Status, Layer, Holdout, Q string
	Statuses                  []string
	Layers, Holdouts          []string
	Experiments               []*experiment.Experiment
	Verdicts                  map[string]verdictBadge // by experiment key
	Total, Page, Pages        int
	Prev, NextPage            string
}

func (s *Server) consoleExperiments(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	es, err := s.db.ListExperiments(c.Request().Context())
	if err != nil {
		return err
	}
	d := experimentsData{Status: c.QueryParam("status"), Layer: c.QueryParam("layer"), Holdout: c.QueryParam("holdout"), Q: strings.TrimSpace(c.QueryParam("q")),
		Statuses: []string{string(experiment.Draft), string(experiment.Running), string(experiment.Stopped)}}
	if d.Status != "" && !slices.Contains(d.Statuses, d.Status) {
		return experiment.E("api.console", experiment.Invalid, experiment.Field("status"), experiment.Errorf("must be draft, running or stopped, got %q", d.Status))
	}
	page, err := pageParam(c)
	if err != nil {
		return err
	}
	q := strings.ToLower(d.Q)
	for _, e := range es {
		if e.Layer != "" && !slices.Contains(d.Layers, e.Layer) {
			d.Layers = append(d.Layers, e.Layer)
		}
		if e.Holdout != "" && !slices.Contains(d.Holdouts, e.Holdout) {
			d.Holdouts = append(d.Holdouts, e.Holdout)
		}
		if d.Status != "" && string(e.Status) != d.Status || d.Layer != "" && e.Layer != d.Layer || d.Holdout != "" && e.Holdout != d.Holdout ||
			q != "" && !strings.Contains(strings.ToLower(e.Key+" "+e.Name+" "+e.Description), q) {
			continue
		}
		d.Experiments = append(d.Experiments, e)
	}
	slices.Sort(d.Layers)
	slices.Sort(d.Holdouts)
	d.Total, d.Page = len(d.Experiments), page
	d.Pages = max(1, (d.Total+pageSize-1)/pageSize)
	lo, hi := min((page-1)*pageSize, d.Total), min(page*pageSize, d.Total)
	d.Experiments = d.Experiments[lo:hi]
	d.Verdicts = map[string]verdictBadge{}
	for _, e := range d.Experiments {
		v, err := s.verdictOf(c.Request().Context(), e, k)
		if err != nil {
			return err
		}
		d.Verdicts[e.Key] = v
	}
	link := func(p int) string {
		v := c.QueryParams()
		v.Set("page", strconv.Itoa(p))
		return "/?" + v.Encode()
	}
	if page > 1 {
		d.Prev = link(page - 1)
	}
	if page < d.Pages {
		d.NextPage = link(page + 1)
	}
	return s.render(c, http.StatusOK, "experiments.html", page2(k, se, "Experiments", "experiments", d))
}

// pageParam is a list's page number (?page=N, from 1; default 1).
func pageParam(c echo.Context) (int, error) {
	v := c.QueryParam("page")
	if v == "" {
		return 1, nil
	}
	page, err := strconv.Atoi(v)
	if err != nil || page < 1 {
		return 0, experiment.E("api.console", experiment.Invalid, experiment.Field("page"), experiment.Errorf("must be a whole number from 1, got %q", v))
	}
	return page, nil
}

// verdictBadge is an experiment's verdict in the list: Class is better,
// worse, none (no clear change) or pending (no result to judge); Why is the
// badge's title.
type verdictBadge struct{ Text, Class, Why string }

// verdictOf is the verdict of the experiment's report for the key's role (DP
// numbers for viewers, the period's release: made by its first reader, as the
// experiment page's; exact keys, the newest stored results snapshot, which
// opening the experiment page refreshes), read from the rows of its primary metric (every row
// when none is primary) with reports.Result.Verdict, the report's own
// column: an SRM alarm first, then worse if any row is worse, better if any is
// better, else no clear change.
func (s *Server) verdictOf(ctx context.Context, e *experiment.Experiment, k *experiment.APIKey) (verdictBadge, error) {
	if e.Status == experiment.Draft {
		return verdictBadge{"not started", "pending", "a draft has no exposures yet"}, nil
	}
	o := ReportOptions{Private: !k.Role.SeesExact(), Who: k.Name, Now: s.opt.Now, TableOnly: true}
	var asOf string
	if !o.Private {
		// The newest stored results (the experiment page, the API's results
		// and the refresh job store them): recomputing every listed
		// experiment would cost seconds on a large file.
		snaps, err := s.db.ResultSnapshots(ctx, "experiment", e.Key, 1)
		if err != nil {
			return verdictBadge{}, err
		}
		if len(snaps) == 0 {
			return verdictBadge{"not computed", "pending", "no stored results yet: open the experiment to compute them"}, nil
		}
		if o.Results, err = s.results.ResultSnapshot(ctx, "experiment", e.Key, snaps[0].ID); err != nil {
			return verdictBadge{}, err
		}
		asOf = " (results of " + snaps[0].ComputedAt.UTC().Format("2006-01-02 15:04 MST") + ")"
	}
	r, err := BuildReport(ctx, s.db, s.results, e.Key, o)
	switch {
	case experiment.Is(err, experiment.BudgetExceeded) || experiment.Is(err, experiment.InsufficientData) || experiment.Is(err, experiment.NotFound):
		_, _, msg := describe(err)
		return verdictBadge{"no result", "pending", msg}, nil
	case err != nil:
		return verdictBadge{}, err
	}
	if r.SRMPValue != nil && r.SRMThreshold > 0 && *r.SRMPValue < r.SRMThreshold {
		return verdictBadge{"SRM alarm", "worse", "sample ratio mismatch: the arms' sizes do not match their weights; the results are not trustworthy" + asOf}, nil
	}
	rows := r.Results
	if slices.ContainsFunc(rows, func(x reports.Result) bool { return x.Primary }) {
		rows = slices.DeleteFunc(slices.Clone(rows), func(x reports.Result) bool { return !x.Primary })
	}
	if len(rows) == 0 {
		return verdictBadge{"no result", "pending", "no metric could be analyzed"}, nil
	}
	alpha := r.Alpha
	if !(alpha > 0 && alpha < 1) {
		alpha = 0.05
	}
	var better, worse []string
	for _, x := range rows {
		switch x.Verdict(alpha) {
		case "better":
			better = append(better, x.Metric+" "+x.Variant)
		case "worse":
			worse = append(worse, x.Metric+" "+x.Variant)
		}
	}
	switch {
	case len(worse) > 0:
		return verdictBadge{"worse", "worse", "significantly worse: " + strings.Join(worse, ", ") + asOf}, nil
	case len(better) > 0:
		return verdictBadge{"better", "better", "significantly better: " + strings.Join(better, ", ") + asOf}, nil
	}
	return verdictBadge{"no clear change", "none", "no significant change at α = " + strconv.FormatFloat(alpha, 'g', -1, 64) + asOf}, nil
}

func page2(k *experiment.APIKey, se *consoleSession, title, nav string, d any) page {
	return page{Title: title, Key: k, CSRF: se.csrf, Nav: nav, Data: d}
}

// experimentData is the experiment page: the design and the report.
type experimentData struct {
	E       *experiment.Experiment
	Private bool
	Report  template.HTML // reports.Report.HTMLBody
	Unready string        // why there is no report
	// Computing says the report is being computed (the first look at this
	// view): the page reloads itself until it is there.
	Computing bool
	Downloads []download
	Privacy   *experiment.PrivacyAccount // nil: no budget set
	Progress  *progressOut               // nil: the plan has no MDE
	// Definitions are the versions of its metric definitions the experiment
	// reads (pinned at its start) beside the current ones.
	Definitions []reports.MetricDefinition
	// Attributes are the unit attributes the report's segments can be
	// broken down by (?segment=), SegmentBy the one asked for.
	Attributes []string
	SegmentBy  string
}

type download struct{ Name, File string }

func (s *Server) consoleExperiment(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	ctx := c.Request().Context()
	e, err := s.db.GetExperiment(ctx, c.Param("key"))
	if err != nil {
		return err
	}
	d := experimentData{E: e, Private: !k.Role.SeesExact()}
	if d.Definitions, err = reportDefinitions(ctx, s.db, e, nil); err != nil {
		return err
	}
	if len(e.Variants) == 2 {
		if d.Attributes, err = s.db.UnitAttributeNames(ctx, 100); err != nil {
			return err
		}
		d.SegmentBy = c.QueryParam("segment")
	}
	o := ReportOptions{Private: d.Private, Who: k.Name, Now: s.opt.Now, SegmentBy: c.QueryParam("segment")}
	var r *reports.Report
	age := s.newViewAge()
	if d.Private {
		r, err = BuildReport(ctx, s.db, s.results, e.Key, o)
	} else {
		// The newest cached report (Server.cachedReport: computed once per
		// version of the data for the page and its downloads, its results
		// stored as a snapshot, which the list's verdict reads), and its
		// results for the power progress. The default attribute is keyed
		// as "" so that naming it shares the default's report.
		seg := o.SegmentBy
		if len(d.Attributes) > 0 && seg == d.Attributes[0] {
			seg = ""
		}
		r, o.Results, err = s.cachedReport(ctx, e.Key, seg, age)
	}
	switch {
	case errors.Is(err, errComputing):
		d.Computing = true
	case experiment.Is(err, experiment.BudgetExceeded) || experiment.Is(err, experiment.InsufficientData) || experiment.Is(err, experiment.NotFound):
		_, _, d.Unready = describe(err)
	case err != nil:
		return err
	default:
		var b bytes.Buffer
		if err := r.HTMLBody(&b, reports.RenderOptions{}); err != nil {
			return err
		}
		d.Report = template.HTML(b.String()) // rendered by reports' html/template
		d.Downloads = []download{{"Report (HTML)", "report.html"}, {"Results (CSV)", "results.csv"}, {"Results (Parquet)", "results.parquet"}}
		for _, n := range r.ChartNames() {
			d.Downloads = append(d.Downloads, download{"Chart " + n + " (SVG)", n + ".svg"}, download{"Chart " + n + " (PNG)", n + ".png"}, download{"Chart " + n + " (PDF)", n + ".pdf"})
		}
	}
	if d.Report != "" {
		if d.Progress, err = s.consoleProgress(ctx, e, k, o.Results); err != nil {
			return err
		}
	}
	// After the report, whose DP release may just have been spent.
	acct, err := privacy.NewLedger(s.db.Ledger()).Account(ctx, privacy.ExperimentScope(e.Key), 100)
	switch {
	case experiment.Is(err, experiment.NotFound):
	case err != nil:
		return err
	default:
		d.Privacy = acct
	}
	title := e.Name
	if title == "" {
		title = e.Key
	}
	p := page2(k, se, title, "experiments", d)
	if d.Computing {
		p.Refresh = consoleRefresh
	}
	return s.render(c, http.StatusOK, "experiment.html", p)
}

// consoleProgress is the power progress of the experiment page: the API's
// (withProgress, over the exact results) for keys that see exact numbers;
// for viewers the same computation (analysis.ExperimentProgress) over the
// period's DP release only: its noised counts, and its noised control mean
// and variance of the primary metric, so that nothing exact is shown.
func (s *Server) consoleProgress(ctx context.Context, e *experiment.Experiment, k *experiment.APIKey, res *results.Results) (*progressOut, error) {
	if e.Analysis.MDE <= 0 {
		return nil, nil
	}
	if k.Role.SeesExact() {
		out, err := s.withProgress(ctx, e.Key, res)
		if err != nil {
			return nil, err
		}
		return out.Progress, nil
	}
	pr, err := PrivateExperimentResults(ctx, s.db, s.results, e.Key, k.Name, privacy.Options{Now: s.opt.Now})
	if err != nil {
		return nil, err
	}
	if len(pr.Metrics) == 0 {
		return &progressOut{Error: "no metric of this experiment is in its private release"}, nil
	}
	m := &pr.Metrics[0]
	for i := range pr.Metrics {
		if pr.Metrics[i].Name == e.Primary() {
			m = &pr.Metrics[i]
		}
	}
	in := analysis.ProgressInput{Metric: m.Name, MDE: e.Analysis.MDE, Alpha: pr.Alpha, Arms: map[string]int64{}, At: pr.Private.ReleasedAt}
	if e.StartedAt != nil {
		in.Started = *e.StartedAt
	}
	for name, n := range pr.Exposures {
		in.Arms[name] = n
	}
	for _, v := range m.Variants {
		if v.Variant == m.Control {
			in.ControlMean, in.ControlSD = v.Mean, math.Sqrt(v.Variance)
		}
	}
	p, err := analysis.ExperimentProgress(in)
	if err != nil {
		_, _, msg := describe(err)
		return &progressOut{Error: msg}, nil
	}
	p.Note = strings.TrimSpace(p.Note + " From the differentially private release of " + pr.Private.ReleasedAt.UTC().Format("2006-01-02 15:04 MST") + ": noised counts, mean and spread.")
	return &progressOut{Progress: p}, nil
}

// consoleDownload serves the API's documents of an experiment to a session:
// the same handlers, with the session's key.
func (s *Server) consoleDownload(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	f := c.Param("file")
	c.Set(consoleRecent, true)
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", c.Param("key")+"-"+f))
	switch f {
	case "report.html":
		return s.getReportHTML(c)
	case "results.csv":
		return s.getResultsCSV(c)
	case "results.parquet":
		return s.getResultsParquet(c)
	}
	return s.getPlot(c)
}
