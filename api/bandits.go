package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis/bandit"
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

// storeSticky is bandit.Sticky over the store's first versions.
type storeSticky struct {
	s   *Server
	key string
}

func (t storeSticky) Enter(ctx context.Context, unit string, current int) (int, error) {
	v, err := t.s.db.EnterBandit(ctx, t.key, []string{unit}, current)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// banditAssign replaces the variants of the units of a running bandit that are
// in the experiment (the plan has applied coverage, layer and holdout: units
// in the permanent holdout never enter the bandit) by their sticky bandit arm:
// the hash of the unit under the weights of the version at which it first
// entered, which is recorded now for new units.
func (s *Server) banditAssign(ctx context.Context, e *experiment.Experiment, as []experiment.Assignment) error {
	var units []string
	var idx []int
	for i := range as {
		if as[i].InExperiment {
			units, idx = append(units, as[i].Unit), append(idx, i)
		}
	}
	if len(units) == 0 {
		return nil
	}
	vs, err := s.db.BanditVersions(ctx, e.Key)
	if err != nil {
		return err
	}
	first, err := s.db.EnterBandit(ctx, e.Key, units, vs[len(vs)-1].Version)
	if err != nil {
		return err
	}
	for j, i := range idx {
		arm := bandit.Arm(e.Seed, units[j], vs[first[j]].Weights)
		name := e.Variants[arm].Name
		as[i].Variant, as[i].VariantIndex = &name, arm
	}
	return nil
}
