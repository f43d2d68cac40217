package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// Segment breakdowns of an experiment by a unit attribute (docs/segments.md):
// the pipeline of "lift segments" (analysis.SegmentRun) over the store's
// per-unit values (the metric engine) and unit attributes.

type segmentsRequest struct {
	Experiment string `json:"experiment" required:"true"`
	Metric     string `json:"metric" required:"true" doc:"a sum, count, binary or mean metric, per unit as in the experiment's results"`
	Attribute  string `json:"attribute,omitempty" doc:"the unit attribute (POST /v1/units) whose values are the segments; a unit without it is in \"(missing)\". Required unless event_property is given"`
	// EventProperty segments units by a property of their events instead.
	EventProperty string  `json:"event_property,omitempty" doc:"segment by this property of the units' events instead of an attribute: each unit's value on its first event of event_type that has it (letters, digits, _ . -; at most 64)"`
	EventType     string  `json:"event_type,omitempty" doc:"the event type of event_property; default the metric's"`
	Control       string  `json:"control,omitempty" doc:"control variant; default the experiment's first variant"`
	Treatment     string  `json:"treatment,omitempty" doc:"treated variant; default the other variant of a two-variant experiment"`
	Type          string  `json:"type,omitempty" doc:"mean or proportion; default proportion for a binary metric, else mean"`
	Alpha         float64 `json:"alpha,omitempty" doc:"1 − confidence level, default 0.05"`
	Correction    string  `json:"correction,omitempty" doc:"holm (default) or bh, across segments"`
	MaxSegments   int     `json:"max_segments,omitempty" doc:"most segments shown, default 20; the smallest others are merged into \"(other)\""`
	CUPED         bool    `json:"cuped,omitempty" doc:"also answer cuped_post_stratified, GrowthBook's CUPEDps: each segment's effect regression-adjusted on the metric's pre-exposure covariate (its covariate.days before first exposure), then post-stratified; the metric needs a covariate"`
}

// segmentsResult is the answer of POST /v1/analyses/segments: the report of
// "lift segments" and where the data came from.
type segmentsResult struct {
	*analysis.SegmentReport
	Experiment   string `json:"experiment"`
	MultipleArms int    `json:"multiple_arms" doc:"units exposed to more than one variant, left out"`
	// With event_property: where the segments came from, and how many units'
	// segment came from an event after their first exposure.
	EventProperty        string `json:"event_property,omitempty"`
	EventType            string `json:"event_type,omitempty"`
	SegmentAfterExposure int    `json:"segment_after_exposure,omitempty" doc:"units whose segment is the value of an event after their first exposure: the treatment may have changed it, and then neither the per-segment effects nor the post-stratified ones are unbiased"`
}

func (s *Server) segmentRoutes() {
	s.route(http.MethodPost, "/v1/analyses/segments", experiment.RoleAnalyst, s.postSegments, op{
		Summary: "Break an experiment's effect down by a unit attribute, with post-stratification", Request: segmentsRequest{}, Response: segmentsResult{},
		Description: "Joins the first exposures of the two variants with the metric's per-unit values and the units' " +
			"attribute, and compares the arms within each segment (Welch), with the p-values adjusted across segments " +
			"(Holm or Benjamini-Hochberg), each segment's effect tested against the rest's, Cochran's Q for " +
			"heterogeneity and the effect post-stratified on the segments (Miratrix, Sekhon & Yu 2013). The largest " +
			"max_segments − 1 segments are shown, the rest merged. Exact numbers (analysts). The same pipeline as " +
			"\"lift segments\" (analysis.SegmentRun). Viewers get only the private breakdown (/v1/analyses/segments/private)."})
	s.route(http.MethodPost, "/v1/analyses/segments/private", experiment.RoleViewer, s.postPrivateSegments, op{
		Summary: "Break an experiment's effect down by a unit attribute under differential privacy", Request: privateSegmentsRequest{}, Response: PrivateSegmentsResult{},
		Description: "Per segment the noised counts, means and effect of the two arms (per-unit values clamped to the metric's bounds), " +
			"with DP partition selection (privacy.ReleaseSegments): a segment is released only when its noised unit count passes the " +
			"threshold, so small segments are suppressed. Each breakdown spends the experiment's per-release ε and δ once per " +
			"release period (409 budget_exhausted when it would overspend) and every request of the period gets the same breakdown."})
	s.route(http.MethodGet, "/shared/:token/segments.json", Public, s.getSharedSegments, op{
		Summary: "The private segment breakdown behind a share link", Response: PrivateSegmentsResult{},
		Description: "As POST /v1/analyses/segments/private for the link's experiment, without an API key, spent from the " +
			"experiment's budget as the link's other reads are. Unknown, expired and revoked links answer 404.",
		Query: []param{{Name: "metric", Type: "string", Description: "the metric (required)"}, {Name: "attribute", Type: "string", Description: "the unit attribute (required)"},
			{Name: "control", Type: "string", Description: "control variant"}, {Name: "treatment", Type: "string", Description: "treated variant"},
			{Name: "max_segments", Type: "integer", Description: "most segments shown, default 20"}}})
}

