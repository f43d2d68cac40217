package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/store"
)

// Segment breakdowns of an experiment by a unit attribute (docs/segments.md):
// the pipeline of "lift segments" (analysis.SegmentRun) over the store's
// per-unit values (the metric engine) and unit attributes.

type segmentsRequest struct {
	Experiment  string  `json:"experiment" required:"true"`
	Metric      string  `json:"metric" required:"true" doc:"a sum, count, binary or mean metric, per unit as in the experiment's results"`
	Attribute   string  `json:"attribute" required:"true" doc:"the unit attribute (POST /v1/units) whose values are the segments; a unit without it is in \"(missing)\""`
	Control     string  `json:"control,omitempty" doc:"control variant; default the experiment's first variant"`
	Treatment   string  `json:"treatment,omitempty" doc:"treated variant; default the other variant of a two-variant experiment"`
	Type        string  `json:"type,omitempty" doc:"mean or proportion; default proportion for a binary metric, else mean"`
	Alpha       float64 `json:"alpha,omitempty" doc:"1 − confidence level, default 0.05"`
	Correction  string  `json:"correction,omitempty" doc:"holm (default) or bh, across segments"`
	MaxSegments int     `json:"max_segments,omitempty" doc:"most segments shown, default 20; the smallest others are merged into \"(other)\""`
}

// segmentsResult is the answer of POST /v1/analyses/segments: the report of
// "lift segments" and where the data came from.
type segmentsResult struct {
	*analysis.SegmentReport
	Experiment   string `json:"experiment"`
	MultipleArms int    `json:"multiple_arms" doc:"units exposed to more than one variant, left out"`
}

func (s *Server) segmentRoutes() {
	s.route(http.MethodPost, "/v1/analyses/segments", experiment.RoleAnalyst, s.postSegments, op{
		Summary: "Break an experiment's effect down by a unit attribute, with post-stratification", Request: segmentsRequest{}, Response: segmentsResult{},
		Description: "Joins the first exposures of the two variants with the metric's per-unit values and the units' " +
			"attribute, and compares the arms within each segment (Welch), with the p-values adjusted across segments " +
			"(Holm or Benjamini-Hochberg), each segment's effect tested against the rest's, Cochran's Q for " +
			"heterogeneity and the effect post-stratified on the segments (Miratrix, Sekhon & Yu 2013). The largest " +
			"max_segments − 1 segments are shown, the rest merged. Exact numbers (analysts). The same pipeline as " +
			"\"lift segments\" (analysis.SegmentRun)."})
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
	const op = "api.segments"
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	for _, r := range []struct{ field, v string }{{"experiment", req.Experiment}, {"metric", req.Metric}, {"attribute", req.Attribute}} {
		if r.v == "" {
			return nil, invalid(r.field, "is required")
		}
	}
	e, m, err := analysisExperiment(ctx, db, op, req.Experiment, req.Metric)
	if err != nil {
		return nil, err
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
	values, multi, err := db.UnitValues(ctx, eng, e, []string{req.Control, req.Treatment}, req.Metric, "metric")
	if err != nil {
		return nil, err
	}
	rows := make([]analysis.SegmentRow, len(values))
	for i, v := range values {
		rows[i] = analysis.SegmentRow{Segment: analysis.SegmentOf(v.Attributes[req.Attribute]), Arm: v.Arm, Value: v.Value}
	}
	rep, err := analysis.SegmentRun(ctx, rows, analysis.SegmentOptions{
		Metric: req.Metric, Attribute: req.Attribute, Control: req.Control, Treatment: req.Treatment,
		Type: analysis.Type(req.Type), Alpha: req.Alpha, Correction: analysis.Correction(req.Correction), MaxSegments: req.MaxSegments,
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
	return &segmentsResult{SegmentReport: rep, Experiment: e.Key, MultipleArms: multi}, nil
}

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
