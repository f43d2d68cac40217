package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis/synth"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/store"
)

// MaxGeoRows is the most panel rows one POST /v1/analyses/geo may carry.
const MaxGeoRows = 500_000

type geoRowIn struct {
	Unit   string   `json:"unit" required:"true" doc:"the market (or state, store, ...)"`
	Period string   `json:"period" required:"true" doc:"the period, as text: numbers are ordered as numbers, other labels as text (ISO dates)"`
	Value  *float64 `json:"value" required:"true" doc:"the outcome"`
}

type geoRequest struct {
	Rows      []geoRowIn `json:"rows,omitempty" doc:"an uploaded panel in long form: one row per unit and period, every unit in every period; or metric, from, to instead"`
	Metric    string     `json:"metric,omitempty" doc:"instead of rows, a panel from stored events: the metric (sum, count or binary) of each unit per period, summed over the units of each market"`
	Market    string     `json:"market,omitempty" doc:"with metric: the unit attribute (POST /v1/units) naming each unit's market; empty: every unit is a market"`
	From      string     `json:"from,omitempty" doc:"with metric: start of the panel, RFC 3339"`
	To        string     `json:"to,omitempty" doc:"with metric: end of the panel (exclusive), RFC 3339"`
	Period    string     `json:"period,omitempty" doc:"with metric: day (default) or week; periods are labelled by the date they start"`
	Treated   []string   `json:"treated" required:"true" doc:"the test markets; every other unit (market) is a donor"`
	Start     string     `json:"start" required:"true" doc:"the first treated period: a period label (or a value compared with them); with metric, an RFC 3339 time, whose period is the first treated"`
	Method    string     `json:"method,omitempty" doc:"scm (default) or augmented (ridge-augmented)"`
	Intercept bool       `json:"intercept,omitempty" doc:"remove each unit's pre-period mean before weighting"`
	Lambda    float64    `json:"lambda,omitempty" doc:"ridge penalty of augmented; 0 (default) cross-validates it"`
	Alpha     float64    `json:"alpha,omitempty" doc:"1 − confidence level, default 0.05"`
	Conformal *bool      `json:"conformal,omitempty" doc:"conformal inference, default true"`
	Placebo   *bool      `json:"placebo,omitempty" doc:"in-space placebo test, default true"`
	PerMarket *bool      `json:"per_market,omitempty" doc:"with several test markets, also fit each one, default true"`
	Outcome   string     `json:"outcome,omitempty" doc:"the outcome's name, for the charts' axes; default \"value\""`
}

// geoResult is the answer of POST /v1/analyses/geo: the report of "lift geo"
// (the same pipeline: synth.FromLong, synth.Run) and the panel's size.
type geoResult struct {
	*synth.Report
	NUnits   int `json:"n_units"`
	NPeriods int `json:"n_periods"`
	// Stored describes a panel built from stored events.
	Stored *geoStored `json:"stored,omitempty"`
}

// geoStored says how a panel from stored events was built.
type geoStored struct {
	Metric      string         `json:"metric"`
	Aggregation string         `json:"aggregation"`
	Market      string         `json:"market,omitempty" doc:"the unit attribute naming the market"`
	Period      string         `json:"period"`
	From        time.Time      `json:"from"`
	To          time.Time      `json:"to"`
	MarketUnits map[string]int `json:"market_units" doc:"units with events in the range, per market"`
	Unassigned  int            `json:"unassigned_units" doc:"units with events but no market attribute, left out"`
}

var geoQuery = []param{
	{Name: "format", Description: "html: answer the page with every chart; svg, png or pdf: answer one chart instead of JSON"},
	{Name: "chart", Description: "which chart with svg, png or pdf: synthetic (default), effect, placebo or weights"},
}

