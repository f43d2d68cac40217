package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"gonum.org/v1/gonum/mat"

	"github.com/liftlab/lift/analysis/did"
	"github.com/liftlab/lift/analysis/uplift"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/store"
)

// Quasi-experiments and targeting on data in the store: unit attributes,
// difference-in-differences over a rollout date, and uplift models over an
// experiment's exposures (docs/quasi-api.md).

// MaxUnitBatch is the most units one POST /v1/units may carry.
const MaxUnitBatch = 10_000

// Limits of the uplift endpoint.
const (
	maxUpliftFeatures = 100  // attribute names in "features"
	maxUpliftLevels   = 1000 // distinct text values of one one-hot encoded attribute
)

type unitIn struct {
	Unit       string         `json:"unit" required:"true" doc:"the unit (user id, device id, ...) as in exposures and events"`
	Attributes map[string]any `json:"attributes" doc:"flat object of numbers, strings and booleans; null removes an attribute"`
}

type unitBatch struct {
	Units []unitIn `json:"units" required:"true"`
}

type unitsAccepted struct {
	Accepted int `json:"accepted" doc:"distinct units written"`
}

// unitGroupIn selects the treated or control units of a difference-in-differences.
type unitGroupIn struct {
	Experiment string   `json:"experiment,omitempty" doc:"with variant: the units exposed to that variant of the experiment"`
	Variant    string   `json:"variant,omitempty" doc:"a variant of experiment"`
	Units      []string `json:"units,omitempty" doc:"or: the listed units"`
}

// cohortIn is a treated cohort of a staggered rollout: its units and when
// their treatment started.
type cohortIn struct {
	Rollout    string   `json:"rollout" required:"true" doc:"RFC 3339 time this cohort's treatment started"`
	Experiment string   `json:"experiment,omitempty" doc:"with variant: the units exposed to that variant of the experiment"`
	Variant    string   `json:"variant,omitempty" doc:"a variant of experiment"`
	Units      []string `json:"units,omitempty" doc:"or: the listed units"`
}

type didRequest struct {
	Metric     string          `json:"metric" required:"true" doc:"a sum, count or binary metric"`
	Treated    *unitGroupIn    `json:"treated,omitempty" doc:"with rollout: {\"experiment\", \"variant\"} or {\"units\": [...]}; or give cohorts"`
	Cohorts    []cohortIn      `json:"cohorts,omitempty" doc:"instead of treated and rollout: treated cohorts with their own rollout times (staggered adoption)"`
	Control    json.RawMessage `json:"control" required:"true" doc:"never-treated units: same shapes as treated, or \"rest\": every other unit with events of the metric in the range"`
	Rollout    string          `json:"rollout,omitempty" doc:"with treated: RFC 3339 time the treatment started; the period containing it is the first treated period"`
	From       string          `json:"from" required:"true" doc:"RFC 3339 start of the panel (inclusive)"`
	To         string          `json:"to" required:"true" doc:"RFC 3339 end of the panel (exclusive)"`
	Period     string          `json:"period,omitempty" doc:"day (default) or week"`
	EventStudy bool            `json:"event_study,omitempty" doc:"add event-study coefficients and the pre-trend test"`
	Staggered  bool            `json:"staggered,omitempty" doc:"add the Callaway & Sant'Anna estimator (automatic when the cohorts start in different periods)"`
	Alpha      float64         `json:"alpha,omitempty" doc:"1 − confidence level, default 0.05"`
}

// didResult is the answer of POST /v1/analyses/did: the report of "lift did"
// (the same pipeline, did.Run) and the panel's description. Periods (cohorts,
// event times, att_gt's group and time) are indices: 0 is the period starting
// at from.
type didResult struct {
	*did.Report
	Metric        string          `json:"metric"`
	Period        string          `json:"period"`
	From          time.Time       `json:"from"`
	To            time.Time       `json:"to"`
	Rollout       time.Time       `json:"rollout" doc:"the rollout (with cohorts: the earliest)"`
	Periods       int             `json:"periods"`
	RolloutPeriod int             `json:"rollout_period" doc:"index of the first treated period (with cohorts: the earliest)"`
	Rollouts      []time.Time     `json:"rollouts,omitempty" doc:"with cohorts: each cohort's rollout"`
	TreatedUnits  int             `json:"treated_units"`
	ControlUnits  int             `json:"control_units"`
	Overlap       int             `json:"overlap_units" doc:"units in more than one group, left out"`
	Privacy       reports.Privacy `json:"privacy"`
}

