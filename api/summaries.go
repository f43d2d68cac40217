package api

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// DigestOptions configure BuildDigest.
type DigestOptions struct {
	Now     func() time.Time // default time.Now
	Privacy privacy.Options  // noise of the release
}

// BuildDigest builds the executive digest of a target for one period of a job.
// The target is an experiment key, "holdout:NAME" (the holdout's current cohort
// against the exposed units, spent from the holdout's budget) or "journey:KEY"
// (the journey's experiment: personalized vs control). The digest holds one DP
// release of the results (spent from the budget, on behalf of "digest:JOB"): the
// units per arm, the headline relative lift of the primary metric, the
// guardrails (the other metrics where lower is better, judged by
// experiment.Metric.Guardrail), a plain-English verdict, and the trend made of
// the earlier digests' headlines of the same metric (and, for a holdout, of the
// same cohort), at no further privacy cost.
//
// A digest never publishes an interval that says nothing (reports.SaysNothing,
// or an arm with fewer than reports.MinArmUnits released units): it says why
// instead. A holdout's current cohort that has too few units yet (right after a
// rotation) is reported by the previous cohort, released as well, with a note.
// When a digest for that job, period and target exists already (a retried or
// restarted run) it is returned as it is and nothing is spent.
func BuildDigest(ctx context.Context, db *store.DB, rs *results.Service, j *experiment.Job, period time.Time, target string, o DigestOptions) (*experiment.Digest, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Privacy.Now == nil {
		o.Privacy.Now = o.Now
	}
	id := store.DigestID(j.Name, period, target)
	if d, err := db.GetDigest(ctx, id); err == nil {
		return d, nil
	} else if !experiment.Is(err, experiment.NotFound) {
		return nil, err
	}
	who := "digest:" + j.Name
	var (
		pr             *PrivateResults
		title, primary string
		what           string // what the digest measures, for sentences: "the experiment", "cohort v2"
		started, ended *time.Time
		cohort         int // the holdout version reported
		notes          []string
		eps            float64
		err            error
	)
	switch {
	case strings.HasPrefix(target, jobs.SubjectHoldout+":"):
		name := strings.TrimPrefix(target, jobs.SubjectHoldout+":")
		h, err := db.GetHoldout(ctx, name)
		if err != nil {
			return nil, err
		}
		if pr, err = PrivateHoldoutResults(ctx, db, rs, name, 0, who, o.Privacy); err != nil {
			return nil, err
		}
		eps = pr.Private.Epsilon
		if cur := pr; cur.Version > 1 && fewUnits(cur) {
			if pr, err = PrivateHoldoutResults(ctx, db, rs, name, cur.Version-1, who, o.Privacy); err != nil {
				return nil, err
			}
			eps += pr.Private.Epsilon
			notes = append(notes, fmt.Sprintf("Cohort v%d began on %s and has too few units to compare yet (%s, as released), so this summary reports cohort v%d; both cohorts were released (ε %.3g each).",
				cur.Version, h.RotatedAt.UTC().Format("2006-01-02"), unitsList(cur), pr.Version, cur.Private.Epsilon))
		}
		st, end := cohortDates(h, pr.Version)
		started, ended, cohort = &st, end, pr.Version
		what = fmt.Sprintf("cohort v%d", pr.Version)
		if primary, err = holdoutPrimary(ctx, db, name); err != nil {
			return nil, err
		}
		title = fmt.Sprintf("Long-run incrementality: holdout %s, cohort v%d (exposed vs held out)", name, pr.Version)
	case strings.HasPrefix(target, jobs.SubjectJourney+":"):
		key := strings.TrimPrefix(target, jobs.SubjectJourney+":")
		jr, err := db.GetJourney(ctx, key)
		if err != nil {
			return nil, err
		}
		e, err := db.GetExperiment(ctx, jr.Experiment)
		if err != nil {
			return nil, err
		}
		if pr, err = PrivateExperimentResults(ctx, db, rs, e.Key, who, o.Privacy); err != nil {
			return nil, err
		}
		eps, started, ended, what = pr.Private.Epsilon, e.StartedAt, e.StoppedAt, "the journey's experiment"
		title, primary = "Personalized journey "+jr.Key+": personalized vs control journey", e.Primary()
	default:
		e, err := db.GetExperiment(ctx, target)
		if err != nil {
			return nil, err
		}
		if pr, err = PrivateExperimentResults(ctx, db, rs, target, who, o.Privacy); err != nil {
			return nil, err
		}
		title = e.Name
		if title == "" {
			title = e.Key
		}
		eps, started, ended, what = pr.Private.Epsilon, e.StartedAt, e.StoppedAt, "the experiment"
		title, primary = "Incrementality summary: "+title, e.Primary()
	}
	rd := &reports.Digest{
		Title:       title,
		Subject:     target,
		Cohort:      cohort,
		Period:      period.UTC(),
		GeneratedAt: o.Now().UTC(),
		Started:     started,
		Ended:       ended,
		Privacy:     reports.Privacy{Private: true, Epsilon: eps},
		Notes:       notes,
	}
	if pr.Release != nil {
		for _, u := range pr.Release.Units {
			rd.Arms = append(rd.Arms, reports.ArmUnits{Arm: u.Variant, Units: u.N})
		}
	}
	judged, err := judgeRelease(ctx, db, pr)
	if err != nil {
		return nil, err
	}
	level := 1 - pr.Alpha
	why := "" // why the primary metric has no headline
	if fewUnits(pr) {
		why = fmt.Sprintf("%s has no units yet: fewer than %d per arm (%s, as released), too few to compare", capitalize(what), reports.MinArmUnits, unitsList(pr))
	}
	var headlineHigher bool
	for _, g := range judged {
		isPrimary := primary == g.Metric || primary == "" && g.Def.HigherIsBetter() && rd.Headline == nil
		switch {
		case isPrimary && rd.Headline == nil && why == "":
			if g.Lift == nil {
				why = fmt.Sprintf("the result for %s is too uncertain to publish yet: its interval could not tell a halving from a doubling", g.Metric)
				primary = g.Metric
				continue
			}
			var units int64
			for _, v := range g.Release.Variants {
				units += v.N
			}
			rd.Headline = &reports.Headline{Metric: g.Metric, Variant: g.Variant, Control: g.Control, Level: level, Lift: *g.Lift, Units: units}
			primary, headlineHigher = g.Metric, g.Def.HigherIsBetter()
		case g.Metric == primary || g.Def.HigherIsBetter():
			// the primary metric's other arms; other metrics where higher is better are not in a digest
		default:
			rd.Guardrails = append(rd.Guardrails, reports.Guardrail{Metric: g.Metric, Variant: g.Variant, Lift: g.Lift, Status: g.Status, Breach: g.Status == experiment.GuardrailBreached})
		}
	}
	for name, why := range pr.Omitted {
		rd.Notes = append(rd.Notes, fmt.Sprintf("%s is not in this summary: %s.", name, why))
	}
	sort.Strings(rd.Notes[len(notes):])
	rd.Verdict = verdict(rd, headlineHigher, why)
	if rd.Headline != nil {
		past, err := db.ListDigests(ctx, 520)
		if err != nil {
			return nil, err
		}
		for i := len(past) - 1; i >= 0; i-- { // oldest first
			p := past[i]
			if p.Job != j.Name || p.Target != target || !p.Period.Before(rd.Period) {
				continue
			}
			var old reports.Digest
			if json.Unmarshal(p.JSON, &old) == nil && old.Headline != nil && old.Headline.Metric == rd.Headline.Metric && old.Cohort == rd.Cohort && !reports.SaysNothing(old.Headline.Lift) {
				rd.Trend = append(rd.Trend, reports.TimeEffect{Time: p.Period, Interval: old.Headline.Lift})
			}
		}
		rd.Trend = append(rd.Trend, reports.TimeEffect{Time: rd.Period, Interval: rd.Headline.Lift})
	}
	summary, err := json.Marshal(rd)
	if err != nil {
		return nil, err
	}
	html, err := rd.HTMLBytes()
	if err != nil {
		return nil, err
	}
	pdf, err := rd.PDFBytes()
	if err != nil {
		return nil, err
	}
	return &experiment.Digest{ID: id, Job: j.Name, Period: rd.Period, Target: target, Title: rd.Title, Verdict: rd.Verdict,
		At: rd.GeneratedAt, JSON: summary, HTML: html, PDF: pdf}, nil
}