func (s *Server) geoRoutes() {
	s.route(http.MethodPost, "/v1/analyses/geo", experiment.RoleAnalyst, s.postGeo, op{
		Summary: "Synthetic control of test markets over an uploaded panel or one from stored events", Request: geoRequest{}, Response: geoResult{},
		Query: geoQuery,
		Description: "Fits the synthetic control (Abadie, Diamond & Hainmueller 2010; method augmented: Ben-Michael, " +
			"Feller & Rothstein 2021) of the average of the treated units from the others over the periods before start, " +
			"and reports the weights, the effect path, the average effect and lift, conformal inference (Chernozhukov, " +
			"Wüthrich & Zhu 2021) and the in-space placebo test with their p-values and intervals, and the fit " +
			"diagnostics; with several test markets also one fit per market. The same pipeline as \"lift geo\" " +
			"(docs/geo.md). A bad row is 400 naming rows[i]; at most 500,000 rows. Instead of rows, metric with from, to and period " +
			"builds the panel from stored events: the metric's per-unit panel (as for difference-in-differences) summed over " +
			"the units of each market, the market being the unit attribute named by market (each unit its own market without it); " +
			"start is then an RFC 3339 time and its period the first treated. With ?format=html the answer is the page: every fit's summary, the weights, the path and the four charts inlined as SVG. With ?format=svg|png|pdf the answer is a chart " +
			"of the average fit: chart=synthetic (default: treated vs synthetic, the intervention marked), chart=effect (the effect " +
			"path with its conformal band), chart=placebo (every donor's placebo gap in grey, the treated's in colour) or chart=weights."})
}

// GeoChartNames are the charts of a synthetic control, in the order "lift geo
// --plot" writes them: treated vs synthetic, the effect path with its
// conformal band, the placebo gaps, the weights.
var GeoChartNames = []string{"synthetic", "effect", "placebo", "weights"}

// GeoChart is the named chart (one of GeoChartNames) of a synthetic-control
// report's average fit, for "lift geo --plot" and POST
// /v1/analyses/geo?chart=…; outcome names the y axis. The placebo chart needs
// the report's placebo test.
func GeoChart(r *synth.Report, name, outcome string) (reports.Chart, error) {
	e := r.Average
	per := reports.SynthPeriods{Start: r.NPre}
	for _, pt := range e.Path {
		per.Periods = append(per.Periods, pt.Period)
	}
	unit := e.Unit
	switch name {
	case "synthetic":
		c := &reports.SynthPath{Unit: unit, Outcome: outcome, SynthPeriods: per}
		for _, pt := range e.Path {
			c.Treated, c.Synthetic = append(c.Treated, pt.Treated), append(c.Synthetic, pt.Synthetic)
		}
		return c, nil
	case "effect":
		c := &reports.SynthEffect{Unit: unit, Outcome: outcome, SynthPeriods: per, Level: 1 - r.Alpha}
		for t, pt := range e.Path {
			c.Effect = append(c.Effect, pt.Effect)
			if t < r.NPre {
				continue
			}
			var lo, hi *float64
			if iv := pt.Interval; iv != nil && !iv.Empty {
				lo, hi = iv.Low, iv.High
			}
			c.Low, c.High = append(c.Low, lo), append(c.High, hi)
		}
		return c, nil
	case "placebo":
		if e.Placebo == nil {
			return nil, experiment.E("api.geo", experiment.Invalid, experiment.Field("placebo"), experiment.Errorf("the placebo chart needs the placebo test: it was turned off"))
		}
		c := &reports.PlaceboGaps{Unit: unit, Outcome: outcome, SynthPeriods: per}
		for _, pt := range e.Path {
			c.Treated = append(c.Treated, pt.Effect)
		}
		for _, g := range e.Placebo.Gaps {
			c.Donors = append(c.Donors, reports.GapSeries{Unit: g.Unit, Gaps: g.Values})
		}
		return c, nil
	case "weights":
		c := &reports.SynthWeights{Unit: unit}
		for _, w := range e.Weights {
			c.Weights = append(c.Weights, reports.DonorWeight{Unit: w.Unit, Weight: w.Weight})
		}
		return c, nil
	}
	return nil, experiment.E("api.geo", experiment.Invalid, experiment.Field("chart"), experiment.Errorf("must be one of %s, got %q", strings.Join(GeoChartNames, ", "), name))
}