type upliftRequest struct {
	Experiment string   `json:"experiment" required:"true"`
	Treatment  string   `json:"treatment,omitempty" doc:"treated variant; default the other variant of a two-variant experiment"`
	Control    string   `json:"control,omitempty" doc:"control variant; default the experiment's first variant"`
	Metric     string   `json:"metric" required:"true" doc:"the outcome: a sum, count, binary or mean metric, per unit as in the experiment's results"`
	Features   []string `json:"features" required:"true" doc:"unit attribute names; numbers as they are, text one-hot encoded"`
	Learner    string   `json:"learner,omitempty" doc:"t, s or x (default)"`
	Base       string   `json:"base,omitempty" doc:"trees (default, gradient boosting) or ridge"`
	Seed       *uint64  `json:"seed,omitempty" doc:"seed of the train/test split and the bootstrap, default 1"`
	TestShare  float64  `json:"test_share,omitempty" doc:"share of units held out for evaluation, default 0.3"`
	Bootstrap  *int     `json:"bootstrap,omitempty" doc:"bootstrap replicates of the intervals, default 200; 0 for none"`
	Alpha      float64  `json:"alpha,omitempty" doc:"1 − interval coverage, default 0.05"`
}

// upliftResult is the answer of POST /v1/analyses/uplift: the report of "lift
// uplift" (the same pipeline, uplift.Run) and where the data came from.
type upliftResult struct {
	*uplift.Report
	Control      string          `json:"control"`
	Treated      string          `json:"treated"`
	Experiment   string          `json:"experiment"`
	Metric       string          `json:"metric"`
	MultipleArms int             `json:"multiple_arms" doc:"units exposed to more than one variant, left out"`
	Privacy      reports.Privacy `json:"privacy"`
}

var chartQuery = []param{
	{Name: "format", Description: "svg, png or pdf: answer a chart instead of JSON"},
	{Name: "chart", Description: "which chart (see the description); default the first listed"},
}

// quasiRoutes: unit attributes (ingest) and the quasi-experimental analyses
// (analysts: exact numbers).
func (s *Server) quasiRoutes() {
	s.route(http.MethodPost, "/v1/units", experiment.RoleIngest, s.postUnits, op{
		Summary: "Upsert unit attributes (at most 10,000 units)", Request: unitBatch{}, Response: unitsAccepted{},
		Description: "Merges each unit's attributes into the stored ones (a JSON merge patch: a key sent replaces " +
			"the stored value, null removes it, keys not sent are kept). Attributes are numbers, strings or booleans; " +
			"they are the features of POST /v1/analyses/uplift. One transaction: a bad entry is 400 naming " +
			"units[i].unit or units[i].attributes.NAME and nothing is written."})
	s.route(http.MethodPost, "/v1/analyses/did", experiment.RoleAnalyst, s.postDiD, op{
		Summary: "Difference-in-differences of a metric over a rollout date", Request: didRequest{}, Response: didResult{},
		Query: chartQuery,
		Description: "Builds the panel of the metric per unit and day (or week) over [from, to) for the treated and " +
			"control units (zero-filled), then fits metric ~ treated + post + treated×post with errors clustered by " +
			"unit (CR1), and with event_study a two-way fixed-effects event study with a joint pre-trend test. " +
			"With cohorts instead of treated and rollout, each cohort is treated from its own rollout; when they start " +
			"in different periods the answer says so (staggered_timing, warning) and adds the Callaway & Sant'Anna " +
			"group-time effects with their simple, dynamic and group aggregations (staggered; staggered: true asks for " +
			"them with one cohort). The same pipeline as \"lift did\" (did.Run). " +
			"With ?format=svg|png|pdf the answer is a chart: chart=event_study (default when event_study is true), " +
			"chart=staggered (Callaway & Sant'Anna's dynamic effects) or chart=trends (mean per group and period, the default otherwise)."})
	s.route(http.MethodPost, "/v1/analyses/uplift", experiment.RoleAnalyst, s.postUplift, op{
		Summary: "Uplift model over an experiment's exposures, evaluated on held-out units", Request: upliftRequest{}, Response: upliftResult{},
		Query: chartQuery,
		Description: "Joins the first exposures of the two variants with the metric's per-unit values and the units' " +
			"attributes, fits the meta-learner on a seeded training split and evaluates its ranking on the held-out " +
			"units: Qini coefficient and AUUC (causalml's definitions), uplift by decile and the value of targeting " +
			"the top 10%…100%: the same pipeline as \"lift uplift\" (uplift.Run). With ?format=svg|png|pdf the answer is a chart: chart=qini (default) or chart=uplift."})
}

