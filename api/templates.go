package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// templateRequest is the body of POST /v1/templates and PUT /v1/templates/NAME.
type templateRequest struct {
	Name        string                   `json:"name" doc:"unique name: 1-128 letters, digits, '_', '.' or '-' (PUT: may be absent, else must match the path)"`
	Description string                   `json:"description,omitempty"`
	Metrics     []experiment.MetricRef   `json:"metrics,omitempty" doc:"the experiment's metrics, as in POST /v1/experiments (defined, not deprecated)"`
	Guardrails  []string                 `json:"guardrails,omitempty" doc:"metrics watched for harm, added after metrics (defined, not deprecated, not among metrics)"`
	Analysis    *experiment.AnalysisPlan `json:"analysis,omitempty" doc:"the analysis plan, as in POST /v1/experiments"`
}

func (r *templateRequest) template() *experiment.Template {
	return &experiment.Template{Name: r.Name, Description: r.Description, Metrics: r.Metrics, Guardrails: r.Guardrails, Analysis: r.Analysis}
}

type templateList struct {
	Templates []*experiment.Template `json:"templates"`
}

// templateRoutes are experiment templates: admins change them (as they
// register experiments), analysts read them.
func (s *Server) templateRoutes() {
	const admin, analyst = experiment.RoleAdmin, experiment.RoleAnalyst
	s.route(http.MethodPost, "/v1/templates", admin, s.createTemplate, op{
		Summary: "Create an experiment template", Request: templateRequest{}, Response: experiment.Template{}, Status: http.StatusCreated,
		Description: "A named set of metrics, guardrails and an analysis plan that POST /v1/experiments takes with \"template\": NAME. " +
			"Invalid fields are 400 naming them; a taken name is 409."})
	s.route(http.MethodGet, "/v1/templates", analyst, s.listTemplates, op{
		Summary: "List experiment templates", Response: templateList{}})
	s.route(http.MethodGet, "/v1/templates/:name", analyst, s.getTemplate, op{
		Summary: "Get an experiment template", Response: experiment.Template{}})
	s.route(http.MethodPut, "/v1/templates/:name", admin, s.putTemplate, op{
		Summary: "Replace an experiment template", Request: templateRequest{}, Response: experiment.Template{},
		Description: "Experiments created from it before keep their design."})
	s.route(http.MethodDelete, "/v1/templates/:name", admin, s.deleteTemplate, op{
		Summary: "Delete an experiment template", Status: http.StatusNoContent,
		Description: "Experiments created from it keep their design and the template's name, as a record."})
}

func (s *Server) createTemplate(c echo.Context) error {
	var req templateRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	t, err := s.db.PutTemplate(c.Request().Context(), actor(c), req.template(), true)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, t)
}

func (s *Server) putTemplate(c echo.Context) error {
	var req templateRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = c.Param("name")
	}
	if req.Name != c.Param("name") {
		return experiment.E("api.putTemplate", experiment.Invalid, experiment.Field("name"),
			experiment.Errorf("the body names template %q but the path %q: a template cannot be renamed", req.Name, c.Param("name")))
	}
	t, err := s.db.PutTemplate(c.Request().Context(), actor(c), req.template(), false)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (s *Server) listTemplates(c echo.Context) error {
	ts, err := s.db.ListTemplates(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, templateList{ts})
}

func (s *Server) getTemplate(c echo.Context) error {
	t, err := s.db.GetTemplate(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (s *Server) deleteTemplate(c echo.Context) error {
	if err := s.db.DeleteTemplate(c.Request().Context(), actor(c), c.Param("name")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
