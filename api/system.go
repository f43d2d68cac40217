package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/liftlab/lift/experiment"
)

// statusBody is the answer of /healthz and /readyz.
type statusBody struct {
	Status string `json:"status"` // "ok"
}

// systemRoutes serves health, readiness, metrics and the OpenAPI document.
// Metrics need an analyst key: they name experiments and count decisions per arm.
func (s *Server) systemRoutes() {
	s.route(http.MethodGet, "/healthz", Public, s.healthz, op{
		Summary: "Liveness: the process is up", Response: statusBody{}})
	s.route(http.MethodGet, "/readyz", Public, s.readyz, op{
		Summary: "Readiness: the database answers", Response: statusBody{},
		Description: "503 with an error body when the database does not answer."})
	s.route(http.MethodGet, "/metrics", experiment.RoleAnalyst, s.metricsHandler(), op{
		Summary: "Prometheus metrics (analyst or admin key)", ContentType: "text/plain",
		Description: "Needs a key: the metrics are labelled by experiment and journey and hold exact decision counts per arm. " +
			"Give Prometheus an analyst key (scrape_config authorization: credentials)."})
	s.route(http.MethodGet, "/openapi.json", Public, s.openAPIHandler, op{
		Summary: "This OpenAPI 3.0 document", Response: map[string]any{}})
}

func (s *Server) openAPIHandler(c echo.Context) error {
	s.docOnce.Do(func() { s.doc, s.docErr = json.MarshalIndent(s.openAPI(), "", "  ") })
	if s.docErr != nil {
		return s.docErr
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.doc)
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusBody{Status: "ok"})
}

// readyz checks that the database answers a query within the request's deadline.
func (s *Server) readyz(c echo.Context) error {
	var one int
	if err := s.db.SQL().QueryRowContext(c.Request().Context(), "SELECT 1").Scan(&one); err != nil {
		return experiment.E("api.readyz", experiment.Unavailable, experiment.Errorf("database not reachable: %v", err))
	}
	return c.JSON(http.StatusOK, statusBody{Status: "ok"})
}

func (s *Server) metricsHandler() echo.HandlerFunc {
	h := promhttp.HandlerFor(s.opt.Registry, promhttp.HandlerOpts{ErrorLog: slogErrorLog{s}})
	return echo.WrapHandler(h)
}

// slogErrorLog adapts the server's slog logger to promhttp's error log.
type slogErrorLog struct{ s *Server }

func (l slogErrorLog) Println(v ...any) {
	l.s.log.Error("serving metrics", "error", fmt.Sprint(v...))
}
