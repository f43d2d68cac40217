package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
)

// banditRoutes serve a bandit experiment's weight history, effects, chance
// each arm is best and regret, and let an admin recompute the weights now
// (the bandit_allocation job does it each period).
func (s *Server) banditRoutes() {
	s.route(http.MethodGet, "/v1/experiments/:key/bandit", experiment.RoleAnalyst, s.banditState, op{
		Summary: "Weight history, effects, probability best and regret of a bandit experiment", Response: jobs.BanditState{},
		Description: "A bandit experiment (allocation.kind \"bandit\") only; any other is 400 naming experiment. " +
			"versions are every weight version in order (version 0 the declared weights); cohorts the reward sums per arm of the units that entered at each version; " +
			"effects the cohort-stratified differences against the first variant (docs/bandits.md), with naive (the biased pooled difference) for contrast."})
	s.route(http.MethodPost, "/v1/experiments/:key/bandit/recompute", experiment.RoleAdmin, s.banditRecompute, op{
		Summary: "Compute and store the next weight version of a running bandit now", Response: experiment.BanditVersion{},
		Description: "What the bandit_allocation job does each period. A draft or stopped experiment is 409."})
}

func (s *Server) banditState(c echo.Context) error {
	st, err := jobs.BanditReport(c.Request().Context(), s.db, s.results.Engine(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) banditRecompute(c echo.Context) error {
	v, err := jobs.RecomputeBandit(c.Request().Context(), s.db, s.results.Engine(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// banditAssign gives the units of a running bandit that are in the
// experiment their sticky bandit arm (jobs.AssignBandit).
func (s *Server) banditAssign(ctx context.Context, e *experiment.Experiment, as []experiment.Assignment) error {
	return jobs.AssignBandit(ctx, s.db, e, as)
}