// privateSegmentsRequest asks for a differentially private breakdown.
type privateSegmentsRequest struct {
	Experiment  string `json:"experiment" required:"true"`
	Metric      string `json:"metric" required:"true" doc:"a sum, count, binary or mean metric with per-unit bounds (binary: [0, 1] by default)"`
	Attribute   string `json:"attribute" required:"true" doc:"the unit attribute whose values are the segments; a unit without it is in \"(missing)\""`
	Control     string `json:"control,omitempty" doc:"control variant; default the experiment's first variant"`
	Treatment   string `json:"treatment,omitempty" doc:"treated variant; default the other variant of a two-variant experiment"`
	MaxSegments int    `json:"max_segments,omitempty" doc:"most released segments shown (the largest by noised count), default 20; the others are still paid for"`
}

// privateSegment is one released segment: its noised unit count (the one that
// passed the threshold) and its release (noised counts, means, the effect).
type privateSegment struct {
	Name    string           `json:"name"`
	N       int64            `json:"n"`
	Release *privacy.Release `json:"release"`
}

// PrivateSegmentsResult is the answer of POST /v1/analyses/segments/private
// (PrivateSegments).
type PrivateSegmentsResult struct {
	Experiment string           `json:"experiment"`
	Metric     string           `json:"metric"`
	Attribute  string           `json:"attribute"`
	Control    string           `json:"control"`
	Treatment  string           `json:"treatment"`
	Threshold  float64          `json:"threshold" doc:"the noised unit count a segment needed to be released"`
	Segments   []privateSegment `json:"segments" doc:"the released segments, largest first; segments below the threshold are suppressed and not counted"`
	Private    PrivateInfo      `json:"private"`
}