func (s *Server) postUnits(c echo.Context) error {
	const op = "api.units"
	b, err := s.readBody(c)
	if err != nil {
		return err
	}
	var batch struct {
		Units []json.RawMessage `json:"units"`
	}
	if err := decodeJSON(b, &batch); err != nil {
		return err
	}
	if batch.Units == nil {
		return experiment.E(op, experiment.Invalid, experiment.Field("units"), experiment.Errorf(`is required: send {"units": [...]}`))
	}
	if len(batch.Units) > MaxUnitBatch {
		return experiment.E(op, experiment.TooLarge, experiment.Field("units"),
			experiment.Errorf("%d units in one request; the limit is %d: split the batch", len(batch.Units), MaxUnitBatch))
	}
	in := make([]store.UnitAttributes, len(batch.Units))
	for i, raw := range batch.Units {
		var u unitIn
		if err := decodeJSON(raw, &u); err != nil {
			return prefixField(op, fmt.Sprintf("units[%d]", i), err)
		}
		in[i] = store.UnitAttributes{Unit: u.Unit, Attributes: u.Attributes}
	}
	n, err := s.db.UpsertUnitAttributes(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, unitsAccepted{Accepted: n})
}

// prefixField re-roots the field of a decoding error under prefix.
func prefixField(op, prefix string, err error) error {
	var e *experiment.Error
	if !errors.As(err, &e) {
		return experiment.E(op, experiment.Invalid, experiment.Field(prefix), err)
	}
	field := prefix
	if e.Field != "" {
		field += "." + e.Field
	}
	msg := e.Message()
	if e.Field != "" {
		msg = strings.TrimPrefix(msg, e.Field+": ")
	}
	return experiment.E(op, e.Kind, experiment.Field(field), errors.New(msg))
}

// chartRequest reads ?format and ?chart: ok is false for a JSON answer.
func chartRequest(c echo.Context, charts []string, def string) (f reports.Format, chart string, ok bool, err error) {
	const op = "api.chart"
	fs, chart := c.QueryParam("format"), c.QueryParam("chart")
	if (fs == "" || fs == "json") && chart == "" {
		return "", "", false, nil
	}
	if fs == "" || fs == "json" {
		fs = "svg"
	}
	if f, err = reports.ParseFormat(fs); err != nil {
		return "", "", false, experiment.E(op, experiment.Invalid, experiment.Field("format"), experiment.Errorf(`must be "svg", "png", "pdf" or "json", got %q`, fs))
	}
	if chart == "" {
		chart = def
	}
	if chart != "" && !slices.Contains(charts, chart) {
		return "", "", false, experiment.E(op, experiment.Invalid, experiment.Field("chart"), experiment.Errorf("must be one of %s, got %q", strings.Join(charts, ", "), chart))
	}
	return f, chart, true, nil
}

