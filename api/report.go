package api

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// reportRoutes serve reports, charts and CSV. Viewer keys get DP numbers (spending
// the experiment's budget once per change of the data); analysts and admins get
// exact numbers unless they ask for ?private=true.
func (s *Server) reportRoutes() {
	priv := []param{{Name: "private", Type: "boolean", Description: "DP-noised numbers even for analysts (viewers always get them)"}}
	s.route(http.MethodGet, "/v1/experiments/:key/report.html", experiment.RoleViewer, s.getReportHTML, op{
		Summary: "The experiment report as one self-contained HTML page (charts inlined as SVG)", ContentType: "text/html", Query: priv})
	s.route(http.MethodGet, "/v1/experiments/:key/plots/:file", experiment.RoleViewer, s.getPlot, op{
		Summary:     "One chart of the report: NAME.png, NAME.svg or NAME.pdf",
		Description: "NAME is one of forest, cumulative (exact reports only), exposures and, for a bandit, allocation (exact reports only).", ContentType: "image/svg+xml", Query: priv})
	s.route(http.MethodGet, "/v1/experiments/:key/results.csv", experiment.RoleViewer, s.getResultsCSV, op{
		Summary: "The results table as CSV, one row per metric and variant", ContentType: "text/csv", Query: priv})
	s.route(http.MethodGet, "/v1/experiments/:key/results.parquet", experiment.RoleViewer, s.getResultsParquet, op{
		Summary: "The results table as Parquet (the CSV's columns, typed)", ContentType: "application/vnd.apache.parquet", Query: priv})
}

// reportFor builds the report a request asks for: through a share link (a
// /shared/TOKEN/ route), always with DP numbers on behalf of "share:ID";
// otherwise with the caller's key, DP numbers for viewers or with ?private=true.
func (s *Server) reportFor(c echo.Context) (*reports.Report, error) {
	ctx := c.Request().Context()
	if token := c.Param("token"); token != "" {
		l, err := s.db.ShareLinkByToken(ctx, token)
		if err != nil {
			return nil, err
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer") // the token is in the URL
		h.Set("X-Robots-Tag", "noindex")
		return BuildReport(ctx, s.db, s.results, l.Experiment, ReportOptions{Private: true, Who: "share:" + l.ID, Now: s.opt.Now, SegmentBy: c.QueryParam("segment")})
	}
	if private := wantsPrivate(c); private {
		return BuildReport(ctx, s.db, s.results, c.Param("key"), ReportOptions{Private: private, Who: actor(c), Now: s.opt.Now})
	}
	// Exact: the console's downloads may be of the newest cached report
	// (it says as of when); the API's routes are of the data now.
	// A download waits for a report never computed (it is a file).
	var age *viewAge
	if recent, _ := c.Get(consoleRecent).(bool); recent {
		age = &viewAge{}
	}
	r, _, err := s.cachedReport(ctx, c.Param("key"), "", age)
	return r, err
}

// consoleRecent is the echo context's key that marks a console download:
// its report may be the newest cached one (Server.cachedReport).
const consoleRecent = "lift.console_recent"

func (s *Server) getReportHTML(c echo.Context) error {
	r, err := s.reportFor(c)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := r.HTML(&b, reports.RenderOptions{}); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", b.Bytes())
}

func (s *Server) getPlot(c echo.Context) error {
	name, ext, ok := strings.Cut(c.Param("file"), ".")
	f, err := reports.ParseFormat(ext)
	if !ok || err != nil {
		return experiment.E("api.plot", experiment.Invalid, experiment.Field("file"), experiment.Errorf("must be NAME.png, NAME.svg or NAME.pdf, got %q", c.Param("file")))
	}
	r, err := s.reportFor(c)
	if err != nil {
		return err
	}
	ch, ok := r.Chart(name)
	if !ok {
		if why, left := r.Missing[name]; left {
			return experiment.E("api.plot", experiment.NotFound, experiment.Errorf("%s", why))
		}
		return experiment.E("api.plot", experiment.NotFound, experiment.Errorf("this report has no chart %q; it has %s", name, strings.Join(r.ChartNames(), ", ")))
	}
	b, err := reports.Bytes(ch, f, reports.RenderOptions{})
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, f.ContentType(), b)
}

func (s *Server) getResultsCSV(c echo.Context) error {
	r, err := s.reportFor(c)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := r.CSV(&b); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
}