// judged is one comparison of a DP release, judged as digests and monitors judge it.
type judged struct {
	Metric, Variant, Control string
	Def                      *experiment.Metric
	Release                  privacy.MetricRelease
	Lift                     *reports.Interval // the relative lift; nil when it says nothing (reports.SaysNothing, or too few units)
	Status                   experiment.GuardrailStatus
}

// judgeRelease judges every comparison of a DP release by one rule, which the
// digest's headline and guardrails and the monitor of an experiment under a
// privacy budget (PrivateGuardrails) all use, so that they cannot contradict one
// another on the same release: the relative lift is withheld when it says
// nothing, and then the status is unclear; otherwise the status is
// experiment.Metric.Guardrail of its interval. All of it is post-processing of
// the release.
func judgeRelease(ctx context.Context, db *store.DB, pr *PrivateResults) ([]judged, error) {
	few := fewUnits(pr)
	var out []judged
	for _, m := range pr.Metrics {
		def, err := db.GetMetricVersion(ctx, m.Name, pr.MetricVersions[m.Name]) // the version released
		if err != nil {
			return nil, err
		}
		for _, c := range m.Comparisons {
			g := judged{Metric: m.Name, Variant: c.Variant, Control: m.Control, Def: def, Release: m.MetricRelease, Status: experiment.GuardrailUnclear}
			if c.Relative != nil {
				iv := reports.Interval{Estimate: c.Relative.Estimate, Low: c.Relative.CILow, High: c.Relative.CIHigh}
				if !few && !reports.SaysNothing(iv) {
					g.Lift, g.Status = &iv, def.Guardrail(iv.Low, iv.High)
				}
			}
			out = append(out, g)
		}
	}
	return out, nil
}