func renderChart(c echo.Context, ch reports.Chart, f reports.Format) error {
	b, err := reports.Bytes(ch, f, reports.RenderOptions{})
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, f.ContentType(), b)
}

func didTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, experiment.E("api.did", experiment.Invalid, experiment.Field(field), experiment.Errorf("is required (an RFC 3339 time)"))
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, experiment.E("api.did", experiment.Invalid, experiment.Field(field), experiment.Errorf("must be an RFC 3339 time such as 2026-03-01T00:00:00Z, got %q", v))
	}
	return t.UTC(), nil
}

// group turns a request's group into a store group.
func (g *unitGroupIn) group() metric.UnitGroup {
	return metric.UnitGroup{Experiment: g.Experiment, Variant: g.Variant, Units: g.Units}
}

func (s *Server) postDiD(c echo.Context) error {
	const op = "api.did"
	f, chart, asChart, err := chartRequest(c, []string{"event_study", "staggered", "trends"}, "")
	if err != nil {
		return err
	}
	var req didRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	if req.Metric == "" {
		return invalid("metric", "is required")
	}
	// The treated groups, each with its rollout: one (treated, rollout) or the cohorts.
	type treatedGroup struct {
		field   string // JSON path of the group, for errors
		rollout string
		rfield  string // JSON path of its rollout
		group   metric.UnitGroup
	}
	var tgs []treatedGroup
	switch {
	case req.Treated != nil && req.Cohorts != nil:
		return invalid("cohorts", "give either treated with rollout, or cohorts, not both")
	case req.Cohorts != nil:
		if len(req.Cohorts) == 0 {
			return invalid("cohorts", "is empty: list at least one cohort")
		}
		if req.Rollout != "" {
			return invalid("rollout", "with cohorts, each cohort has its own rollout: leave rollout out")
		}
		if len(req.Cohorts) > 100 {
			return invalid("cohorts", "%d cohorts; the limit is 100", len(req.Cohorts))
		}
		for i, ch := range req.Cohorts {
			tgs = append(tgs, treatedGroup{fmt.Sprintf("cohorts[%d]", i), ch.Rollout, fmt.Sprintf("cohorts[%d].rollout", i),
				metric.UnitGroup{Experiment: ch.Experiment, Variant: ch.Variant, Units: ch.Units}})
		}
	case req.Treated != nil:
		tgs = append(tgs, treatedGroup{"treated", req.Rollout, "rollout", req.Treated.group()})
	default:
		return invalid("treated", `is required: {"experiment": KEY, "variant": NAME} or {"units": [...]} with rollout, or cohorts`)
	}
	var groups []metric.UnitGroup
	for _, tg := range tgs {
		groups = append(groups, tg.group)
	}
	switch ctl := bytes.TrimSpace(req.Control); {
	case len(ctl) == 0 || string(ctl) == "null":
		return invalid("control", `is required: {"experiment": KEY, "variant": NAME}, {"units": [...]} or "rest"`)
	case ctl[0] == '"':
		var v string
		if err := json.Unmarshal(ctl, &v); err != nil || v != "rest" {
			return invalid("control", `a string control must be "rest", got %s`, ctl)
		}
		groups = append(groups, metric.UnitGroup{Rest: true})
	default:
		var g unitGroupIn
		if err := decodeJSON(ctl, &g); err != nil {
			return prefixField(op, "control", err)
		}
		groups = append(groups, g.group())
	}
	from, err := didTime("from", req.From)
	if err != nil {
		return err
	}
	to, err := didTime("to", req.To)
	if err != nil {
		return err
	}
	if req.Period == "" {
		req.Period = string(metric.Day)
	}
	period := metric.PanelPeriod(req.Period)
	if req.Alpha == 0 {
		req.Alpha = 0.05
	}
	if !(req.Alpha > 0 && req.Alpha < 1) {
		return invalid("alpha", "must be in (0, 1), got %g", req.Alpha)
	}
	rollouts := make([]time.Time, len(tgs))
	for i, tg := range tgs {
		if rollouts[i], err = didTime(tg.rfield, tg.rollout); err != nil {
			return err
		}
		rollout := rollouts[i]
		if period == metric.Day || period == metric.Week {
			plen := period.Duration()
			if !rollout.After(from) || !rollout.Before(to) {
				return invalid(tg.rfield, "must be after from and before to, got %s outside (%s, %s)", rollout.Format(time.RFC3339), from.Format(time.RFC3339), to.Format(time.RFC3339))
			}
			if rollout.Sub(from) < plen {
				return invalid(tg.rfield, "must leave at least one whole %s before it: from %s, rollout %s", period, from.Format(time.RFC3339), rollout.Format(time.RFC3339))
			}
		}
	}
	if chart == "" {
		chart = "trends"
		if req.EventStudy {
			chart = "event_study"
		}
	}
	ctx := c.Request().Context()
	p, err := s.db.MetricPanel(ctx, store.PanelQuery{Metric: req.Metric, Groups: groups, From: from, To: to, Period: period, Engine: s.results.Engine()})
	if err != nil {
		return didGroupField(op, err, tgs[0].field, len(tgs))
	}
	ctlIdx := len(tgs)
	for i, tg := range tgs {
		if p.GroupUnits[i] == 0 {
			return experiment.E(op, experiment.InsufficientData, experiment.Field(tg.field), experiment.Errorf("the %s group has no units (after leaving out %d units in more than one group)", tg.field, p.Overlap))
		}
	}
	if p.GroupUnits[ctlIdx] == 0 {
		return experiment.E(op, experiment.InsufficientData, experiment.Field("control"), experiment.Errorf("the control group has no units (after leaving out %d units in more than one group)", p.Overlap))
	}
	start := make([]int, len(tgs)) // first treated period of each treated group
	first := 0
	for i, r := range rollouts {
		start[i] = int(r.Sub(from) / period.Duration())
		if start[i] < start[first] {
			first = i
		}
	}
	out := &didResult{Metric: p.Metric.Name, Period: string(period), From: from, To: to, Rollout: rollouts[first],
		Periods: p.Periods, RolloutPeriod: start[first], ControlUnits: p.GroupUnits[ctlIdx], Overlap: p.Overlap}
	if req.Cohorts != nil {
		out.Rollouts = rollouts
	}
	for i := range tgs {
		out.TreatedUnits += p.GroupUnits[i]
	}
	n := len(p.Y)
	treated, post := make([]bool, n), make([]bool, n)
	for i := range n {
		// Post: from the group's own rollout; for the controls, from the earliest.
		if g := p.Group[p.Unit[i]]; g < ctlIdx {
			treated[i], post[i] = true, p.Time[i] >= start[g]
		} else {
			post[i] = p.Time[i] >= start[first]
		}
	}
	if asChart && chart == "trends" {
		return renderChart(c, didTrends(p, treated, rollouts[first]), f)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	out.Report, err = did.Run(did.Data{Y: p.Y, Unit: p.Unit, Time: p.Time, Treated: treated, Post: post},
		did.RunOptions{VCE: did.CR1, Alpha: req.Alpha, EventStudy: req.EventStudy || (asChart && chart == "event_study"),
			Staggered: req.Staggered || (asChart && chart == "staggered")})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return experiment.E(op, experiment.InsufficientData, err)
	}
	if asChart {
		return renderChart(c, DiDEventChart(out.Report, out.Metric, fmt.Sprintf("%s per unit-%s", p.Metric.Aggregation, period), chart == "staggered"), f)
	}
	return c.JSON(http.StatusOK, out)
}