// ReportOptions configure BuildReport.
type ReportOptions struct {
	Private bool             // DP numbers only: the experiment's release of the current period (made, and spent, by its first reader)
	Who     string           // recorded in the privacy ledger
	Now     func() time.Time // report time, default time.Now
	Privacy privacy.Options  // noise of private reports; its clock defaults to Now
	// Results, for exact reports, are results already computed (the console's
	// experiment page computes them once for the report and the power
	// progress); nil: computed here.
	Results *results.Results
	// TableOnly leaves out the daily series (the cumulative chart) and the
	// further views (bandit, segments, quantiles): the results table is all
	// the console's list of verdicts needs.
	TableOnly bool
	// SegmentBy is the unit attribute of the segments view of exact reports;
	// "" is the first attribute name the store holds.
	SegmentBy string
}

// BuildReport assembles an experiment's report from the store: the results table,
// the forest plot of relative lifts, exposures with the SRM p-value and, for exact
// reports, the cumulative daily effect of the primary metric. Private reports hold
// only the numbers of one DP release (PrivateExperimentResults); the daily series is
// left out of them because each day would be another release.
func BuildReport(ctx context.Context, db *store.DB, rs *results.Service, key string, o ReportOptions) (*reports.Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	e, err := db.GetExperiment(ctx, key)
	if err != nil {
		return nil, err
	}
	r := &reports.Report{Experiment: e.Key, Name: e.Name, Description: e.Description, Status: string(e.Status), GeneratedAt: o.Now().UTC()}
	if r.Name == "" {
		r.Name = e.Key
	}
	weights := map[string]float64{}
	for _, v := range e.Variants {
		weights[v.Name] = v.Weight
	}
	forest := &reports.Forest{Unit: "relative lift, %", Level: 0.95}
	exposures := &reports.Exposures{}
	addExposures := func(counts map[string]int64) {
		var total float64
		for _, n := range counts {
			total += float64(n)
		}
		for _, v := range e.Variants {
			exposures.Counts = append(exposures.Counts, reports.VariantCount{Variant: v.Name, Units: float64(counts[v.Name]), Expected: total * v.Weight})
		}
	}
	var charts []reports.Chart
	used := map[string]int{} // the definitions' versions the exact results read
	if o.Private {
		if o.Privacy.Now == nil {
			o.Privacy.Now = o.Now
		}
		pr, err := PrivateExperimentResults(ctx, db, rs, key, o.Who, o.Privacy)
		if err != nil {
			return nil, err
		}
		r.Privacy = reports.Privacy{Private: true, Epsilon: pr.Private.Epsilon}
		left := pr.Private.EpsilonLeft
		r.EpsilonLeft = &left
		released, next := pr.Private.ReleasedAt, pr.Private.NextReleaseAt
		r.ReleasedAt, r.NextReleaseAt = &released, &next
		r.Alpha = pr.Alpha
		p := pr.SRM.PValue
		r.SRMPValue = &p
		r.SRMThreshold = pr.SRM.Threshold
		r.Correction = pr.Correction
		primary := map[string]bool{}
		for _, m := range e.Metrics {
			primary[m.Name] = m.Primary
		}
		for _, m := range pr.Metrics {
			means := map[string]privacy.VariantRelease{}
			for _, v := range m.Variants {
				means[v.Variant] = v
			}
			ctl := means[m.Control]
			lower := false
			if defs, err := db.ResolveExperimentMetrics(ctx, e, []string{m.Name}); err == nil { // the pinned version
				lower = !defs[m.Name].HigherIsBetter()
			}
			for _, cmp := range m.Comparisons {
				v := means[cmp.Variant]
				row := reports.Result{Metric: m.Name, Variant: cmp.Variant, Control: m.Control, N: v.N, Mean: v.Mean, ControlN: ctl.N, ControlMean: ctl.Mean,
					Absolute: reports.Estimate(cmp.Absolute), Primary: primary[m.Name], LowerIsBetter: lower}
				if a := cmp.Adjusted; a != nil {
					row.Adjusted = &reports.Adjusted{Method: string(a.Method), Absolute: a.Absolute, Relative: a.Relative}
				}
				if cmp.Relative != nil {
					rel := reports.Estimate(*cmp.Relative)
					row.Relative = &rel
				}
				if cmp.NotEnoughSignal {
					row.Signal = cmp.Note
					r.Notes = append(r.Notes, m.Name+", "+cmp.Variant+": "+cmp.Note+".")
				}
				r.Results = append(r.Results, row)
			}
		}
		addExposures(pr.Exposures)
		exposures.SRMPValue = p
		for name, why := range pr.Omitted {
			r.Notes = append(r.Notes, "Metric "+name+" is not in this private report: "+why+".")
		}
		r.LeaveOut("cumulative", "The cumulative daily chart is left out of private reports: each day would be another release spending budget.")
		if r.Hidden, err = hiddenViews(ctx, db, e); err != nil {
			return nil, err
		}
		if !o.TableOnly {
			seg, err := addPrivateSegments(ctx, db, rs, e, r, o)
			if err != nil {
				return nil, err
			}
			if seg {
				r.Hidden = privateSegmentsShown(r.Hidden, r.PrivateSegments.Metric)
			}
		}
	} else {
		res := o.Results
		if res == nil {
			if res, err = rs.ExperimentResults(ctx, key, results.Options{NoSnapshot: true}); err != nil {
				return nil, err
			}
		}
		r.Alpha = res.Alpha
		p := res.SRM.PValue
		r.SRMPValue = &p
		r.SRMThreshold = res.SRM.Threshold
		r.Correction, r.Sequential = res.Correction, res.Sequential
		if res.Sequential {
			r.SequentialTuning = e.Analysis.Tuning
			if r.SequentialTuning == 0 {
				r.SequentialTuning = analysis.DefaultSequentialTuning
			}
		}
		primary := ""
		for _, m := range res.Metrics {
			if m.Error != "" {
				r.Notes = append(r.Notes, "Metric "+m.Name+" could not be analyzed: "+m.Error)
				continue
			}
			used[m.Name] = m.Version
			if m.Primary || primary == "" {
				primary = m.Name
			}
			byName := map[string]analysis.VariantSummary{}
			for _, v := range m.Variants {
				byName[v.Name] = v
			}
			ctl := byName[m.Control]
			for _, cmp := range m.Comparisons {
				v := byName[cmp.Variant]
				row := reports.Result{Metric: m.Name, Variant: cmp.Variant, Control: m.Control, N: v.N, Mean: v.Mean, ControlN: ctl.N, ControlMean: ctl.Mean,
					Absolute: estimate(cmp.Absolute), Primary: m.Primary}
				if def, err := db.GetMetricVersion(ctx, m.Name, m.Version); err == nil { // the version the results used
					row.LowerIsBetter = !def.HigherIsBetter()
				}
				if a := cmp.Adjusted; a != nil {
					row.Adjusted = &reports.Adjusted{Method: string(a.Method), Absolute: a.Absolute, Relative: a.Relative}
				}
				if c := cmp.CUPED; c != nil && len(m.Unadjusted) > 0 {
					row.CUPED = &reports.CUPED{Covariate: c.Covariate, VarianceReduction: c.VarianceReduction}
				}
				row.Unestimable = unestimable(cmp.Flags)
				if row.Unestimable == "" {
					row.Bayesian = reportBayesian(cmp.Bayesian)
				}
				if finiteEffect(cmp.Relative) && ctl.Mean != 0 && !slices.Contains(cmp.Flags, analysis.FlagRelativeZeroVariance) {
					rel := estimate(cmp.Relative)
					row.Relative = &rel
				}
				r.Results = append(r.Results, row)
			}
		}
		addExposures(res.Exposures)
		exposures.SRMPValue = p
		if !o.TableOnly {
			extra, err := addExactParts(ctx, db, rs, e, r, primary, o)
			if err != nil {
				return nil, err
			}
			charts = append(charts, extra...)
		}
	}
	// The primary metric first, in the table and on the chart.
	sort.SliceStable(r.Results, func(i, j int) bool { return r.Results[i].Primary && !r.Results[j].Primary })
	for _, x := range r.Results {
		if x.Relative != nil && x.Unestimable == "" {
			label := x.Metric
			if x.Primary {
				label += " (primary)"
			}
			forest.Effects = append(forest.Effects, reports.Effect{Label: label + ": " + x.Variant, Weak: x.Signal != "",
				Interval: reports.Interval{Estimate: 100 * x.Relative.Estimate, Low: 100 * x.Relative.CILow, High: 100 * x.Relative.CIHigh}})
		}
	}
	forest.Level = 1 - r.Alpha
	forest.Privacy, exposures.Privacy = r.Privacy, r.Privacy
	for _, c := range charts {
		switch c := c.(type) {
		case *reports.Cumulative:
			c.Privacy = r.Privacy
		case *reports.Allocation:
			c.Privacy = r.Privacy
		}
	}
	var all []reports.Chart
	switch {
	case len(forest.Effects) > 0:
		all = append(all, forest)
	case len(r.Results) > 0:
		r.LeaveOut("forest", "There is no forest chart: no comparison has a relative effect that could be estimated.")
	}
	all = append(all, charts...)
	if len(exposures.Counts) > 0 {
		all = append(all, exposures)
	}
	r.Charts = all
	if r.Definitions, err = reportDefinitions(ctx, db, e, used); err != nil {
		return nil, err
	}
	return r, nil
}

