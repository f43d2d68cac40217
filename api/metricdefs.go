package api

import (
	"net/http"

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
			"window {start_days, end_days} is relative to each unit's first exposure (default [0, ∞)); cap {value} or {percentile} winsorizes " +
			"per-unit values; covariate {days} turns on CUPED with the same metric over the days before first exposure. " +
			"Invalid definitions are 400 naming the field; a taken name is 409."})
	s.route(http.MethodGet, "/v1/metrics", viewer, s.listMetrics, op{
		Summary: "List metric definitions", Response: metricList{}, Also: []experiment.Role{analyst}})
	s.route(http.MethodGet, "/v1/metrics/:name", viewer, s.getMetric, op{
		Summary: "Get a metric definition", Response: experiment.Metric{}, Also: []experiment.Role{analyst}})
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
	m, err := s.db.GetMetric(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}
