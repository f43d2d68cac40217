package api

import (
	"context"
	"math"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// Power calculations (POST /v1/analyses/power) and the progress of an
// experiment towards the sample its plan needs (the "progress" object of
// GET /v1/experiments/KEY/results).

// powerRoutes: the calculation reads no stored data, so any reading key may
// ask it (viewer and up).
func (s *Server) powerRoutes() {
	s.route(http.MethodPost, "/v1/analyses/power", experiment.RoleViewer, s.postPower, op{
		Summary: "Sample size, power, minimum detectable effect and duration of a planned test", Request: analysis.PlanInput{}, Response: analysis.PlanResult{},
		Description: "The calculation of \"lift power\" (analysis.Plan) for two or more equal arms: with delta alone the sample size " +
			"per arm, with n_per_arm and delta the power, with n_per_arm alone the minimum detectable absolute effect; the " +
			"exact noncentral t of R's power.t.test, or the normal approximation with normal. With daily_units (and traffic) " +
			"it adds the days until every arm has the sample. It reads no stored data."})
}

func (s *Server) postPower(c echo.Context) error {
	var in analysis.PlanInput
	if err := s.decode(c, &in); err != nil {
		return err
	}
	r, err := analysis.Plan(in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// experimentResultsAnswer is GET /v1/experiments/KEY/results with exact
// numbers: the results and, when the plan declares an MDE, the progress.
type experimentResultsAnswer struct {
	*results.Results
	Progress *progressOut `json:"progress,omitempty" doc:"with an analysis plan's mde: whether the planned sample is reached, and when it will be"`
}

type progressOut struct {
	*analysis.Progress
	Error string `json:"error,omitempty" doc:"why the plan could not be sized (then the rest is empty)"`
}

// withProgress adds the plan's progress to freshly computed results: the
// primary metric (the plan's, else the first) sized at the plan's relative MDE
// on its control arm's mean and standard deviation (with its CUPED variance
// reduction when adjusted), each arm's rate its units since started_at.
func (s *Server) withProgress(ctx context.Context, key string, r *results.Results) (*experimentResultsAnswer, error) {
	out := &experimentResultsAnswer{Results: r}
	e, err := s.db.GetExperiment(ctx, key)
	if err != nil {
		return nil, err
	}
	if e.Analysis.MDE <= 0 || len(r.Metrics) == 0 {
		return out, nil
	}
	m := &r.Metrics[0]
	for i := range r.Metrics {
		if r.Metrics[i].Primary {
			m = &r.Metrics[i]
		}
	}
	in := analysis.ProgressInput{Metric: m.Name, MDE: e.Analysis.MDE, Alpha: r.Alpha, Arms: map[string]int64{}, At: r.ComputedAt}
	if e.StartedAt != nil {
		in.Started = *e.StartedAt
	}
	for name, n := range r.Exposures {
		in.Arms[name] = n
	}
	if m.Error != "" {
		out.Progress = &progressOut{Error: "metric " + m.Name + ": " + m.Error}
		return out, nil
	}
	for _, v := range m.Variants {
		if v.Name == m.Control {
			in.ControlMean, in.ControlSD = v.Mean, math.Sqrt(v.Variance)
		}
	}
	if m.CUPED != nil {
		in.VarianceReduction = m.CUPED.VarianceReduction
	}
	p, err := analysis.ExperimentProgress(in)
	if err != nil {
		var msg string
		if ee, ok := err.(*experiment.Error); ok {
			msg = ee.Message()
		} else {
			msg = err.Error()
		}
		out.Progress = &progressOut{Error: msg}
		return out, nil
	}
	if r.Sequential && p.Note == "" {
		p.Note = "sized for a fixed-horizon test; the plan's sequential intervals are wider at the same sample, so they need more units to detect the MDE"
	}
	out.Progress = &progressOut{Progress: p}
	return out, nil
}