// didGroupField renames the store's groups[i] to the request's fields: the
// treated group (or cohorts[i]) and control, the last group.
func didGroupField(op string, err error, treatedField string, treatedGroups int) error {
	var e *experiment.Error
	if !errors.As(err, &e) {
		return err
	}
	for i := 0; i <= treatedGroups; i++ {
		name := "control"
		if i < treatedGroups {
			name = treatedField
			if treatedField != "treated" {
				name = fmt.Sprintf("cohorts[%d]", i)
			}
		}
		p := fmt.Sprintf("groups[%d]", i)
		if rest, ok := strings.CutPrefix(e.Field, p); ok {
			msg := strings.TrimPrefix(e.Message(), e.Field+": ")
			return experiment.E(op, e.Kind, experiment.Field(name+rest), errors.New(msg))
		}
	}
	return err
}

// DiDEventChart is the event-study chart of a difference-in-differences
// report, for "lift did --chart" and POST /v1/analyses/did?chart=…: with
// staggered, Callaway & Sant'Anna's dynamic aggregation θ(e) (every event time,
// the pre-period placebos included); otherwise the TWFE event study with its
// omitted reference period −1 drawn at zero.
func DiDEventChart(r *did.Report, metric, unit string, staggered bool) *reports.EventStudy {
	ch := &reports.EventStudy{Metric: metric, Unit: unit, Level: 1 - r.Alpha}
	events := r.Events
	if staggered && r.Staggered != nil {
		events = r.Staggered.Dynamic
		ch.Metric += " (Callaway & Sant'Anna)"
	} else {
		ch.Coefficients = append(ch.Coefficients, reports.PeriodEffect{Period: -1})
	}
	for _, k := range events {
		ch.Coefficients = append(ch.Coefficients, reports.PeriodEffect{Period: k.RelTime, Interval: reports.Interval{Estimate: k.Estimate, Low: k.CILow, High: k.CIHigh}})
	}
	sort.SliceStable(ch.Coefficients, func(i, j int) bool { return ch.Coefficients[i].Period < ch.Coefficients[j].Period })
	return ch
}

