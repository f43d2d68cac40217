package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
)

// modelInfo describes a loaded model.
type modelInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Items   int    `json:"items"`
	Users   int    `json:"users"`
	Dim     int    `json:"dim"`
	Backend string `json:"backend" doc:"the scorer serving it, e.g. \"cpu (16 workers)\""`
	HasCard bool   `json:"has_card"`
}

type modelList struct {
	Models []modelInfo `json:"models"`
}

// modelRoutes list the personalization models the server loaded and serve their cards.
func (s *Server) modelRoutes() {
	const analyst = experiment.RoleAnalyst
	s.route(http.MethodGet, "/v1/models", analyst, s.listModels, op{Summary: "List the loaded personalization models", Response: modelList{}})
	s.route(http.MethodGet, "/v1/models/:name/card", analyst, s.modelCard, op{
		Summary: "A model's card (data, offline metrics, intended use, not for pricing, exposure concentration, profile reset)", Response: scorer.Card{},
		Description: "JSON by default; Markdown when the Accept header asks for text/markdown (or text/plain)."})
}

func (s *Server) listModels(c echo.Context) error {
	d, err := s.decider()
	if err != nil {
		return err
	}
	out := modelList{Models: []modelInfo{}}
	for _, m := range d.Models().List() {
		out.Models = append(out.Models, modelInfo{Name: m.Name, Version: m.Version(), Items: m.Model.NItems(), Users: m.Model.NUsers(),
			Dim: m.Model.Dim, Backend: m.Scorer.Name(), HasCard: m.Card != nil})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) modelCard(c echo.Context) error {
	const op = "api.modelCard"
	d, err := s.decider()
	if err != nil {
		return err
	}
	name := c.Param("name")
	m, ok := d.Models().Get(name)
	if !ok {
		return experiment.E(op, experiment.NotFound, experiment.Errorf("model %q is not loaded", name))
	}
	if m.Card == nil {
		return experiment.E(op, experiment.NotFound, experiment.Errorf("model %q has no card (expected beside its file, see lift model train)", name))
	}
	accept := c.Request().Header.Get(echo.HeaderAccept)
	if strings.Contains(accept, "text/markdown") || (strings.Contains(accept, "text/plain") && !strings.Contains(accept, "json")) {
		return c.Blob(http.StatusOK, "text/markdown; charset=utf-8", []byte(m.Card.Markdown()))
	}
	b, err := m.Card.JSON()
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSONCharsetUTF8, b)
}
