package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

type snapshotList struct {
	Snapshots []store.SnapshotInfo `json:"snapshots"`
}

// resultRoutes serve exact results: analysts (and admins). Viewers see only
// differentially private releases, elsewhere.
func (s *Server) resultRoutes() {
	const analyst = experiment.RoleAnalyst
	s.route(http.MethodGet, "/v1/experiments/:key/results", analyst, s.experimentResults, op{
		Summary: "Results of every metric of an experiment", Response: store.Results{},
		Description: "Computes the per-variant sufficient statistics of each metric from the exposures and events " +
			"(units exposed to more than one variant are excluded and counted), then the comparisons with the control: " +
			"CUPED-adjusted where the metric has a covariate (the plain ones are in unadjusted), sequential intervals when " +
			"the analysis plan says so, the plan's multiple-testing correction across metrics, SRM, exposure counts and " +
			"data freshness. Each computation is stored as a snapshot; ?snapshot=ID returns a stored one unchanged.",
		Query: []param{{Name: "snapshot", Type: "integer", Description: "id of a stored snapshot to return instead of computing"}}})
	s.route(http.MethodGet, "/v1/experiments/:key/results/snapshots", analyst, s.experimentSnapshots, op{
		Summary: "List the stored result snapshots of an experiment, newest first", Response: snapshotList{}})
	s.route(http.MethodGet, "/v1/experiments/:key/results/daily", analyst, s.dailyResults, op{
		Summary: "Cumulative daily results of one metric, for charts", Response: store.Daily{},
		Description: "Each day's point is the analysis as of the end of that UTC day (exposures and events before it), " +
			"from the first exposure's day to the latest exposure or event (at most 120 days).",
		Query: []param{{Name: "metric", Required: true, Description: "the metric's name (one of the experiment's)"}}})
	s.route(http.MethodGet, "/v1/holdouts/:name/results", analyst, s.holdoutResults, op{
		Summary: "Long-run incrementality: holdout units against the units exposed to the experiments naming the holdout", Response: store.Results{},
		Description: "Arms are \"holdout\" (the control) and \"exposed\", by the exposures logged under the given version. " +
			"The comparison estimates the combined effect of everything the holdout protects against. Stored as a snapshot.",
		Query: []param{
			{Name: "version", Type: "integer", Description: "holdout version (cohort); default the current one"},
			{Name: "metrics", Description: "comma-separated metric names; default every metric of the experiments naming the holdout"},
			{Name: "snapshot", Type: "integer", Description: "id of a stored snapshot to return instead of computing"},
		}})
}

// resultOptions: the snapshot's code version is the binary's build version.
func (s *Server) resultOptions() store.ResultsOptions { return store.ResultsOptions{} }

// intParam reads an optional positive integer query parameter.
func intParam(c echo.Context, name string) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, experiment.E("api.results", experiment.Invalid, experiment.Field(name), experiment.Errorf("must be a positive integer, got %q", v))
	}
	return n, nil
}

func (s *Server) experimentResults(c echo.Context) error {
	ctx := c.Request().Context()
	key := c.Param("key")
	id, err := intParam(c, "snapshot")
	if err != nil {
		return err
	}
	var r *store.Results
	if id > 0 {
		r, err = s.db.ResultSnapshot(ctx, "experiment", key, id)
	} else {
		r, err = s.db.ExperimentResults(ctx, key, s.resultOptions())
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) experimentSnapshots(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := s.db.GetExperiment(ctx, c.Param("key")); err != nil {
		return err
	}
	list, err := s.db.ResultSnapshots(ctx, "experiment", c.Param("key"), 100)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, snapshotList{list})
}

func (s *Server) dailyResults(c echo.Context) error {
	m := c.QueryParam("metric")
	if m == "" {
		return experiment.E("api.results", experiment.Invalid, experiment.Field("metric"), experiment.Errorf("is required: ?metric=NAME"))
	}
	d, err := s.db.DailyResults(c.Request().Context(), c.Param("key"), m)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) holdoutResults(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	id, err := intParam(c, "snapshot")
	if err != nil {
		return err
	}
	if id > 0 {
		r, err := s.db.ResultSnapshot(ctx, "holdout", name, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, r)
	}
	v, err := intParam(c, "version")
	if err != nil {
		return err
	}
	var metrics []string
	for _, m := range strings.Split(c.QueryParam("metrics"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			metrics = append(metrics, m)
		}
	}
	r, err := s.db.HoldoutResults(ctx, name, int(v), metrics, s.resultOptions())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