// PrivateGuardrails judges every metric of an experiment's DP release as its
// digest does (judgeRelease), for the monitor job (jobs.Deps.PrivateGuardrails):
// the release is PrivateExperimentResults' on behalf of who, so that a monitor
// running while the data are unchanged reads the digest's own release and
// spends nothing. ok is false, with no error, when the experiment has no
// privacy budget, not enough left for a release, or no data to release.
func PrivateGuardrails(ctx context.Context, db *store.DB, rs *results.Service, key, who string, opt privacy.Options) ([]jobs.GuardrailCheck, bool, error) {
	if _, err := privacy.NewLedger(db.Ledger()).Account(ctx, privacy.ExperimentScope(key), 1); experiment.Is(err, experiment.NotFound) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	pr, err := PrivateExperimentResults(ctx, db, rs, key, who, opt)
	if experiment.Is(err, experiment.BudgetExceeded) || experiment.Is(err, experiment.InsufficientData) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	js, err := judgeRelease(ctx, db, pr)
	if err != nil {
		return nil, false, err
	}
	out := make([]jobs.GuardrailCheck, len(js))
	for i, g := range js {
		out[i] = jobs.GuardrailCheck{Metric: g.Metric, Variant: g.Variant, Status: g.Status, ReleasedAt: pr.Private.ReleasedAt}
		if l := g.Lift; l != nil {
			out[i].Estimate, out[i].Low, out[i].High = l.Estimate, l.Low, l.High
		}
	}
	return out, true, nil
}

// fewUnits reports whether an arm of the release has fewer than
// reports.MinArmUnits units (as released).
func fewUnits(pr *PrivateResults) bool {
	if pr.Release == nil || len(pr.Release.Units) == 0 {
		return true
	}
	for _, u := range pr.Release.Units {
		if u.N < reports.MinArmUnits {
			return true
		}
	}
	return false
}

// unitsList is "holdout 3 and exposed 0 units".
func unitsList(pr *PrivateResults) string {
	if pr.Release == nil {
		return "no units"
	}
	var parts []string
	for _, u := range pr.Release.Units {
		parts = append(parts, fmt.Sprintf("%s %d", u.Variant, u.N))
	}
	return strings.Join(parts, " and ") + " units"
}

// cohortDates is when a holdout version began and, unless it is current, ended.
func cohortDates(h *experiment.Holdout, version int) (time.Time, *time.Time) {
	for _, v := range h.Versions {
		if v.Version == version {
			return v.Start.UTC(), v.End
		}
	}
	if version == h.Version {
		return h.RotatedAt.UTC(), nil
	}
	return h.CreatedAt.UTC(), nil
}