// GeoPage is the page of a synthetic-control report (POST
// /v1/analyses/geo?format=html, "lift geo --plot DIR"'s geo.html): the
// summary of every fit, the average fit's weights and post-period path, and
// its charts (GeoChartNames; the placebo chart only with the placebo test).
func GeoPage(r *synth.Report, outcome string, nUnits, nPeriods int) (*reports.GeoPage, error) {
	intercept := ""
	if r.Intercept {
		intercept = ", intercept"
	}
	g := &reports.GeoPage{
		Title:   fmt.Sprintf("Synthetic control (%s%s): %s", r.Method, intercept, r.Average.Unit),
		Meta:    fmt.Sprintf("%d units × %d periods, %d donors; pre-period %d periods, post-period %d from %s.", nUnits, nPeriods, r.Donors, r.NPre, r.NPost, r.Start),
		Outcome: outcome, Level: 1 - r.Alpha,
	}
	for _, e := range append([]synth.Estimate{r.Average}, r.Markets...) {
		f := reports.GeoFit{Unit: e.Unit, Effect: e.Effect, Cumulative: e.Cumulative, Lift: e.Lift, PreRMSPE: e.PreRMSPE, R2: e.R2}
		if cf := e.Conformal; cf != nil {
			f.ConformalP = &cf.PValue
			f.ConformalLow, f.ConformalHigh, f.ConformalEmpty = cf.Interval.Low, cf.Interval.High, cf.Interval.Empty
		}
		if pl := e.Placebo; pl != nil {
			f.PlaceboP, f.PlaceboRank, f.Placebos = &pl.PValue, pl.Rank, pl.N
			f.PlaceboLow, f.PlaceboHigh, f.PlaceboEmpty = pl.Interval.Low, pl.Interval.High, pl.Interval.Empty
		}
		for _, w := range e.Weights {
			f.Weights = append(f.Weights, reports.DonorWeight{Unit: w.Unit, Weight: w.Weight})
		}
		g.Fits = append(g.Fits, f)
		for _, w := range e.Warnings {
			g.Warnings = append(g.Warnings, e.Unit+": "+w)
		}
	}
	for _, pt := range r.Average.Path[r.NPre:] {
		row := reports.GeoPathRow{Period: pt.Period, Treated: pt.Treated, Synthetic: pt.Synthetic, Effect: pt.Effect, PValue: pt.PValue}
		if iv := pt.Interval; iv != nil {
			row.Low, row.High, row.Empty = iv.Low, iv.High, iv.Empty
		}
		g.Path = append(g.Path, row)
	}
	for _, name := range GeoChartNames {
		if name == "placebo" && r.Average.Placebo == nil {
			continue
		}
		ch, err := GeoChart(r, name, outcome)
		if err != nil {
			return nil, err
		}
		g.Charts = append(g.Charts, ch)
	}
	return g, nil
}

