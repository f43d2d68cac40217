package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"gonum.org/v1/gonum/mat"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/analysis/did"
	"github.com/liftlab/lift/analysis/uplift"
	"github.com/liftlab/lift/experiment"
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

type didRequest struct {
	Metric     string          `json:"metric" required:"true" doc:"a sum, count or binary metric"`
	Treated    *unitGroupIn    `json:"treated" required:"true" doc:"{\"experiment\", \"variant\"} or {\"units\": [...]}"`
	Control    json.RawMessage `json:"control" required:"true" doc:"same shapes as treated, or \"rest\": every other unit with events of the metric in the range"`
	Rollout    string          `json:"rollout" required:"true" doc:"RFC 3339 time the treatment started; the period containing it is the first treated period"`
	From       string          `json:"from" required:"true" doc:"RFC 3339 start of the panel (inclusive)"`
	To         string          `json:"to" required:"true" doc:"RFC 3339 end of the panel (exclusive)"`
	Period     string          `json:"period,omitempty" doc:"day (default) or week"`
	EventStudy bool            `json:"event_study,omitempty" doc:"add event-study coefficients and the pre-trend test"`
	Alpha      float64         `json:"alpha,omitempty" doc:"1 − confidence level, default 0.05"`
}

type didEventOut struct {
	RelTime  int     `json:"rel_time" doc:"periods since the rollout period (0); -1 is the reference"`
	Estimate float64 `json:"estimate"`
	SE       float64 `json:"se"`
	CILow    float64 `json:"ci_low"`
	CIHigh   float64 `json:"ci_high"`
	PValue   float64 `json:"p_value"`
}

