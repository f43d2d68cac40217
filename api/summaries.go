package api

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/reports"
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
// release of the results (spent from the budget, on behalf of "digest:JOB"), the
// headline relative lift of the primary metric, the guardrails (metrics where
// lower is better), a plain-English verdict, and the trend made of the earlier
// digests' headlines (no further privacy cost). When a
// digest for that job, period and target exists already (a retried or restarted
// run) it is returned as it is and nothing is spent.
func BuildDigest(ctx context.Context, db *store.DB, j *experiment.Job, period time.Time, target string, o DigestOptions) (*experiment.Digest, error) {
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
		err            error
	)
	switch {
	case strings.HasPrefix(target, jobs.SubjectHoldout+":"):
		name := strings.TrimPrefix(target, jobs.SubjectHoldout+":")
		if pr, err = PrivateHoldoutResults(ctx, db, name, 0, who, o.Privacy); err != nil {
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
		if pr, err = PrivateExperimentResults(ctx, db, e.Key, who, o.Privacy); err != nil {
			return nil, err
		}
		title, primary = "Personalized journey "+jr.Key+": personalized vs control journey", e.Analysis.PrimaryMetric
	default:
		e, err := db.GetExperiment(ctx, target)
		if err != nil {
			return nil, err
		}
		if pr, err = PrivateExperimentResults(ctx, db, target, who, o.Privacy); err != nil {
			return nil, err
		}
		title = e.Name
		if title == "" {
			title = e.Key
		}
		title, primary = "Incrementality summary: "+title, e.Analysis.PrimaryMetric
	}
	rd := &reports.Digest{
		Title:       title,
		Subject:     target,
		Period:      period.UTC(),
		GeneratedAt: o.Now().UTC(),
		Privacy:     reports.Privacy{Private: true, Epsilon: pr.Private.Epsilon},
	}
	level := 1 - pr.Alpha
	for _, m := range pr.Metrics {
		def, err := db.GetMetric(ctx, m.Name)
		if err != nil {
			return nil, err
		}
		for _, c := range m.Comparisons {
			if c.Relative == nil {
				continue
			}
			iv := reports.Interval{Estimate: c.Relative.Estimate, Low: c.Relative.CILow, High: c.Relative.CIHigh}
			if !def.HigherIsBetter() {
				rd.Guardrails = append(rd.Guardrails, reports.Guardrail{Metric: m.Name, Variant: c.Variant, Lift: iv, Breach: iv.Low > 0})
				continue
			}
			if rd.Headline == nil && (primary == "" || primary == m.Name) {
				var units int64
				for _, v := range m.Variants {
					units += v.N
				}
				rd.Headline = &reports.Headline{Metric: m.Name, Variant: c.Variant, Level: level, Lift: iv, Units: units}
			}
		}
	}
	for name, why := range pr.Omitted {
		rd.Notes = append(rd.Notes, fmt.Sprintf("%s is not in this summary: %s.", name, why))
	}
	rd.Verdict = verdict(rd)
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
			if json.Unmarshal(p.JSON, &old) == nil && old.Headline != nil && old.Headline.Metric == rd.Headline.Metric {
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

// verdict says in plain English what the digest's numbers mean.
func verdict(d *reports.Digest) string {
	h := d.Headline
	var b strings.Builder
	if h == nil {
		b.WriteString("There is not enough data to release a result yet.")
	} else {
		pc := func(x float64) string { return strconv.FormatFloat(math.Abs(100*x), 'f', 1, 64) + "%" }
		switch {
		case h.Lift.Low > 0:
			fmt.Fprintf(&b, "%s raised %s by about %s (between %s and %s): the gain is statistically clear.", h.Variant, h.Metric, pc(h.Lift.Estimate), pc(h.Lift.Low), pc(h.Lift.High))
		case h.Lift.High < 0:
			fmt.Fprintf(&b, "%s lowered %s by about %s (between %s and %s): the loss is statistically clear; consider stopping it.", h.Variant, h.Metric, pc(h.Lift.Estimate), pc(h.Lift.Low), pc(h.Lift.High))
		default:
			fmt.Fprintf(&b, "No clear effect of %s on %s yet: the change lies between %+.1f%% and %+.1f%%.", h.Variant, h.Metric, 100*h.Lift.Low, 100*h.Lift.High)
		}
	}
	for _, g := range d.Guardrails {
		if g.Breach {
			fmt.Fprintf(&b, " Guardrail %s got worse under %s (%+.1f%%).", g.Metric, g.Variant, 100*g.Lift.Estimate)
		}
	}
	return b.String()
}

type jobList struct {
	Jobs []*experiment.Job `json:"jobs"`
}

type runList struct {
	Runs []*experiment.JobRun `json:"runs"`
}

type alertList struct {
	Alerts []*experiment.Alert `json:"alerts"`
}

type summaryList struct {
	Summaries []*experiment.Digest `json:"summaries"`
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
	s.route(http.MethodPost, "/v1/jobs/:name/run", admin, s.triggerJob, op{Summary: "Run a job now, by hand", Response: experiment.JobRun{}})
	s.route(http.MethodGet, "/v1/jobs/:name/runs", analyst, s.listRuns, op{Summary: "A job's runs, newest first", Response: runList{},
		Query: []param{{Name: "limit", Type: "integer", Description: "most runs to list, default 100"}}})
	s.route(http.MethodGet, "/v1/alerts", analyst, s.listAlerts, op{Summary: "The alert log, newest first", Response: alertList{}})
	s.route(http.MethodGet, "/v1/summaries", viewer, s.listSummaries, op{Summary: "Published executive summaries (DP numbers only)", Response: summaryList{}})
	s.route(http.MethodGet, "/v1/summaries/:id", viewer, s.getSummary, op{Summary: "One summary as JSON", Response: experiment.Digest{}})
	s.route(http.MethodGet, "/v1/summaries/:id/html", viewer, s.getSummaryHTML, op{Summary: "One summary as a self-contained HTML page", ContentType: "text/html"})
	s.route(http.MethodGet, "/v1/summaries/:id/pdf", viewer, s.getSummaryPDF, op{Summary: "One summary as PDF", ContentType: "application/pdf"})
	s.route(http.MethodGet, "/summaries", Public, s.summariesPage, op{Summary: "The summaries web page for viewer keys",
		Description: "Open /summaries?key=KEY once: the key is kept in an HttpOnly cookie and removed from the address. The Authorization header works too.", ContentType: "text/html",
		Query: []param{{Name: "key", Type: "string", Description: "a viewer (or analyst/admin) API key"}}})
	s.route(http.MethodGet, "/summaries/:id", Public, s.summaryPage, op{Summary: "One summary page (same authentication as /summaries)", ContentType: "text/html"})
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
	r, err := sc.Trigger(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	if r == nil {
		return experiment.E("api.triggerJob", experiment.Conflict, experiment.Errorf("job %s already ran for this period", c.Param("name")))
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
	as, err := s.db.ListAlerts(c.Request().Context(), 200)
	if err != nil {
		return err
	}
	if as == nil {
		as = []*experiment.Alert{}
	}
	return c.JSON(http.StatusOK, alertList{Alerts: as})
}

func (s *Server) listSummaries(c echo.Context) error {
	ds, err := s.db.ListDigests(c.Request().Context(), 200)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []*experiment.Digest{}
	}
	return c.JSON(http.StatusOK, summaryList{Summaries: ds})
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

const keyCookie = "lift_key"

// pageAuth authenticates a browser: a key in ?key= is moved into an HttpOnly
// cookie (and the page redirected so the key leaves the address bar and history);
// else the cookie or the Authorization header. Any role but ingest may read.
func (s *Server) pageAuth(c echo.Context) (redirected bool, err error) {
	const op = "api.pageAuth"
	secret := c.QueryParam("key")
	fromQuery := secret != ""
	if secret == "" {
		if ck, err := c.Cookie(keyCookie); err == nil {
			secret = ck.Value
		}
	}
	if secret == "" {
		if h := c.Request().Header.Get(echo.HeaderAuthorization); strings.HasPrefix(h, "Bearer ") {
			secret = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
		}
	}
	if secret == "" {
		return false, experiment.E(op, experiment.Unauthorized, experiment.Errorf("open this page as /summaries?key=YOUR_VIEWER_KEY"))
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
		c.SetCookie(&http.Cookie{Name: keyCookie, Value: secret, Path: "/summaries", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https"})
		return true, c.Redirect(http.StatusSeeOther, c.Request().URL.Path)
	}
	return false, nil
}

var summariesPage = template.Must(template.New("summaries").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lift summaries</title>
<style>body{font-family:'Liberation Sans',Arial,Helvetica,sans-serif;max-width:860px;margin:2em auto;color:#222;padding:0 1em}
li{margin:.8em 0}.meta{color:#666;font-size:.9em}a{color:#2a6ebb}</style></head><body>
<h1>Incrementality summaries</h1>
<p class="meta">Every number here is differentially private.</p>
{{if .}}<ul id="summaries">{{range .}}<li><a href="/summaries/{{.ID}}">{{.Title}}</a> <span class="meta">· period {{.Period.Format "2006-01-02"}} · <a href="/v1/summaries/{{.ID}}/pdf">PDF</a></span><br>{{.Verdict}}</li>{{end}}</ul>
{{else}}<p>No summary has been published yet. Summaries are published by digest jobs.</p>{{end}}
</body></html>
`))

func (s *Server) summariesPage(c echo.Context) error {
	if done, err := s.pageAuth(c); done || err != nil {
		return err
	}
	ds, err := s.db.ListDigests(c.Request().Context(), 200)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := summariesPage.Execute(&b, ds); err != nil {
		return err
	}
	return c.HTML(http.StatusOK, b.String())
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