func (s *Server) postGeo(c echo.Context) error {
	const op = "api.geo"
	asHTML := c.QueryParam("format") == "html"
	var (
		f       reports.Format
		chart   string
		asChart bool
		err     error
	)
	if asHTML {
		if ch := c.QueryParam("chart"); ch != "" {
			return experiment.E(op, experiment.Invalid, experiment.Field("chart"), experiment.Errorf("the html page has every chart: leave chart out, or ask for format svg, png or pdf"))
		}
	} else if f, chart, asChart, err = chartRequest(c, GeoChartNames, GeoChartNames[0]); err != nil {
		return err
	}
	var req geoRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	ga, err := s.geoAnalysis(c.Request().Context(), &req)
	if err != nil {
		return err
	}
	rep, p, stored, outcome := ga.rep, ga.panel, ga.stored, ga.outcome
	if asHTML {
		g, err := GeoPage(rep, outcome, len(p.Units), len(p.Periods))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := g.HTML(&b, reports.RenderOptions{}); err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "text/html; charset=utf-8", b.Bytes())
	}
	if asChart {
		ch, err := GeoChart(rep, chart, outcome)
		if err != nil {
			return err
		}
		return renderChart(c, ch, f)
	}
	return c.JSON(http.StatusOK, geoResult{Report: rep, NUnits: len(p.Units), NPeriods: len(p.Periods), Stored: stored})
}

// geoAnalysis is what POST /v1/analyses/geo and the console's geo page
// compute: the panel of the request (uploaded rows or stored events) and its
// synthetic control (synth.Run, the pipeline of "lift geo"). Bad input is
// Invalid naming the field.
type geoAnalysisResult struct {
	rep     *synth.Report
	panel   synth.Panel
	stored  *geoStored
	outcome string
}

func (s *Server) geoAnalysis(ctx context.Context, req *geoRequest) (*geoAnalysisResult, error) {
	const op = "api.geo"
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	switch {
	case len(req.Rows) > 0 && req.Metric != "":
		return nil, invalid("metric", "give either rows (an uploaded panel) or metric with from and to (stored events), not both")
	case len(req.Rows) == 0 && req.Metric == "":
		return nil, invalid("rows", "is required: the panel, one row per unit and period; or metric, from and to for a panel from stored events")
	case len(req.Rows) > MaxGeoRows:
		return nil, experiment.E(op, experiment.TooLarge, experiment.Field("rows"), experiment.Errorf("%d rows; the limit is %d", len(req.Rows), MaxGeoRows))
	case len(req.Treated) == 0:
		return nil, invalid("treated", "is required: list the test markets")
	case req.Start == "":
		return nil, invalid("start", "is required")
	case req.Alpha != 0 && !(req.Alpha > 0 && req.Alpha < 1):
		return nil, invalid("alpha", "must be in (0, 1), got %g", req.Alpha)
	case !(req.Lambda >= 0):
		return nil, invalid("lambda", "must be ≥ 0, got %g", req.Lambda)
	}
	if req.Metric == "" {
		for _, f := range []struct{ name, v string }{{"market", req.Market}, {"from", req.From}, {"to", req.To}, {"period", req.Period}} {
			if f.v != "" {
				return nil, invalid(f.name, "applies to a panel from stored events (with metric), not to uploaded rows")
			}
		}
	}
	method := synth.Method(req.Method)
	if req.Method == "" {
		method = synth.SCM
	}
	if method != synth.SCM && method != synth.Augmented {
		return nil, invalid("method", "must be scm or augmented, got %q", req.Method)
	}
	var (
		err    error
		p      synth.Panel
		stored *geoStored
		start  = -1 // the first treated period's index, when stored
	)
	if req.Metric != "" {
		if p, stored, start, err = s.geoStoredPanel(ctx, req); err != nil {
			return nil, err
		}
	} else if p, err = geoUploadedPanel(req); err != nil {
		return nil, err
	}
	on := func(b *bool) bool { return b == nil || *b }
	o := synth.Options{Method: method, Intercept: req.Intercept, Lambda: req.Lambda, Alpha: req.Alpha,
		Conformal: on(req.Conformal), Placebo: on(req.Placebo), PerMarket: on(req.PerMarket)}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	var bad int
	if o.Treated, bad, err = synth.UnitIndexes(p, req.Treated); err != nil {
		return nil, invalid(fmt.Sprintf("treated[%d]", bad), "%v", err)
	}
	if start >= 0 {
		o.Start = start
	} else if o.Start, err = synth.StartIndex(p.Periods, req.Start); err != nil {
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Field("start"), err)
	}
	rep, err := synth.Run(p, o)
	switch {
	case errors.Is(err, synth.ErrInsufficient):
		return nil, experiment.E(op, experiment.InsufficientData, experiment.Field("treated"), err)
	case err != nil:
		return nil, experiment.E(op, experiment.InsufficientData, err)
	}
	outcome := req.Outcome
	if outcome == "" {
		outcome = "value"
		if stored != nil {
			outcome = stored.Metric
		}
	}
	return &geoAnalysisResult{rep: rep, panel: p, stored: stored, outcome: outcome}, nil
}