type didPreTrendOut struct {
	Tested  bool     `json:"tested"`
	F       *float64 `json:"f"`
	Q       int      `json:"q"`
	DOF     *float64 `json:"dof"`
	PValue  *float64 `json:"p_value"`
	Warning string   `json:"warning,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// didResult is the answer of POST /v1/analyses/did: the fields of "lift did" and
// the panel's description.
type didResult struct {
	Estimate      float64            `json:"estimate" doc:"difference in differences of the metric per unit and period"`
	SE            float64            `json:"se"`
	CILow         float64            `json:"ci_low"`
	CIHigh        float64            `json:"ci_high"`
	PValue        float64            `json:"p_value"`
	DOF           float64            `json:"dof"`
	NObs          int                `json:"n_obs" doc:"unit-period cells"`
	NClusters     int                `json:"n_clusters" doc:"units (standard errors are clustered by unit, CR1)"`
	VCE           string             `json:"vce"`
	Alpha         float64            `json:"alpha"`
	Cells         map[string]float64 `json:"cells" doc:"mean per unit-period of treated_pre, treated_post, control_pre, control_post"`
	CellN         map[string]int     `json:"cell_n"`
	Events        []didEventOut      `json:"event_study,omitempty"`
	PreTrend      *didPreTrendOut    `json:"pretrend,omitempty"`
	Metric        string             `json:"metric"`
	Period        string             `json:"period"`
	From          time.Time          `json:"from"`
	To            time.Time          `json:"to"`
	Rollout       time.Time          `json:"rollout"`
	Periods       int                `json:"periods"`
	RolloutPeriod int                `json:"rollout_period" doc:"index of the first treated period (0 = the period starting at from)"`
	TreatedUnits  int                `json:"treated_units"`
	ControlUnits  int                `json:"control_units"`
	Overlap       int                `json:"overlap_units" doc:"units in both groups, left out"`
	Privacy       reports.Privacy    `json:"privacy"`
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

type upliftDecileOut struct {
	Decile    int      `json:"decile"`
	N         int      `json:"n"`
	NTreated  int      `json:"n_treated"`
	NControl  int      `json:"n_control"`
	Predicted float64  `json:"predicted_uplift"`
	Observed  *float64 `json:"observed_uplift"`
}

type upliftPolicyOut struct {
	Fraction  float64  `json:"fraction"`
	NTargeted int      `json:"n_targeted"`
	Value     float64  `json:"value"`
	ValueLow  *float64 `json:"value_ci_low"`
	ValueHigh *float64 `json:"value_ci_high"`
	Gain      float64  `json:"gain"`
	GainLow   *float64 `json:"gain_ci_low"`
	GainHigh  *float64 `json:"gain_ci_high"`
	Random    float64  `json:"random_value"`
}

// upliftResult is the answer of POST /v1/analyses/uplift: the fields of "lift
// uplift" and where the data came from.
type upliftResult struct {
	ATE          analysis.Effect   `json:"ate" doc:"Welch difference in means, treated − control, over all units of the two arms"`
	Qini         float64           `json:"qini"`
	QiniLow      *float64          `json:"qini_ci_low"`
	QiniHigh     *float64          `json:"qini_ci_high"`
	AUUC         float64           `json:"auuc"`
	Deciles      []upliftDecileOut `json:"deciles"`
	Policy       []upliftPolicyOut `json:"policy"`
	Learner      string            `json:"learner"`
	Base         string            `json:"base"`
	Control      string            `json:"control"`
	Treated      string            `json:"treated"`
	NTrain       int               `json:"n_train"`
	NTest        int               `json:"n_test"`
	Features     []string          `json:"features" doc:"the encoded feature columns"`
	Seed         uint64            `json:"seed"`
	Bootstrap    int               `json:"bootstrap"`
	Experiment   string            `json:"experiment"`
	Metric       string            `json:"metric"`
	MultipleArms int               `json:"multiple_arms" doc:"units exposed to more than one variant, left out"`
	Privacy      reports.Privacy   `json:"privacy"`
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
			"With ?format=svg|png|pdf the answer is a chart: chart=event_study (default when event_study is true) " +
			"or chart=trends (mean per group and period, the default otherwise)."})
	s.route(http.MethodPost, "/v1/analyses/uplift", experiment.RoleAnalyst, s.postUplift, op{
		Summary: "Uplift model over an experiment's exposures, evaluated on held-out units", Request: upliftRequest{}, Response: upliftResult{},
		Query: chartQuery,
		Description: "Joins the first exposures of the two variants with the metric's per-unit values and the units' " +
			"attributes, fits the meta-learner on a seeded training split and evaluates its ranking on the held-out " +
			"units: Qini coefficient and AUUC (causalml's definitions), uplift by decile and the value of targeting " +
			"the top 10%…100%. With ?format=svg|png|pdf the answer is a chart: chart=qini (default) or chart=uplift."})
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
func (g *unitGroupIn) group() store.UnitGroup {
	return store.UnitGroup{Experiment: g.Experiment, Variant: g.Variant, Units: g.Units}
}

// groupField renames the store's groups[0] and groups[1] to treated and control.
func groupField(op string, err error) error {
	var e *experiment.Error
	if !errors.As(err, &e) {
		return err
	}
	for i, name := range []string{"treated", "control"} {
		p := fmt.Sprintf("groups[%d]", i)
		if rest, ok := strings.CutPrefix(e.Field, p); ok {
			msg := strings.TrimPrefix(e.Message(), e.Field+": ")
			return experiment.E(op, e.Kind, experiment.Field(name+rest), errors.New(msg))
		}
	}
	return err
}

func (s *Server) postDiD(c echo.Context) error {
	const op = "api.did"
	f, chart, asChart, err := chartRequest(c, []string{"event_study", "trends"}, "")
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
	if req.Treated == nil {
		return invalid("treated", `is required: {"experiment": KEY, "variant": NAME} or {"units": [...]}`)
	}
	groups := []store.UnitGroup{req.Treated.group()}
	switch ctl := bytes.TrimSpace(req.Control); {
	case len(ctl) == 0 || string(ctl) == "null":
		return invalid("control", `is required: {"experiment": KEY, "variant": NAME}, {"units": [...]} or "rest"`)
	case ctl[0] == '"':
		var v string
		if err := json.Unmarshal(ctl, &v); err != nil || v != "rest" {
			return invalid("control", `a string control must be "rest", got %s`, ctl)
		}
		groups = append(groups, store.UnitGroup{Rest: true})
	default:
		var g unitGroupIn
		if err := decodeJSON(ctl, &g); err != nil {
			return prefixField(op, "control", err)
		}
		groups = append(groups, g.group())
	}
	rollout, err := didTime("rollout", req.Rollout)
	if err != nil {
		return err
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
		req.Period = string(store.Day)
	}
	period := store.PanelPeriod(req.Period)
	if req.Alpha == 0 {
		req.Alpha = 0.05
	}
	if !(req.Alpha > 0 && req.Alpha < 1) {
		return invalid("alpha", "must be in (0, 1), got %g", req.Alpha)
	}
	if period == store.Day || period == store.Week {
		plen := period.Duration()
		if !rollout.After(from) || !rollout.Before(to) {
			return invalid("rollout", "must be after from and before to, got %s outside (%s, %s)", rollout.Format(time.RFC3339), from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		if rollout.Sub(from) < plen {
			return invalid("rollout", "must leave at least one whole %s before it: from %s, rollout %s", period, from.Format(time.RFC3339), rollout.Format(time.RFC3339))
		}
	}
	if chart == "" {
		chart = "trends"
		if req.EventStudy {
			chart = "event_study"
		}
	}
	ctx := c.Request().Context()
	p, err := s.db.MetricPanel(ctx, store.PanelQuery{Metric: req.Metric, Groups: groups, From: from, To: to, Period: period})
	if err != nil {
		return groupField(op, err)
	}
	for i, name := range []string{"treated", "control"} {
		if p.GroupUnits[i] == 0 {
			return experiment.E(op, experiment.InsufficientData, experiment.Field(name), experiment.Errorf("the %s group has no units (after leaving out %d units in both groups)", name, p.Overlap))
		}
	}
	g := int(rollout.Sub(from) / period.Duration())
	out := &didResult{VCE: did.CR1.String(), Alpha: req.Alpha, Metric: p.Metric.Name, Period: string(period), From: from, To: to, Rollout: rollout,
		Periods: p.Periods, RolloutPeriod: g, TreatedUnits: p.GroupUnits[0], ControlUnits: p.GroupUnits[1], Overlap: p.Overlap}
	n := len(p.Y)
	treated, post := make([]bool, n), make([]bool, n)
	for i := range n {
		treated[i], post[i] = p.Group[p.Unit[i]] == 0, p.Time[i] >= g
	}
	if asChart && chart == "trends" {
		return renderChart(c, didTrends(p, treated, rollout), f)
	}
	r, err := did.Regress(p.Y, treated, post, p.Unit, did.CR1, req.Alpha)
	if err != nil {
		return experiment.E(op, experiment.InsufficientData, err)
	}
	if err := finiteCoef(op, "treated×post", r.Effect); err != nil {
		return err
	}
	e := r.Effect
	out.Estimate, out.SE, out.CILow, out.CIHigh, out.PValue, out.DOF = e.Estimate, e.SE, e.CILow, e.CIHigh, e.PValue, r.Fit.DF
	out.NObs, out.NClusters = r.Fit.N, r.Fit.G
	out.Cells, out.CellN = map[string]float64{}, map[string]int{}
	for _, x := range []struct {
		k string
		c did.Cell
	}{{"treated_pre", r.Cells.TreatedPre}, {"treated_post", r.Cells.TreatedPost}, {"control_pre", r.Cells.ControlPre}, {"control_post", r.Cells.ControlPost}} {
		out.Cells[x.k], out.CellN[x.k] = x.c.Mean, x.c.N
	}
	if req.EventStudy || (asChart && chart == "event_study") {
		cohort := make([]int, n)
		for i := range n {
			cohort[i] = did.NeverTreated
			if treated[i] {
				cohort[i] = g
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		es, err := did.EventStudy(did.Panel{Unit: p.Unit, Time: p.Time, Y: p.Y}, cohort,
			did.EventStudyOptions{TWFEOptions: did.TWFEOptions{VCE: did.CR1, Alpha: req.Alpha}})
		if err != nil {
			return experiment.E(op, experiment.InsufficientData, experiment.Errorf("event study: %w", err))
		}
		for _, k := range es.Coefs {
			if err := finiteCoef(op, fmt.Sprintf("event-study coefficient %d", k.RelTime), k.Coef); err != nil {
				return err
			}
			out.Events = append(out.Events, didEventOut{k.RelTime, k.Estimate, k.SE, k.CILow, k.CIHigh, k.PValue})
		}
		pt := &didPreTrendOut{Tested: es.PreTrend.Tested, Q: es.PreTrend.Q, Warning: es.PreTrend.Warning}
		if pt.Tested {
			pt.F, pt.DOF, pt.PValue = &es.PreTrend.F, &es.PreTrend.DF, &es.PreTrend.PValue
		} else {
			pt.Note = "no lead to test: the rollout must leave at least two periods before it"
		}
		out.PreTrend = pt
	}
	if asChart {
		ch := &reports.EventStudy{Metric: out.Metric, Unit: fmt.Sprintf("%s per unit-%s", p.Metric.Aggregation, period), Level: 1 - req.Alpha}
		for _, k := range out.Events {
			if k.RelTime == 0 {
				// The omitted reference period −1, zero by construction.
				ch.Coefficients = append(ch.Coefficients, reports.PeriodEffect{Period: -1})
			}
			ch.Coefficients = append(ch.Coefficients, reports.PeriodEffect{Period: k.RelTime, Interval: reports.Interval{Estimate: k.Estimate, Low: k.CILow, High: k.CIHigh}})
		}
		sort.SliceStable(ch.Coefficients, func(i, j int) bool { return ch.Coefficients[i].Period < ch.Coefficients[j].Period })
		return renderChart(c, ch, f)
	}
	return c.JSON(http.StatusOK, out)
}

// didTrends is the mean of the metric per group and period.
func didTrends(p *store.Panel, treated []bool, rollout time.Time) *reports.DiDTrends {
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

// finiteCoef rejects a coefficient whose standard error is zero or undefined,
// which happens when the model fits the outcome exactly (e.g. a constant metric).
func finiteCoef(op, what string, c did.Coef) error {
	for _, v := range []float64{c.Estimate, c.SE, c.CILow, c.CIHigh, c.PValue} {
		if math.IsNaN(v) || math.IsInf(v, 0) || !(c.SE > 0) {
			return experiment.E(op, experiment.InsufficientData, experiment.Errorf("%s: standard error is zero or undefined (estimate %g, se %g): the model fits the metric exactly", what, c.Estimate, c.SE))
		}
	}
	return nil
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
	var meta func(uplift.Learner) uplift.MetaLearner
	if req.Learner == "" {
		req.Learner = "x"
	}
	switch req.Learner {
	case "t":
		meta = func(b uplift.Learner) uplift.MetaLearner { return uplift.TLearner{Base: b} }
	case "s":
		meta = func(b uplift.Learner) uplift.MetaLearner { return uplift.SLearner{Base: b} }
	case "x":
		meta = func(b uplift.Learner) uplift.MetaLearner { return uplift.XLearner{Outcome: b} }
	default:
		return invalid("learner", "must be t, s or x, got %q", req.Learner)
	}
	if req.Base == "" {
		req.Base = "trees"
	}
	seed := uint64(1)
	if req.Seed != nil {
		seed = *req.Seed
	}
	var base uplift.Learner
	switch req.Base {
	case "trees":
		b := uplift.DefaultBoosting()
		b.Seed = seed
		base = b
	case "ridge":
		base = uplift.Ridge{Lambda: 1}
	default:
		return invalid("base", "must be trees or ridge, got %q", req.Base)
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
	rows, multi, err := s.db.UnitValues(ctx, e, []string{req.Control, req.Treatment}, req.Metric, "metric")
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
	out := &upliftResult{Learner: req.Learner, Base: req.Base, Control: req.Control, Treated: req.Treatment, Features: names,
		Seed: seed, Bootstrap: bootstrap, Experiment: e.Key, Metric: req.Metric, MultipleArms: multi}
	if out.ATE, err = uplift.ATE(y, w, req.Alpha); err != nil {
		return experiment.E(op, experiment.InsufficientData, experiment.Errorf("%d units in the two arms: %w", n, err))
	}
	// Seeded train/test split, as "lift uplift" does.
	perm := rand.New(rand.NewPCG(seed, 0x5eed)).Perm(n)
	nTest := int(math.Round(req.TestShare * float64(n)))
	if nTest < 10 || n-nTest < 10 {
		return experiment.E(op, experiment.InsufficientData, experiment.Errorf("%d units in the two arms are too few to split into training and held-out parts", n))
	}
	_, cols := x.Dims()
	pick := func(idx []int) (*mat.Dense, []bool, []float64) {
		xs := mat.NewDense(len(idx), cols, nil)
		ws, ys := make([]bool, len(idx)), make([]float64, len(idx))
		for k, i := range idx {
			copy(xs.RawRowView(k), x.RawRowView(i))
			ws[k], ys[k] = w[i], y[i]
		}
		return xs, ws, ys
	}
	xTest, wTest, yTest := pick(perm[:nTest])
	xTrain, wTrain, yTrain := pick(perm[nTest:])
	out.NTrain, out.NTest = n-nTest, nTest
	if err := ctx.Err(); err != nil {
		return err
	}
	model, err := meta(base).Fit(xTrain, wTrain, yTrain)
	if err != nil {
		return experiment.E(op, experiment.InsufficientData, experiment.Errorf("training on %d units: %w", n-nTest, err))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	score := make([]float64, nTest)
	model.Predict(xTest, score)
	bs := bootstrap
	if bs == 0 {
		bs = -1
	}
	ev, err := uplift.Evaluate(score, yTest, wTest, uplift.EvalOptions{Bootstrap: bs, Alpha: req.Alpha, Src: rand.NewPCG(seed, 0xb007)})
	if err != nil {
		return experiment.E(op, experiment.InsufficientData, experiment.Errorf("evaluation on %d held-out units: %w", nTest, err))
	}
	if math.IsNaN(ev.Qini) || math.IsInf(ev.Qini, 0) || math.IsNaN(ev.AUUC) || math.IsInf(ev.AUUC, 0) {
		return experiment.E(op, experiment.InsufficientData, experiment.Errorf("the held-out uplift of the whole group is 0, so the normalized Qini and AUUC are undefined"))
	}
	out.Qini, out.AUUC, out.QiniLow, out.QiniHigh = ev.Qini, ev.AUUC, finiteOrNil(ev.QiniLow), finiteOrNil(ev.QiniHigh)
	for _, b := range ev.Bins {
		out.Deciles = append(out.Deciles, upliftDecileOut{b.Bin, b.N, b.NTreated, b.NControl, b.MeanScore, finiteOrNil(b.Uplift)})
	}
	for _, p := range ev.Policy {
		out.Policy = append(out.Policy, upliftPolicyOut{p.Fraction, p.Treated, p.Value, finiteOrNil(p.ValueLow), finiteOrNil(p.ValueHigh),
			p.Gain, finiteOrNil(p.GainLow), finiteOrNil(p.GainHigh), p.Random})
	}
	if asChart {
		name := fmt.Sprintf("%s-learner (Qini %.3f)", strings.ToUpper(req.Learner), ev.Qini)
		if chart == "qini" {
			return renderChart(c, &reports.Qini{Unit: "incremental " + req.Metric, Curves: []reports.Curve{{Name: name, Points: curvePoints(ev.QiniCurve, false)}}}, f)
		}
		return renderChart(c, &reports.UpliftCurve{Unit: req.Metric, Curves: []reports.Curve{{Name: name, Points: curvePoints(ev.Gain, true)}}}, f)
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