// holdoutPrimary is the primary metric of a holdout's digest: that of the first
// experiment (by key) naming the holdout; "" when none names one.
func holdoutPrimary(ctx context.Context, db *store.DB, name string) (string, error) {
	es, err := db.ListExperiments(ctx)
	if err != nil {
		return "", err
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
	for _, e := range es {
		if e.Holdout == name && e.Primary() != "" {
			return e.Primary(), nil
		}
	}
	return "", nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// verdict says in plain English what the digest's numbers mean; why says why
// there is no headline, when there is none. higher tells the headline metric's
// wanted direction.
func verdict(d *reports.Digest, higher bool, why string) string {
	h := d.Headline
	var b strings.Builder
	if h == nil {
		if why == "" {
			why = "there is not enough data to release a result yet"
		}
		b.WriteString(capitalize(why) + ".")
	} else {
		pc := func(x float64) string { return strconv.FormatFloat(math.Abs(100*x), 'f', 1, 64) + "%" }
		who := h.Variant
		if h.Control == "holdout" { // a holdout's "exposed" arm: what acts is the exposure
			who = "exposure"
		}
		good, bad := "the gain is statistically clear.", "the loss is statistically clear; consider stopping it."
		if !higher {
			good, bad = bad, good
		}
		switch {
		case h.Lift.Low > 0:
			fmt.Fprintf(&b, "%s raised %s by about %s (between %s and %s): %s", who, h.Metric, pc(h.Lift.Estimate), pc(h.Lift.Low), pc(h.Lift.High), good)
		case h.Lift.High < 0:
			fmt.Fprintf(&b, "%s lowered %s by about %s (between %s and %s): %s", who, h.Metric, pc(h.Lift.Estimate), pc(h.Lift.High), pc(h.Lift.Low), bad)
		default:
			fmt.Fprintf(&b, "No clear effect of %s on %s yet: the change lies between %s and %s.", who, h.Metric, reports.SignedPercent(h.Lift.Low), reports.SignedPercent(h.Lift.High))
		}
	}
	for _, g := range d.Guardrails {
		if g.Status == experiment.GuardrailBreached {
			fmt.Fprintf(&b, " Guardrail %s got worse under %s (%s).", g.Metric, g.Variant, reports.SignedPercent(g.Lift.Estimate))
		}
	}
	return capitalize(b.String())
}

type jobList struct {
	Jobs []*experiment.Job `json:"jobs"`
}

type runList struct {
	Runs []*experiment.JobRun `json:"runs"`
}

type alertList struct {
	Alerts   []*experiment.Alert `json:"alerts"`
	NextPage int                 `json:"next_page,omitempty"` // the page after this one, when more follow
}

type summaryList struct {
	Summaries []*experiment.Digest `json:"summaries"`
	NextPage  int                  `json:"next_page,omitempty"` // the page after this one, when more follow
}

// listQuery documents listPage's parameters.
func listQuery(what string) []param {
	return []param{{Name: "limit", Type: "integer", Description: what + " per page, 1 to 500, default 100"},
		{Name: "page", Type: "integer", Description: "page from 1; next_page in the answer names the next, absent on the last"}}
}

// listPaging is the paging of an API list: ?limit=N (default 100, at most
// 500) and ?page=K (from 1). Lists ask the store for limit+1 rows and report
// next_page when the extra one came back.
type listPaging struct{ page, limit int }

func listPage(c echo.Context) (listPaging, error) {
	const op = "api.listPage"
	p := listPaging{page: 1, limit: 100}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return p, experiment.E(op, experiment.Invalid, experiment.Field("limit"), experiment.Errorf("must be a whole number from 1 to 500, got %q", v))
		}
		p.limit = n
	}
	page, err := pageParam(c)
	if err != nil {
		return p, err
	}
	p.page = page
	return p, nil
}

func (p listPaging) offset() int { return (p.page - 1) * p.limit }

// trim cuts a list read with limit+1 rows to the page and says which page
// follows (0: none).
func trim[T any](p listPaging, rows []T) ([]T, int) {
	if len(rows) > p.limit {
		return rows[:p.limit], p.page + 1
	}
	if rows == nil {
		rows = []T{}
	}
	return rows, 0
}