// geoUploadedPanel builds the panel of the request's rows (synth.FromLong, as
// "lift geo" does), naming rows[i] of a bad row.
func geoUploadedPanel(req *geoRequest) (synth.Panel, error) {
	const op = "api.geo"
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	units, periods, y := make([]string, len(req.Rows)), make([]string, len(req.Rows)), make([]float64, len(req.Rows))
	for i, r := range req.Rows {
		switch {
		case r.Unit == "":
			return synth.Panel{}, invalid(fmt.Sprintf("rows[%d].unit", i), "is required")
		case r.Period == "":
			return synth.Panel{}, invalid(fmt.Sprintf("rows[%d].period", i), "is required")
		case r.Value == nil:
			return synth.Panel{}, invalid(fmt.Sprintf("rows[%d].value", i), "is required")
		}
		units[i], periods[i], y[i] = r.Unit, r.Period, *r.Value
	}
	p, err := synth.FromLong(units, periods, y)
	var re *synth.RowError
	switch {
	case errors.As(err, &re):
		return p, invalid(fmt.Sprintf("rows[%d]", re.Row), "%s", re.Msg)
	case err != nil:
		return p, invalid("rows", "%v", err)
	}
	return p, nil
}

// geoStoredPanel builds the panel of markets from stored events
// (store.MarketPanel: the server's metric engine's per-unit panel, as for
// difference-in-differences, summed per market),
// labelling periods by the date they start, and the index of the period that
// holds start.
func (s *Server) geoStoredPanel(ctx context.Context, req *geoRequest) (synth.Panel, *geoStored, int, error) {
	const op = "api.geo"
	from, err := didTime("from", req.From)
	if err != nil {
		return synth.Panel{}, nil, 0, err
	}
	to, err := didTime("to", req.To)
	if err != nil {
		return synth.Panel{}, nil, 0, err
	}
	start, err := didTime("start", req.Start)
	if err != nil {
		return synth.Panel{}, nil, 0, err
	}
	if req.Period == "" {
		req.Period = string(metric.Day)
	}
	if !start.After(from) || !start.Before(to) {
		return synth.Panel{}, nil, 0, experiment.E(op, experiment.Invalid, experiment.Field("start"),
			experiment.Errorf("must be after from and before to, got %s outside (%s, %s)", start.Format(time.RFC3339), from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	mp, err := s.db.MarketPanel(ctx, store.MarketPanelQuery{Metric: req.Metric, Attribute: req.Market, From: from, To: to, Period: metric.PanelPeriod(req.Period), Engine: s.results.Engine()})
	if err != nil {
		return synth.Panel{}, nil, 0, err
	}
	p := synth.Panel{Units: mp.Markets, Y: mp.Y}
	for k := range len(mp.Y[0]) {
		p.Periods = append(p.Periods, mp.PeriodLabel(k))
	}
	st := &geoStored{Metric: mp.Metric.Name, Aggregation: string(mp.Metric.Aggregation), Market: req.Market, Period: req.Period,
		From: from, To: to, MarketUnits: map[string]int{}, Unassigned: mp.Unassigned}
	for i, m := range mp.Markets {
		st.MarketUnits[m] = mp.Units[i]
	}
	return p, st, int(start.Sub(from) / mp.Period.Duration()), nil
}