// didTrends is the mean of the metric per group and period.
func didTrends(p *metric.Panel, treated []bool, rollout time.Time) *reports.DiDTrends {
	sum := [2][]float64{make([]float64, p.Periods), make([]float64, p.Periods)}
	cnt := [2][]int{make([]int, p.Periods), make([]int, p.Periods)}
	for i, y := range p.Y {
		g := 1
		if treated[i] {
			g = 0
		}
		sum[g][p.Time[i]] += y
		cnt[g][p.Time[i]]++
	}
	ch := &reports.DiDTrends{Metric: p.Metric.Name, Unit: fmt.Sprintf("%s per unit-%s", p.Metric.Aggregation, p.Period), Intervention: rollout}
	for k := range p.Periods {
		t := p.PeriodStart(k)
		ch.Treated = append(ch.Treated, reports.TimeValue{Time: t, Value: sum[0][k] / float64(cnt[0][k])})
		ch.Control = append(ch.Control, reports.TimeValue{Time: t, Value: sum[1][k] / float64(cnt[1][k])})
	}
	return ch
}

func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func (s *Server) postUplift(c echo.Context) error {
	const op = "api.uplift"
	f, chart, asChart, err := chartRequest(c, []string{"qini", "uplift"}, "qini")
	if err != nil {
		return err
	}
	var req upliftRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	if req.Experiment == "" {
		return invalid("experiment", "is required")
	}
	if req.Metric == "" {
		return invalid("metric", "is required")
	}
	if len(req.Features) == 0 {
		return invalid("features", "is required: name at least one unit attribute")
	}
	if len(req.Features) > maxUpliftFeatures {
		return invalid("features", "%d features; the limit is %d", len(req.Features), maxUpliftFeatures)
	}
	for i, name := range req.Features {
		if name == "" {
			return invalid(fmt.Sprintf("features[%d]", i), "is empty")
		}
		if slices.Index(req.Features, name) != i {
			return invalid(fmt.Sprintf("features[%d]", i), "%q is listed twice", name)
		}
	}
	if req.Learner == "" {
		req.Learner = "x"
	}
	switch req.Learner {
	case "t", "s", "x":
	default:
		return invalid("learner", "must be t, s or x, got %q", req.Learner)
	}
	if req.Base == "" {
		req.Base = "trees"
	}
	if req.Base != "trees" && req.Base != "ridge" {
		return invalid("base", "must be trees or ridge, got %q", req.Base)
	}
	seed := uint64(1)
	if req.Seed != nil {
		seed = *req.Seed
	}
	if req.TestShare == 0 {
		req.TestShare = 0.3
	}
	if !(req.TestShare > 0 && req.TestShare < 1) {
		return invalid("test_share", "must be in (0, 1), got %g", req.TestShare)
	}
	if req.Alpha == 0 {
		req.Alpha = 0.05
	}
	if !(req.Alpha > 0 && req.Alpha < 1) {
		return invalid("alpha", "must be in (0, 1), got %g", req.Alpha)
	}
	bootstrap := 200
	if req.Bootstrap != nil {
		bootstrap = *req.Bootstrap
	}
	if bootstrap < 0 || bootstrap > 10_000 {
		return invalid("bootstrap", "must be in [0, 10000], got %d", bootstrap)
	}

	ctx := c.Request().Context()
	e, err := s.db.GetExperiment(ctx, req.Experiment)
	if experiment.KindOf(err) == experiment.NotFound {
		return invalid("experiment", "experiment %q not found", req.Experiment)
	}
	if err != nil {
		return err
	}
	var variants []string
	for _, v := range e.Variants {
		variants = append(variants, v.Name)
	}
	if req.Control == "" {
		req.Control = variants[0]
	}
	if !slices.Contains(variants, req.Control) {
		return invalid("control", "experiment %q has no variant %q (variants: %s)", e.Key, req.Control, strings.Join(variants, ", "))
	}
	if req.Treatment == "" {
		if len(variants) != 2 {
			return invalid("treatment", "is required: experiment %q has %d variants (%s)", e.Key, len(variants), strings.Join(variants, ", "))
		}
		req.Treatment = variants[1]
		if req.Treatment == req.Control {
			req.Treatment = variants[0]
		}
	}
	if !slices.Contains(variants, req.Treatment) {
		return invalid("treatment", "experiment %q has no variant %q (variants: %s)", e.Key, req.Treatment, strings.Join(variants, ", "))
	}
	if req.Treatment == req.Control {
		return invalid("treatment", "is the same variant as control (%q)", req.Control)
	}
	rows, multi, err := s.db.UnitValues(ctx, s.results.Engine(), e, []string{req.Control, req.Treatment}, req.Metric, "metric")
	if err != nil {
		return err
	}
	n := len(rows)
	y, w := make([]float64, n), make([]bool, n)
	for i, r := range rows {
		y[i], w[i] = r.Value, r.Arm == req.Treatment
	}
	x, names, err := upliftFeatures(rows, req.Features)
	if err != nil {
		return err
	}
	rep, err := uplift.Run(ctx, x, names, y, w, uplift.RunOptions{
		Learner: req.Learner, Base: req.Base, Boosting: uplift.DefaultBoosting(), Seed: seed,
		TestShare: req.TestShare, Bootstrap: bootstrap, Alpha: req.Alpha,
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if experiment.KindOf(err) == experiment.Internal {
			return experiment.E(op, experiment.InsufficientData, err)
		}
		return experiment.E(op, err)
	}
	out := &upliftResult{Report: rep, Control: req.Control, Treated: req.Treatment, Experiment: e.Key, Metric: req.Metric, MultipleArms: multi}
	if asChart {
		name := fmt.Sprintf("%s-learner (Qini %.3f)", strings.ToUpper(req.Learner), rep.Qini)
		if chart == "qini" {
			return renderChart(c, &reports.Qini{Unit: "incremental " + req.Metric, Curves: []reports.Curve{{Name: name, Points: curvePoints(rep.QiniCurve, false)}}}, f)
		}
		return renderChart(c, &reports.UpliftCurve{Unit: req.Metric, Curves: []reports.Curve{{Name: name, Points: curvePoints(rep.Gain, true)}}}, f)
	}
	return c.JSON(http.StatusOK, out)
}

// curvePoints samples a curve given at k = 0…n units targeted at ≤ 201 fractions.
// With perUnit, the value is curve[k]/k (the cumulative gain divided by the units
// targeted is the uplift among them) and k = 0 is left out.
func curvePoints(curve []float64, perUnit bool) []reports.CurvePoint {
	n := len(curve) - 1
	const steps = 200
	var pts []reports.CurvePoint
	last := -1
	for j := 0; j <= steps; j++ {
		k := int(math.Round(float64(j) * float64(n) / steps))
		if k == last || (perUnit && k == 0) {
			continue
		}
		last = k
		v := curve[k]
		if perUnit {
			v /= float64(k)
		}
		pts = append(pts, reports.CurvePoint{Fraction: float64(k) / float64(n), Value: v})
	}
	return pts
}

// upliftFeatures builds the feature matrix from the units' attributes: numbers
// and booleans as they are (a unit without the attribute gets 0 and a NAME:missing
// indicator column is added), text one-hot encoded as NAME=VALUE indicators (a
// unit without it is in NAME=(missing)).
func upliftFeatures(rows []store.UnitValue, features []string) (*mat.Dense, []string, error) {
	const op = "api.uplift"
	var cols [][]float64
	var names []string
	n := len(rows)
	for fi, name := range features {
		field := experiment.Field(fmt.Sprintf("features[%d]", fi))
		numeric, text, missing := 0, 0, 0
		firstText, firstNum := -1, -1
		for i, r := range rows {
			switch r.Attributes[name].(type) {
			case nil:
				missing++
			case float64, bool:
				numeric++
				if firstNum < 0 {
					firstNum = i
				}
			case string:
				text++
				if firstText < 0 {
					firstText = i
				}
			}
		}
		switch {
		case n > 0 && missing == n:
			return nil, nil, experiment.E(op, experiment.Invalid, field, experiment.Errorf("no unit of the two arms has attribute %q: POST it to /v1/units first", name))
		case numeric > 0 && text > 0:
			return nil, nil, experiment.E(op, experiment.Invalid, field, experiment.Errorf("attribute %q is a number for unit %q but text for unit %q: use one type", name, rows[firstNum].Unit, rows[firstText].Unit))
		case numeric > 0:
			c, miss := make([]float64, n), make([]float64, n)
			for i, r := range rows {
				switch v := r.Attributes[name].(type) {
				case float64:
					c[i] = v
				case bool:
					if v {
						c[i] = 1
					}
				default:
					miss[i] = 1
				}
			}
			cols, names = append(cols, c), append(names, name)
			if missing > 0 {
				cols, names = append(cols, miss), append(names, name+":missing")
			}
		default:
			level := func(r store.UnitValue) string {
				if s, ok := r.Attributes[name].(string); ok {
					return s
				}
				return "(missing)"
			}
			seen := map[string]bool{}
			for _, r := range rows {
				seen[level(r)] = true
			}
			if len(seen) > maxUpliftLevels {
				return nil, nil, experiment.E(op, experiment.Invalid, field, experiment.Errorf("attribute %q has %d distinct text values; one-hot encoding is limited to %d", name, len(seen), maxUpliftLevels))
			}
			levels := make([]string, 0, len(seen))
			for l := range seen {
				levels = append(levels, l)
			}
			sort.Strings(levels)
			idx, first := map[string]int{}, len(cols)
			for j, l := range levels {
				idx[l] = first + j
				cols, names = append(cols, make([]float64, n)), append(names, name+"="+l)
			}
			for i, r := range rows {
				cols[idx[level(r)]][i] = 1
			}
		}
	}
	if n == 0 {
		return nil, nil, experiment.E(op, experiment.InsufficientData, experiment.Errorf("no unit is exposed to exactly one of the two variants"))
	}
	x := mat.NewDense(n, len(cols), nil)
	for j, c := range cols {
		for i, v := range c {
			x.Set(i, j, v)
		}
	}
	return x, names, nil
}