// jobRoutes: admins schedule and trigger jobs; analysts read runs and alerts;
// viewers read the published (DP-only) summaries.
func (s *Server) jobRoutes() {
	const admin, analyst, viewer = experiment.RoleAdmin, experiment.RoleAnalyst, experiment.RoleViewer
	s.route(http.MethodPost, "/v1/jobs", admin, s.createJob, op{Summary: "Schedule a job (or replace one of the same name)", Request: experiment.Job{}, Response: experiment.Job{}, Status: http.StatusCreated,
		Description: `kind is results_refresh, monitor, digest or journey_comparison; give cron ("0 9 * * 1") or every ("6h"), and time_zone (default UTC).`})
	s.route(http.MethodGet, "/v1/jobs", analyst, s.listJobs, op{Summary: "List scheduled jobs", Response: jobList{}})
	s.route(http.MethodGet, "/v1/jobs/:name", analyst, s.getJob, op{Summary: "Get a job", Response: experiment.Job{}})
	s.route(http.MethodDelete, "/v1/jobs/:name", admin, s.deleteJob, op{Summary: "Unschedule and delete a job (its runs stay)", Status: http.StatusNoContent})
	s.route(http.MethodPost, "/v1/jobs/:name/run", admin, s.triggerJob, op{Summary: "Run a job now, by hand", Response: experiment.JobRun{},
		Description: "Answers the first attempt's record: 200 when it succeeded; 202 when it failed and the retries follow in the background, " +
			"or when it is still running after half the request timeout. Follow the run at /v1/jobs/NAME/runs."})
	s.route(http.MethodGet, "/v1/jobs/:name/runs", analyst, s.listRuns, op{Summary: "A job's runs, newest first", Response: runList{},
		Query: []param{{Name: "limit", Type: "integer", Description: "most runs to list, default 100"}}})
	s.route(http.MethodGet, "/v1/alerts", analyst, s.listAlerts, op{Summary: "The alert log, newest first, a page at a time", Response: alertList{}, Query: listQuery("alerts")})
	s.route(http.MethodGet, "/v1/summaries", viewer, s.listSummaries, op{Summary: "Published executive summaries (DP numbers only), newest first, a page at a time", Response: summaryList{}, Query: listQuery("summaries")})
	s.route(http.MethodGet, "/v1/summaries/:id", viewer, s.getSummary, op{Summary: "One summary as JSON", Response: experiment.Digest{}})
	s.route(http.MethodGet, "/v1/summaries/:id/html", viewer, s.getSummaryHTML, op{Summary: "One summary as a self-contained HTML page", ContentType: "text/html"})
	s.route(http.MethodGet, "/v1/summaries/:id/pdf", viewer, s.getSummaryPDF, op{Summary: "One summary as PDF", ContentType: "application/pdf"})
	s.route(http.MethodGet, "/summaries", Public, s.summariesPage, op{Summary: "The summaries web page for viewer keys",
		Description: "Open /summaries?key=KEY once: the key is kept in an HttpOnly cookie and removed from the address. The Authorization header works too.", ContentType: "text/html",
		Query: []param{{Name: "key", Type: "string", Description: "a viewer (or analyst/admin) API key"}, {Name: "page", Type: "integer", Description: "page of 50 summaries, newest first, from 1"}}})
	s.route(http.MethodGet, "/summaries/:id", Public, s.summaryPage, op{Summary: "One summary page (same authentication as /summaries)", ContentType: "text/html"})
	s.route(http.MethodGet, "/summaries/:id/pdf", Public, s.summaryPDF, op{Summary: "One summary as PDF (same authentication as /summaries)", ContentType: "application/pdf"})
}

func (s *Server) scheduler() (*jobs.Scheduler, error) {
	if s.opt.Jobs == nil {
		return nil, experiment.E("api.jobs", experiment.Unavailable, experiment.Errorf("the job scheduler is not running in this server"))
	}
	return s.opt.Jobs, nil
}

func (s *Server) createJob(c echo.Context) error {
	sc, err := s.scheduler()
	if err != nil {
		return err
	}
	var j experiment.Job
	if err := s.decode(c, &j); err != nil {
		return err
	}
	j.Created = time.Time{}
	if err := sc.Add(c.Request().Context(), actor(c), &j); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, &j)
}

func (s *Server) listJobs(c echo.Context) error {
	js, err := s.db.ListJobs(c.Request().Context())
	if err != nil {
		return err
	}
	if js == nil {
		js = []*experiment.Job{}
	}
	return c.JSON(http.StatusOK, jobList{Jobs: js})
}

