package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

type snapshotList struct {
	Snapshots []store.SnapshotInfo `json:"snapshots"`
}

// resultRoutes serve results. Analysts (and admins) see exact numbers; a viewer
// key, or ?private=true, gets the differentially private release instead (as
// /results/private answers it), and exact snapshots and daily series are not
// theirs to read.
func (s *Server) resultRoutes() {
	const analyst, viewer = experiment.RoleAnalyst, experiment.RoleViewer
	privateParam := param{Name: "private", Type: "boolean", Description: "true: answer the differentially private release (as /results/private does), spending from the privacy budget; always so for viewer keys"}
	s.route(http.MethodGet, "/v1/experiments/:key/results", viewer, s.experimentResults, op{
		Summary: "Results of every metric of an experiment (DP numbers for viewer keys)", Response: experimentResultsAnswer{},
		Description: "Computes the per-variant sufficient statistics of each metric from the exposures and events " +
			"(units exposed to more than one variant are excluded and counted), then the comparisons with the control: " +
			"CUPED-adjusted where the metric has a covariate (the plain ones are in unadjusted), sequential intervals when " +
			"the analysis plan says so, the plan's multiple-testing correction across metrics, SRM, exposure counts and " +
			"data freshness. Each computation is stored as a snapshot; ?snapshot=ID returns a stored one unchanged. " +
			"With a viewer key or ?private=true the answer is the differentially private release (PrivateResults, with " +
			"\"private\": {\"epsilon_spent\", \"epsilon_left\"}), and ?snapshot is refused (403). With exact numbers and an " +
			"analysis plan that declares an mde, \"progress\" says whether every arm has the sample the plan needs and when it will.",
		Query: []param{{Name: "snapshot", Type: "integer", Description: "id of a stored snapshot to return instead of computing"}, privateParam}})
	s.route(http.MethodGet, "/v1/experiments/:key/results/snapshots", analyst, s.experimentSnapshots, op{
		Summary: "List the stored result snapshots of an experiment, newest first", Response: snapshotList{}})
	s.route(http.MethodGet, "/v1/experiments/:key/results/daily", analyst, s.dailyResults, op{
		Summary: "Cumulative daily results of one metric, for charts", Response: results.Daily{},
		Description: "Each day's point is the analysis as of the end of that UTC day (exposures and events before it), " +
			"from the first exposure's day to the latest exposure or event (at most 120 days).",
		Query: []param{{Name: "metric", Required: true, Description: "the metric's name (one of the experiment's)"}}})
	s.route(http.MethodGet, "/v1/holdouts/:name/results", viewer, s.holdoutResults, op{
		Summary: "Long-run incrementality: holdout units against the units exposed to the experiments naming the holdout (DP numbers for viewer keys)", Response: results.Results{},
		Description: "Arms are \"holdout\" (the control) and \"exposed\", by the exposures logged under the given version. " +
			"The comparison estimates the combined effect of everything the holdout protects against. Stored as a snapshot. " +
			"With a viewer key or ?private=true the answer is the holdout's differentially private release (as " +
			"/v1/holdouts/NAME/results/private), and ?snapshot and ?metrics are refused.",
		Query: []param{
			{Name: "version", Type: "integer", Description: "holdout version (cohort); default the current one"},
			{Name: "metrics", Description: "comma-separated metric names; default every metric of the experiments naming the holdout"},
			{Name: "snapshot", Type: "integer", Description: "id of a stored snapshot to return instead of computing"},
			privateParam,
		}})
}

// resultOptions: the snapshot's code version is the binary's build version.
func (s *Server) resultOptions() results.Options { return results.Options{} }

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

// exactOnly refuses, in a request answered with DP numbers, the parameters that
// only make sense for exact results.
func exactOnly(c echo.Context, names ...string) error {
	for _, n := range names {
		if c.QueryParam(n) != "" {
			return experiment.E("api.results", experiment.Forbidden, experiment.Field(n),
				experiment.Errorf("reads exact results, which need an analyst key (this request is answered with differentially private numbers)"))
		}
	}
	return nil
}

func (s *Server) experimentResults(c echo.Context) error {
	ctx := c.Request().Context()
	key := c.Param("key")
	if err := parseBoolParam(c, "private"); err != nil {
		return err
	}
	if wantsPrivate(c) {
		if err := exactOnly(c, "snapshot"); err != nil {
			return err
		}
		return s.getPrivateResults(c)
	}
	id, err := intParam(c, "snapshot")
	if err != nil {
		return err
	}
	var r *results.Results
	if id > 0 {
		r, err = s.results.ResultSnapshot(ctx, "experiment", key, id)
	} else {
		r, err = s.results.ExperimentResults(ctx, key, s.resultOptions())
	}
	if err != nil {
		return err
	}
	// A snapshot's progress would be as of its computation too; the
	// plan's progress is added to fresh results only.
	if id == 0 {
		out, err := s.withProgress(ctx, key, r)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, out)
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
	d, err := s.results.DailyResults(c.Request().Context(), c.Param("key"), m)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) holdoutResults(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	if err := parseBoolParam(c, "private"); err != nil {
		return err
	}
	if wantsPrivate(c) {
		if err := exactOnly(c, "snapshot", "metrics"); err != nil {
			return err
		}
		return s.getPrivateHoldoutResults(c)
	}
	id, err := intParam(c, "snapshot")
	if err != nil {
		return err
	}
	if id > 0 {
		r, err := s.results.ResultSnapshot(ctx, "holdout", name, id)
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
	r, err := s.results.HoldoutResults(ctx, name, int(v), metrics, s.resultOptions())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// parseBoolParam checks that an optional boolean query parameter is one.
func parseBoolParam(c echo.Context, name string) error {
	if v := c.QueryParam(name); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return experiment.E("api.results", experiment.Invalid, experiment.Field(name), experiment.Errorf("must be true or false, got %q", v))
		}
	}
	return nil
}
