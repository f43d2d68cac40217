package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/store"
)

// Quantile metrics of an experiment (docs/quantiles.md): the pipeline of
// "lift quantiles" (analysis.QuantileRun) over the store's per-unit values.

type quantilesRequest struct {
	Experiment string    `json:"experiment" required:"true"`
	Metric     string    `json:"metric" required:"true" doc:"a sum, count, binary or mean metric, per unit as in the experiment's results"`
	Control    string    `json:"control,omitempty" doc:"control variant; default the experiment's first variant"`
	Treatment  string    `json:"treatment,omitempty" doc:"treated variant; default the other variant of a two-variant experiment"`
	Quantiles  []float64 `json:"quantiles,omitempty" doc:"quantiles in (0, 1); default [0.5, 0.9, 0.99]"`
	Alpha      float64   `json:"alpha,omitempty" doc:"1 − confidence level, default 0.05"`
	PerEvent   bool      `json:"per_event,omitempty" doc:"quantiles of the metric's events (each event's value, in the metric's window from the unit's first exposure) instead of the per-unit values, with Woodruff intervals clustered by unit; a sum or mean metric"`
}

// quantilesResult is the answer of POST /v1/analyses/quantiles: the report of
// "lift quantiles" and where the data came from.
type quantilesResult struct {
	*analysis.QuantileReport
	Experiment   string `json:"experiment"`
	MultipleArms int    `json:"multiple_arms" doc:"units exposed to more than one variant, left out"`
}

func (s *Server) quantileRoutes() {
	s.route(http.MethodPost, "/v1/analyses/quantiles", experiment.RoleAnalyst, s.postQuantiles, op{
		Summary: "Differences of quantiles (p50, p90, p99) of a per-unit metric", Request: quantilesRequest{}, Response: quantilesResult{},
		Description: "Takes the metric's per-unit values of the two variants (the metric engine, as the experiment's " +
			"results) and compares their quantiles: type-6 sample quantiles, Maritz-Jarrett standard errors and " +
			"normal large-sample intervals for the difference (relative: delta method). Exact numbers (analysts). " +
			"The same pipeline as \"lift quantiles\" (analysis.QuantileRun)."})
}

func (s *Server) postQuantiles(c echo.Context) error {
	var req quantilesRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	res, err := quantileAnalysis(c.Request().Context(), s.db, s.results.Engine(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// quantileAnalysis is the quantile comparison of a request: POST
// /v1/analyses/quantiles and the report's quantiles view.
func quantileAnalysis(ctx context.Context, db *store.DB, eng metric.Engine, req quantilesRequest) (*quantilesResult, error) {
	return quantileAnalysisOf(ctx, db, eng, req, nil)
}

// quantileAnalysisOf is quantileAnalysis over the values pre when not nil
// (those of req's metric and arms).
func quantileAnalysisOf(ctx context.Context, db *store.DB, eng metric.Engine, req quantilesRequest, pre *unitValues) (*quantilesResult, error) {
	const op = "api.quantiles"
	for _, r := range []struct{ field, v string }{{"experiment", req.Experiment}, {"metric", req.Metric}} {
		if r.v == "" {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field(r.field), experiment.Errorf("is required"))
		}
	}
	e, _, err := analysisExperiment(ctx, db, op, req.Experiment, req.Metric)
	if err != nil {
		return nil, err
	}
	if req.Control, req.Treatment, err = twoVariants(op, e, req.Control, req.Treatment); err != nil {
		return nil, err
	}
	values, multi, err := readUnitValues(ctx, db, eng, e, req.Control, req.Treatment, req.Metric, pre)
	if err != nil {
		return nil, err
	}
	arms, ys := make([]string, len(values)), make([]float64, len(values))
	for i, v := range values {
		arms[i], ys[i] = v.Arm, v.Value
	}
	var clusters []string
	if req.PerEvent {
		armOf := make(map[string]string, len(values))
		units := make([]string, len(values))
		for i, v := range values {
			armOf[v.Unit], units[i] = v.Arm, v.Unit
		}
		if clusters, ys, err = db.EventValues(ctx, e, req.Metric, "per_event", units); err != nil {
			return nil, err
		}
		arms = make([]string, len(clusters))
		for i, u := range clusters {
			arms[i] = armOf[u]
		}
		if clusters == nil {
			clusters = []string{} // events mode even without events
		}
	}
	rep, err := analysis.QuantileRun(ctx, arms, ys, analysis.QuantileOptions{Metric: req.Metric, Control: req.Control, Treatment: req.Treatment, Quantiles: req.Quantiles, Alpha: req.Alpha,
		Clusters: clusters})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, experiment.E(op, err)
	}
	return &quantilesResult{QuantileReport: rep, Experiment: e.Key, MultipleArms: multi}, nil
}