func (s *Server) getJob(c echo.Context) error {
	j, err := s.db.GetJob(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, j)
}

func (s *Server) deleteJob(c echo.Context) error {
	sc, err := s.scheduler()
	if err != nil {
		return err
	}
	if err := sc.Remove(c.Request().Context(), actor(c), c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) triggerJob(c echo.Context) error {
	sc, err := s.scheduler()
	if err != nil {
		return err
	}
	// Wait for the first attempt, but not past the request's own deadline: a slow
	// or failing run goes on in the background (retries wait their backoff).
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.opt.RequestTimeout/2)
	defer cancel()
	r, done, err := sc.Trigger(ctx, c.Param("name"))
	if err != nil {
		return err
	}
	if r == nil {
		return experiment.E("api.triggerJob", experiment.Conflict, experiment.Errorf("job %s already ran for this period", c.Param("name")))
	}
	if !done {
		c.Response().Header().Set(echo.HeaderLocation, "/v1/jobs/"+c.Param("name")+"/runs")
		return c.JSON(http.StatusAccepted, r)
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) listRuns(c echo.Context) error {
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	rs, err := s.db.ListRuns(c.Request().Context(), c.Param("name"), limit)
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []*experiment.JobRun{}
	}
	return c.JSON(http.StatusOK, runList{Runs: rs})
}

func (s *Server) listAlerts(c echo.Context) error {
	p, err := listPage(c)
	if err != nil {
		return err
	}
	as, err := s.db.ListAlertsPage(c.Request().Context(), p.offset(), p.limit+1)
	if err != nil {
		return err
	}
	var out alertList
	out.Alerts, out.NextPage = trim(p, as)
	return c.JSON(http.StatusOK, out)
}