// addExactParts adds the parts of an exact report past its results table:
// the daily series of the primary metric (the cumulative chart and the
// maturity table), the further views (addExactViews) and the health section
// (addHealth). They read the data independently, so they run at once, each
// on its own connection (DuckDB is embedded: a query of one overlaps the Go
// work of another), into a report of its own; their notes are added in this
// order, whichever ends first. It returns their charts: the cumulative one,
// then a bandit's allocation.
func addExactParts(ctx context.Context, db *store.DB, rs *results.Service, e *experiment.Experiment, r *reports.Report, primary string, o ReportOptions) ([]reports.Chart, error) {
	key := e.Key
	type part struct {
		r     *reports.Report
		chart reports.Chart
		err   error
	}
	var daily, views, health part
	for _, p := range []*part{&daily, &views, &health} {
		p.r = &reports.Report{Alpha: r.Alpha, Privacy: r.Privacy}
	}
	var wg sync.WaitGroup
	wg.Go(func() { daily.chart, daily.err = addCumulative(ctx, rs, key, primary, daily.r) })
	wg.Go(func() { views.chart, views.err = addExactViews(ctx, db, rs, e, views.r, o) })
	wg.Go(func() { health.err = addHealth(ctx, rs, key, health.r) })
	wg.Wait()
	var charts []reports.Chart
	for _, p := range []*part{&daily, &views, &health} {
		if p.err != nil {
			return nil, p.err
		}
		if p.chart != nil {
			charts = append(charts, p.chart)
		}
		r.Notes = append(r.Notes, p.r.Notes...)
		for name, why := range p.r.Missing {
			if r.Missing == nil {
				r.Missing = map[string]string{}
			}
			r.Missing[name] = why
		}
	}
	r.Maturity = daily.r.Maturity
	r.Bandit, r.Segments, r.Quantiles = views.r.Bandit, views.r.Segments, views.r.Quantiles
	r.Health = health.r.Health
	return charts, nil
}

