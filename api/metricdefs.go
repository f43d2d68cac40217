package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

type metricList struct {
	Metrics []*experiment.Metric `json:"metrics"`
}

// metricDefRoutes define metrics (admins and analysts) and read them.
func (s *Server) metricDefRoutes() {
	const admin, analyst, viewer = experiment.RoleAdmin, experiment.RoleAnalyst, experiment.RoleViewer
	s.route(http.MethodPost, "/v1/metrics", analyst, s.createMetric, op{
		Summary: "Define a metric", Request: experiment.Metric{}, Response: experiment.Metric{}, Status: http.StatusCreated, Also: []experiment.Role{admin},
		Description: "aggregation is sum, count, mean, binary or ratio (of two sum/count/binary metrics named by numerator and denominator). " +
			"window {start_days, end_days} is relative to each unit's first exposure (default [0, ∞)); window.matured_only counts only units whose window has ended (retention); " +
			"cap {value|upper|percentile, lower|lower_percentile} winsorizes per-unit values at either or both tails; covariate {days} turns on CUPED with the same metric over the days before first exposure. " +
			"Invalid definitions are 400 naming the field; a taken name is 409."})
	s.route(http.MethodGet, "/v1/metrics", viewer, s.listMetrics, op{
		Summary: "List metric definitions", Response: metricList{}, Also: []experiment.Role{analyst}})
	s.route(http.MethodGet, "/v1/metrics/:name", viewer, s.getMetric, op{
		Summary: "Get a metric definition (its current version, or the one asked for)", Response: experiment.Metric{}, Also: []experiment.Role{analyst},
		Query: []param{{Name: "version", Type: "integer", Description: "a version of the definition; absent: the current one"}}})
	s.route(http.MethodPut, "/v1/metrics/:name", analyst, s.putMetric, op{
		Summary: "Change a metric: store its next version", Request: experiment.Metric{}, Response: experiment.Metric{}, Also: []experiment.Role{admin},
		Description: "The body is the whole new definition, validated as in POST. The earlier versions stay: running and stopped experiments " +
			"keep the versions they pinned when they started (their results do not change), drafts read the current one, and every result " +
			"records the versions it used (metric_versions). A body equal to the current definition changes nothing. An unknown metric is 404."})
	s.route(http.MethodGet, "/v1/metrics/:name/versions", viewer, s.metricVersions, op{
		Summary: "A metric's versions, oldest first", Response: metricVersionList{}, Also: []experiment.Role{analyst}})
	s.route(http.MethodPost, "/v1/metrics/:name/deprecate", analyst, s.deprecateMetric(true), op{
		Summary: "Deprecate a metric", Response: experiment.Metric{}, Also: []experiment.Role{admin},
		Description: "A deprecated metric keeps serving the experiments and templates that use it; new experiments and templates naming it are 400."})
	s.route(http.MethodPost, "/v1/metrics/:name/restore", analyst, s.deprecateMetric(false), op{
		Summary: "Undo a metric's deprecation", Response: experiment.Metric{}, Also: []experiment.Role{admin}})
	s.route(http.MethodDelete, "/v1/metrics/:name", admin, s.deleteMetric, op{
		Summary: "Delete an unused metric and its versions", Status: http.StatusNoContent,
		Description: "A metric used by an experiment (any status), a ratio metric or a template is 409 naming them."})
}

type metricVersionList struct {
	Name     string                     `json:"name"`
	Current  int                        `json:"current"`
	Versions []experiment.MetricVersion `json:"versions"`
}

func (s *Server) putMetric(c echo.Context) error {
	var m experiment.Metric
	if err := s.decode(c, &m); err != nil {
		return err
	}
	out, err := s.db.PutMetric(c.Request().Context(), actor(c), c.Param("name"), &m)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) metricVersions(c echo.Context) error {
	vs, err := s.db.MetricVersions(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	out := metricVersionList{Name: c.Param("name"), Versions: vs}
	if len(vs) > 0 {
		out.Current = vs[len(vs)-1].Version
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deprecateMetric(deprecated bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		m, err := s.db.DeprecateMetric(c.Request().Context(), actor(c), c.Param("name"), deprecated)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, m)
	}
}

func (s *Server) deleteMetric(c echo.Context) error {
	if err := s.db.DeleteMetric(c.Request().Context(), actor(c), c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) createMetric(c echo.Context) error {
	var m experiment.Metric
	if err := s.decode(c, &m); err != nil {
		return err
	}
	out, err := s.db.CreateMetric(c.Request().Context(), actor(c), &m)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listMetrics(c echo.Context) error {
	ms, err := s.db.ListMetrics(c.Request().Context())
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []*experiment.Metric{}
	}
	return c.JSON(http.StatusOK, metricList{ms})
}

func (s *Server) getMetric(c echo.Context) error {
	if v := c.QueryParam("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return experiment.E("api.getMetric", experiment.Invalid, experiment.Field("version"), experiment.Errorf("must be a whole number ≥ 1, got %q", v))
		}
		if _, err := s.db.GetMetric(c.Request().Context(), c.Param("name")); err != nil {
			return err
		}
		m, err := s.db.GetMetricVersion(c.Request().Context(), c.Param("name"), n)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, m)
	}
	m, err := s.db.GetMetric(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}