func (s *Server) listSummaries(c echo.Context) error {
	p, err := listPage(c)
	if err != nil {
		return err
	}
	ds, err := s.db.ListDigestsPage(c.Request().Context(), p.offset(), p.limit+1)
	if err != nil {
		return err
	}
	var out summaryList
	out.Summaries, out.NextPage = trim(p, ds)
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getSummary(c echo.Context) error {
	d, err := s.db.GetDigest(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) getSummaryHTML(c echo.Context) error {
	d, err := s.db.GetDigest(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", d.HTML)
}

func (s *Server) getSummaryPDF(c echo.Context) error {
	d, err := s.db.GetDigest(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", d.ID+".pdf"))
	return c.Blob(http.StatusOK, "application/pdf", d.PDF)
}

// pageAuth authenticates a browser: a console session (docs/console.md), else
// a key in ?key=, which signs in (the browser then holds a session id, never
// the key) and redirects so that the key leaves the address bar and history;
// else the Authorization header. Any role but ingest may read.
func (s *Server) pageAuth(c echo.Context) (redirected bool, err error) {
	const op = "api.pageAuth"
	if k, _, err := s.signedIn(c); err != nil {
		return false, err
	} else if k != nil {
		c.Set(ctxKey, k)
		return false, nil
	}
	secret := c.QueryParam("key")
	fromQuery := secret != ""
	if secret == "" {
		if h := c.Request().Header.Get(echo.HeaderAuthorization); strings.HasPrefix(h, "Bearer ") {
			secret = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
		}
	}
	if secret == "" {
		if c.Request().Method == http.MethodGet {
			return true, c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.Path))
		}
		return false, experiment.E(op, experiment.Unauthorized, experiment.Errorf("sign in at /login"))
	}
	k, err := s.db.Authenticate(c.Request().Context(), secret)
	if err != nil {
		return false, experiment.E(op, experiment.Unauthorized, experiment.Errorf("unknown or revoked API key"))
	}
	if !k.Role.Allows(experiment.RoleViewer) {
		return false, experiment.E(op, experiment.Forbidden, experiment.Errorf("API key %q has role %q; summaries need role viewer, analyst or admin", k.Name, k.Role))
	}
	c.Set(ctxKey, k)
	if fromQuery {
		id, err := s.startSession(c.Request().Context(), k.ID)
		if err != nil {
			return false, experiment.E(op, experiment.Internal, err)
		}
		c.SetCookie(&http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https",
			MaxAge: int(s.opt.SessionTTL / time.Second)})
		return true, c.Redirect(http.StatusSeeOther, c.Request().URL.Path)
	}
	return false, nil
}

var summariesPage = template.Must(template.New("summaries").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Lift summaries</title>
<style>body{font-family:'Liberation Sans',Arial,Helvetica,sans-serif;max-width:860px;margin:2em auto;color:#222;padding:0 1em}
li{margin:1.1em 0}.meta{color:#666;font-size:.9em}a{color:#2a6ebb}.title{font-size:1.1em;font-weight:bold}.facts{font-size:.95em}</style></head><body>
<p class="meta"><a href="/">Lift console</a></p>
<h1>Incrementality summaries</h1>
<p class="meta">Every number here is differentially private. Each summary's ε is its privacy guarantee: adding or removing any one unit's data changes the chance of any number in it by at most a factor of e^ε, so no individual can be singled out; a smaller ε means more privacy and more noise.</p>
{{if .Items}}<ul id="summaries">{{range .Items}}<li><a class="title" href="/summaries/{{.ID}}">{{.Title}}</a><br>
<span class="meta">period {{.Period.Format "2006-01-02 15:04 MST"}} · {{.D.Privacy.Caption}} · <a href="/summaries/{{.ID}}">page</a> · <a href="/summaries/{{.ID}}/pdf">PDF</a></span><br>
{{with .D.DatesText}}<span class="facts">{{.}}</span><br>{{end}}{{with .D.UnitsText}}<span class="facts">{{.}}</span><br>{{end}}
{{if .D.Headline}}<b class="headline">{{.D.HeadlineText}}</b><br>{{end}}{{.Verdict}}</li>{{end}}</ul>
{{else}}<p>No summary has been published yet. Summaries are published by digest jobs.</p>{{end}}
{{if or .Prev .NextPage}}<nav aria-label="Pages">{{with .Prev}}<a href="{{.}}" rel="prev">Previous page</a>{{end}} {{with .NextPage}}<a href="{{.}}" rel="next">Next page</a>{{end}}</nav>{{end}}
</body></html>
`))

// summariesList is a page of the summaries list, newest first, with the
// links to the pages before and after it.
type summariesList struct {
	Items          []listedSummary
	Prev, NextPage string
}

// listedSummary is a published digest with its document, for the summaries page.
type listedSummary struct {
	*experiment.Digest
	D reports.Digest
}

func (s *Server) summariesPage(c echo.Context) error {
	if done, err := s.pageAuth(c); done || err != nil {
		return err
	}
	page, err := pageParam(c)
	if err != nil {
		return err
	}
	// One more than a page: whether there is a next one.
	ds, err := s.db.ListDigestsPage(c.Request().Context(), (page-1)*pageSize, pageSize+1)
	if err != nil {
		return err
	}
	var list summariesList
	if len(ds) > pageSize {
		ds = ds[:pageSize]
		list.NextPage = "/summaries?page=" + strconv.Itoa(page+1)
	}
	if page > 1 {
		list.Prev = "/summaries?page=" + strconv.Itoa(page-1)
	}
	list.Items = make([]listedSummary, len(ds))
	for i, d := range ds {
		list.Items[i].Digest = d
		if err := json.Unmarshal(d.JSON, &list.Items[i].D); err != nil {
			return experiment.E("api.summariesPage", experiment.Internal, fmt.Errorf("summary %s: %w", d.ID, err))
		}
	}
	if k, se, err := s.signedIn(c); err != nil {
		return err
	} else if se != nil { // a console session: the list in the console's layout
		c.Response().Header().Set("Content-Security-Policy", consoleCSP)
		c.Response().Header().Set("Cache-Control", "no-store")
		return s.render(c, http.StatusOK, "summaries.html", page2(k, se, "Summaries", "summaries", list))
	}
	var b strings.Builder
	if err := summariesPage.Execute(&b, list); err != nil {
		return err
	}
	return c.HTML(http.StatusOK, b.String())
}

// summaryPDF serves a summary's PDF to a browser authenticated like /summaries.
func (s *Server) summaryPDF(c echo.Context) error {
	if done, err := s.pageAuth(c); done || err != nil {
		return err
	}
	return s.getSummaryPDF(c)
}

func (s *Server) summaryPage(c echo.Context) error {
	if done, err := s.pageAuth(c); done || err != nil {
		return err
	}
	d, err := s.db.GetDigest(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", d.HTML)
}
