package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

// Health checks of experiments and holdouts (results.ExperimentHealth,
// results.HoldoutHealth, results.ExperimentOverlaps): exact numbers, so
// analysts and admins only.
func (s *Server) healthRoutes() {
	const analyst = experiment.RoleAnalyst
	s.route(http.MethodGet, "/v1/experiments/:key/health", analyst, s.experimentHealth, op{
		Summary: "Health checks of an experiment: sequential SRM and pre-exposure imbalance", Response: results.Health{},
		Description: "sequential_srm is the anytime-valid sample-ratio check of Lindon & Malek (2022): the p-value of a " +
			"Dirichlet-multinomial mixture Bayes factor, the running minimum of 1/BF over the cumulative units at the end " +
			"of each UTC day (looks) and now, so a monitor may read it as often as it likes and the chance that it ever " +
			"reports a mismatch (p < threshold) without one stays below the threshold; srm is the one-shot chi-square, " +
			"valid when read once. imbalance tests, for each metric with a CUPED covariate, whether the arms' pre-period " +
			"means differ beyond chance (a Wald chi-square test of equal means with unequal variances, at the plan's alpha). " +
			"Nothing is stored."})
	s.route(http.MethodGet, "/v1/holdouts/:name/health", analyst, s.holdoutHealth, op{
		Summary: "Health of a holdout cohort: share and drift, contamination, age", Response: results.HoldoutHealth{},
		Description: "For one version of the holdout: the observed share of holdout units against the configured fraction " +
			"(the anytime-valid sequential SRM over the daily looks), the share of each day's new units and Pearson's " +
			"homogeneity test of it across days (drift), the units logged both in the holdout and exposed under the " +
			"version (contaminated, left out of the holdout's results), and when the cohort was drawn, its age and whether " +
			"its rotation period has passed. Nothing is stored.",
		Query: []param{{Name: "version", Type: "integer", Description: "holdout version (cohort); default the current one"}}})
	s.route(http.MethodGet, "/v1/experiments/:key/overlaps", analyst, s.experimentOverlaps, op{
		Summary: "Experiments of other layers sharing units and metrics with this one, and their interaction tests", Response: results.Overlaps{},
		Description: "For each experiment in another layer (or without one) that shares a metric and has units in common, the " +
			"number of shared units and, per shared non-ratio metric and pair of treatment arms, the OLS interaction test " +
			"of y = b0 + b1*A + b2*B + b3*A*B over the units analyzed in both (b3, its classical standard error, t with " +
			"N - 4 degrees of freedom, as statsmodels' OLS of y ~ a * b). Row-level; nothing is stored."})
}

func (s *Server) experimentHealth(c echo.Context) error {
	h, err := s.results.ExperimentHealth(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h)
}

func (s *Server) holdoutHealth(c echo.Context) error {
	v, err := intParam(c, "version")
	if err != nil {
		return err
	}
	h, err := s.results.HoldoutHealth(c.Request().Context(), c.Param("name"), int(v))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h)
}

func (s *Server) experimentOverlaps(c echo.Context) error {
	o, err := s.results.ExperimentOverlaps(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}