// addCumulative adds the cumulative daily effect of the primary metric (its
// chart, returned, or why there is none) and the maturity of its days to r.
func addCumulative(ctx context.Context, rs *results.Service, key, primary string, r *reports.Report) (reports.Chart, error) {
	if primary == "" {
		r.LeaveOut("cumulative", "There is no cumulative chart: no metric of this experiment could be analyzed.")
		return nil, nil
	}
	d, err := rs.DailyResults(ctx, key, primary)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.LeaveOut("cumulative", fmt.Sprintf("The cumulative chart of %s could not be computed: %v.", primary, err))
		return nil, nil
	}
	cum := &reports.Cumulative{Metric: primary, Unit: "relative lift, %", Level: 1 - r.Alpha}
	r.Maturity = reportMaturity(d)
	var days []string
	for _, day := range d.Days {
		t, err := time.Parse("2006-01-02", day.Date)
		if err != nil || len(day.Comparisons) == 0 || !finiteEffect(day.Comparisons[0].Relative) {
			continue
		}
		days = append(days, day.Date)
		rel := day.Comparisons[0].Relative
		cum.Points = append(cum.Points, reports.TimeEffect{Time: t.Add(24 * time.Hour), Interval: reports.Interval{Estimate: 100 * rel.Estimate, Low: 100 * rel.CILow, High: 100 * rel.CIHigh}})
	}
	switch len(cum.Points) {
	case 0:
		r.LeaveOut("cumulative", fmt.Sprintf("The cumulative chart of %s needs at least two days of data; this experiment has none with a result in both arms yet.", primary))
	case 1:
		r.LeaveOut("cumulative", fmt.Sprintf("The cumulative chart of %s needs at least two days of data; this experiment has one (%s).", primary, days[0]))
	default:
		return cum, nil
	}
	return nil, nil
}

// unestimable says why a comparison's effects could not be estimated (its
// flags), "" when they could.
func unestimable(flags []string) string {
	switch {
	case slices.Contains(flags, analysis.FlagInsufficientData):
		return "an arm has fewer than 2 units"
	case slices.Contains(flags, analysis.FlagZeroVariance):
		return "the values do not vary in either arm (every unit has the same value), so the difference has no standard error"
	}
	return ""
}

func finiteEffect(e analysis.Effect) bool {
	for _, v := range []float64{e.Estimate, e.SE, e.CILow, e.CIHigh} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

func estimate(e analysis.Effect) reports.Estimate {
	return reports.Estimate{Estimate: e.Estimate, SE: e.SE, CILow: e.CILow, CIHigh: e.CIHigh, PValue: e.PValue}
}

func (s *Server) getResultsParquet(c echo.Context) error {
	r, err := s.reportFor(c)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := r.RawCSV(&b); err != nil {
		return err
	}
	pq, err := s.db.CSVToParquet(c.Request().Context(), b.Bytes())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+c.Param("key")+`-results.parquet"`)
	return c.Blob(http.StatusOK, "application/vnd.apache.parquet", pq)
}