func (s *Server) postPrivateSegments(c echo.Context) error {
	var req privateSegmentsRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	out, err := s.privateSegments(c.Request().Context(), req, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// getSharedSegments is the private breakdown behind a share link: the link's
// experiment, the query's metric and attribute, spent as the link's reads are.
func (s *Server) getSharedSegments(c echo.Context) error {
	ctx := c.Request().Context()
	l, err := s.db.ShareLinkByToken(ctx, c.Param("token"))
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the token is in the URL
	h.Set("X-Robots-Tag", "noindex")
	req := privateSegmentsRequest{Experiment: l.Experiment, Metric: c.QueryParam("metric"), Attribute: c.QueryParam("attribute"),
		Control: c.QueryParam("control"), Treatment: c.QueryParam("treatment")}
	if v := c.QueryParam("max_segments"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return experiment.E("api.sharedSegments", experiment.Invalid, experiment.Field("max_segments"), experiment.Errorf("must be an integer, got %q", v))
		}
		req.MaxSegments = n
	}
	out, err := s.privateSegments(ctx, req, "share:"+l.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) privateSegments(ctx context.Context, req privateSegmentsRequest, who string) (*PrivateSegmentsResult, error) {
	const op = "api.privateSegments"
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	for _, r := range []struct{ field, v string }{{"experiment", req.Experiment}, {"metric", req.Metric}, {"attribute", req.Attribute}} {
		if r.v == "" {
			return nil, invalid(r.field, "is required")
		}
	}
	if req.MaxSegments == 0 {
		req.MaxSegments = analysis.DefaultMaxSegments
	}
	if req.MaxSegments < 1 {
		return nil, invalid("max_segments", "must be at least 1, got %d", req.MaxSegments)
	}
	e, m, err := analysisExperiment(ctx, s.db, op, req.Experiment, req.Metric)
	if err != nil {
		return nil, err
	}
	if m.Bounds == nil && m.Aggregation != experiment.Binary {
		// Before the ledger, so that the answer does not depend on the budget.
		return nil, invalid("metric", "metric %q has no bounds: declare per-unit bounds {\"lower\", \"upper\"} to analyze it privately", m.Name)
	}
	if req.Control, req.Treatment, err = twoVariants(op, e, req.Control, req.Treatment); err != nil {
		return nil, err
	}
	out, err := PrivateSegments(ctx, s.db, s.results, e, req.Metric, req.Attribute, req.Control, req.Treatment, who, privacy.Options{Now: s.opt.Now})
	if err != nil {
		return nil, err
	}
	if len(out.Segments) > req.MaxSegments {
		out.Segments = out.Segments[:req.MaxSegments]
	}
	return out, nil
}

// PrivateSegments is the breakdown of experiment e's effect on metric by a unit
// attribute under differential privacy, read on behalf of who: per segment the
// clamped per-unit values (store.BoundedUnitValues, the data until the release)
// of the two arms, released by privacy.ReleaseSegments, so that a segment is
// shown only when its noised unit count passes the partition-selection
// threshold. Each breakdown (metric by attribute, control against treatment) is
// its own subject of the experiment's release schedule: the period's first read
// spends the budget's per-release ε and δ (409 budget_exhausted when that would
// overspend) and later reads of the period get the same breakdown. Segments are
// released in name order and answered largest first; how many were suppressed
// is not released (it would tell that a unit with a rare value exists).
func PrivateSegments(ctx context.Context, db *store.DB, rs *results.Service, e *experiment.Experiment, metricName, attribute, control, treatment, who string, opt privacy.Options) (*PrivateSegmentsResult, error) {
	const op = "api.PrivateSegments"
	if opt.Now == nil {
		opt.Now = time.Now
	}
	now := opt.Now().UTC().Truncate(time.Microsecond)
	subject := fmt.Sprintf("segments %s by %s (%s vs %s)", metricName, attribute, treatment, control)
	sc, err := privacy.NewLedger(db.Ledger()).ReleaseSegments(ctx, privacy.ExperimentScope(e.Key), subject, now, who, func(p privacy.Params) (*privacy.Segments, error) {
		if p.Delta == 0 {
			// Not the request's fault: the budget's (privacy.ReleaseSegments
			// would name its own parameter, delta, which no request has).
			return nil, experiment.E(op, experiment.Conflict, experiment.Field("privacy.delta"), experiment.Errorf(
				"the privacy budget of experiment %q has δ = 0, and a segment breakdown needs δ > 0 for partition selection: "+
					"set delta (or release_delta) with PUT /v1/experiments/%s/privacy, e.g. \"delta\": 1e-6", e.Key, e.Key))
		}
		values, bounds, err := db.BoundedUnitValues(ctx, rs.Engine(), e, []string{control, treatment}, metricName, "metric", now)
		if err != nil {
			return nil, err
		}
		type acc struct{ n, sum, sq [2]float64 }
		by := map[string]*acc{}
		for _, v := range values {
			name := analysis.SegmentOf(v.Attributes[attribute])
			a := by[name]
			if a == nil {
				a = &acc{}
				by[name] = a
			}
			k := 0
			if v.Arm == treatment {
				k = 1
			}
			a.n[k]++
			a.sum[k] += v.Value
			a.sq[k] += v.Value * v.Value
		}
		names := make([]string, 0, len(by))
		for n := range by {
			names = append(names, n)
		}
		sort.Strings(names)
		segs := make([]privacy.Segment, len(names))
		for i, n := range names {
			a := by[n]
			in := privacy.Input{Control: control}
			ms := privacy.MetricStats{Metric: metricName, Bounds: bounds}
			for k, arm := range []string{control, treatment} {
				in.Units = append(in.Units, privacy.Count{Variant: arm, N: int64(a.n[k])})
				ms.Variants = append(ms.Variants, privacy.Stats{Variant: arm, N: int64(a.n[k]), Sum: a.sum[k], SumSq: a.sq[k]})
			}
			in.Metrics = []privacy.MetricStats{ms}
			segs[i] = privacy.Segment{Name: n, Input: in}
		}
		return privacy.ReleaseSegments(segs, p, opt)
	})
	if err != nil {
		return nil, experiment.E(op, err)
	}
	sg := sc.Segments
	out := &PrivateSegmentsResult{Experiment: e.Key, Metric: metricName, Attribute: attribute, Control: control, Treatment: treatment,
		Threshold: sg.Threshold, Segments: []privateSegment{},
		Private: PrivateInfo{Mechanism: opt.Mechanism, Epsilon: sg.Epsilon, Delta: sg.Delta,
			EpsilonSpent: sc.Account.EpsilonSpent, EpsilonLeft: sc.Account.EpsilonLeft,
			ReleasePeriod: experiment.Duration(sc.Period), PeriodStart: sc.PeriodStart, ReleasedAt: sc.ReleasedAt, NextReleaseAt: sc.NextAt()}}
	if out.Private.Mechanism == "" {
		out.Private.Mechanism = privacy.Laplace
	}
	for _, k := range sg.Kept {
		out.Segments = append(out.Segments, privateSegment{Name: k.Name, N: k.N, Release: k.Release})
	}
	sort.SliceStable(out.Segments, func(i, j int) bool { return out.Segments[i].N > out.Segments[j].N })
	return out, nil
}

func (s *Server) postSegments(c echo.Context) error {
	var req segmentsRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	res, err := segmentAnalysis(c.Request().Context(), s.db, s.results.Engine(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// segmentAnalysis is the segment breakdown of a request: POST
// /v1/analyses/segments and the report's segments view.
func segmentAnalysis(ctx context.Context, db *store.DB, eng metric.Engine, req segmentsRequest) (*segmentsResult, error) {
	return segmentAnalysisOf(ctx, db, eng, req, nil)
}

// unitValues are the per-unit values of one metric in two arms
// (store.DB.UnitValues), read once for the report's segments and quantiles.
type unitValues struct {
	values []store.UnitValue
	multi  int
}

// readUnitValues reads the values an analysis of metric name in arms control
// and treatment reads, unless pre already holds them.
func readUnitValues(ctx context.Context, db *store.DB, eng metric.Engine, e *experiment.Experiment, control, treatment, name string, pre *unitValues) ([]store.UnitValue, int, error) {
	if pre != nil {
		return pre.values, pre.multi, nil
	}
	return db.UnitValues(ctx, eng, e, []string{control, treatment}, name, "metric")
}

// segmentAnalysisOf is segmentAnalysis over the values pre when not nil
// (those of req's metric and arms).
func segmentAnalysisOf(ctx context.Context, db *store.DB, eng metric.Engine, req segmentsRequest, pre *unitValues) (*segmentsResult, error) {
	const op = "api.segments"
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	for _, r := range []struct{ field, v string }{{"experiment", req.Experiment}, {"metric", req.Metric}} {
		if r.v == "" {
			return nil, invalid(r.field, "is required")
		}
	}
	switch {
	case req.Attribute == "" && req.EventProperty == "":
		return nil, invalid("attribute", "is required (or event_property, to segment by a property of the units' events)")
	case req.Attribute != "" && req.EventProperty != "":
		return nil, invalid("event_property", "give attribute or event_property, not both")
	case req.EventProperty != "" && !propertyName.MatchString(req.EventProperty):
		return nil, invalid("event_property", "must be 1 to 64 letters, digits, _ . or -, got %q", req.EventProperty)
	case req.EventProperty == "" && req.EventType != "":
		return nil, invalid("event_type", "is only for event_property")
	}
	e, m, err := analysisExperiment(ctx, db, op, req.Experiment, req.Metric)
	if err != nil {
		return nil, err
	}
	if req.EventProperty != "" && req.EventType == "" {
		req.EventType = m.EventType
	}
	if req.Type == "" {
		req.Type = string(analysis.Mean)
		if m.Aggregation == experiment.Binary {
			req.Type = string(analysis.Proportion)
		}
	}
	if req.Control, req.Treatment, err = twoVariants(op, e, req.Control, req.Treatment); err != nil {
		return nil, err
	}
	values, multi, err := readUnitValues(ctx, db, eng, e, req.Control, req.Treatment, req.Metric, pre)
	if err != nil {
		return nil, err
	}
	var covs map[string]float64
	covName := ""
	if req.CUPED {
		if covs, err = db.UnitCovariates(ctx, eng, e, []string{req.Control, req.Treatment}, req.Metric, "cuped"); err != nil {
			return nil, err
		}
		covName = req.Metric + " before exposure"
		if m.Covariate != nil {
			covName = fmt.Sprintf("%s over the %g days before exposure", req.Metric, m.Covariate.Days)
		}
	}
	attribute := req.Attribute
	var props map[string]store.EventProperty
	if req.EventProperty != "" {
		units := make([]string, len(values))
		for i, v := range values {
			units[i] = v.Unit
		}
		if props, err = db.UnitEventProperties(ctx, e.Key, req.EventType, req.EventProperty, units); err != nil {
			return nil, err
		}
		attribute = req.EventType + "." + req.EventProperty
	}
	after := 0
	rows := make([]analysis.SegmentRow, len(values))
	for i, v := range values {
		seg := analysis.SegmentOf(v.Attributes[req.Attribute])
		if props != nil {
			p := props[v.Unit]
			seg = analysis.SegmentOf(p.Value)
			if p.AfterExposure {
				after++
			}
		}
		rows[i] = analysis.SegmentRow{Segment: seg, Arm: v.Arm, Value: v.Value, Covariate: covs[v.Unit]}
	}
	rep, err := analysis.SegmentRun(ctx, rows, analysis.SegmentOptions{
		Metric: req.Metric, Attribute: attribute, Control: req.Control, Treatment: req.Treatment,
		Type: analysis.Type(req.Type), Alpha: req.Alpha, Correction: analysis.Correction(req.Correction), MaxSegments: req.MaxSegments,
		Covariate: req.CUPED, CovariateName: covName,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ae *experiment.Error
		if errors.As(err, &ae) && ae.Kind == experiment.Invalid && ae.Field == "value" {
			return nil, experiment.E(op, experiment.InsufficientData, err)
		}
		return nil, experiment.E(op, err)
	}
	out := &segmentsResult{SegmentReport: rep, Experiment: e.Key, MultipleArms: multi}
	if props != nil {
		out.EventProperty, out.EventType, out.SegmentAfterExposure = req.EventProperty, req.EventType, after
	}
	return out, nil
}

// propertyName is what an event_property may be: it goes into a JSON path.
var propertyName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// twoVariants resolves the control (default the first variant) and treated
// variant (default the other of a two-variant experiment) of an analysis
// request, naming the field of a bad one.
func twoVariants(op string, e *experiment.Experiment, control, treatment string) (string, string, error) {
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	var variants []string
	for _, v := range e.Variants {
		variants = append(variants, v.Name)
	}
	if control == "" {
		control = variants[0]
	}
	if !slices.Contains(variants, control) {
		return "", "", invalid("control", "experiment %q has no variant %q (variants: %s)", e.Key, control, strings.Join(variants, ", "))
	}
	if treatment == "" {
		if len(variants) != 2 {
			return "", "", invalid("treatment", "is required: experiment %q has %d variants (%s)", e.Key, len(variants), strings.Join(variants, ", "))
		}
		treatment = variants[1]
		if treatment == control {
			treatment = variants[0]
		}
	}
	if !slices.Contains(variants, treatment) {
		return "", "", invalid("treatment", "experiment %q has no variant %q (variants: %s)", e.Key, treatment, strings.Join(variants, ", "))
	}
	return control, treatment, nil
}

// analysisExperiment reads the experiment and the (non-ratio) metric of an
// analysis request; unknown ones are 400 naming the field.
func analysisExperiment(ctx context.Context, db *store.DB, op, key, metricName string) (*experiment.Experiment, *experiment.Metric, error) {
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	e, err := db.GetExperiment(ctx, key)
	if experiment.KindOf(err) == experiment.NotFound {
		return nil, nil, invalid("experiment", "experiment %q not found", key)
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := db.GetMetric(ctx, metricName)
	if experiment.KindOf(err) == experiment.NotFound {
		return nil, nil, invalid("metric", "metric %q not found", metricName)
	}
	if err != nil {
		return nil, nil, err
	}
	if m.Aggregation == experiment.Ratio {
		return nil, nil, invalid("metric", "%q is a ratio metric; this analysis takes a per-unit metric (sum, count, binary or mean)", m.Name)
	}
	return e, m, nil
}
