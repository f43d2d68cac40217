package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
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
	// NotDeployable says why the model failed a training gate (served only
	// because it was forced).
	NotDeployable string `json:"not_deployable,omitempty"`
}

// modelReload is the answer to a reload: the model now serving and the version
// it replaced.
type modelReload struct {
	Model           modelInfo `json:"model"`
	PreviousVersion string    `json:"previous_version,omitempty" doc:"empty when the model was not loaded before"`
}

func infoOf(m *journey.Model) modelInfo {
	return modelInfo{Name: m.Name, Version: m.Version(), Items: m.Model.NItems(), Users: m.Model.NUsers(),
		Dim: m.Model.Dim, Backend: m.Scorer.Name(), HasCard: m.Card != nil, NotDeployable: m.Model.NotDeployable()}
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
	s.route(http.MethodPost, "/v1/models/:name/reload", experiment.RoleAdmin, s.reloadModel, op{
		Summary: "Load the model's file again and swap it in without a restart",
		Description: "Reads NAME.safetensors (and its card) from the server's --models folder, checks it (it decodes and validates, " +
			"passed its training gates, and its scorer answers a probe query) and swaps it in: decisions already under way finish on the " +
			"old version, later ones get the new. On any error the old version keeps serving: 404 no such file, 400 a file that does not " +
			"load (the field names the file or metadata key), 409 a model marked not deployable (force=true loads it anyway), 503 a scorer " +
			"that fails its probe. Every attempt, refused ones included, is in the audit log (GET /v1/audit?entity=model&key=NAME): " +
			"who, when, the version serving before and the file's version, and the result.",
		Query:    []param{{Name: "force", Type: "boolean", Description: "load a model that failed a training gate (e.g. the membership-inference test)"}},
		Response: modelReload{}})
}

func (s *Server) reloadModel(c echo.Context) error {
	const op = "api.reloadModel"
	d, err := s.decider()
	if err != nil {
		return err
	}
	force := false
	if v := c.QueryParam("force"); v != "" {
		if force, err = strconv.ParseBool(v); err != nil {
			return experiment.E(op, experiment.Invalid, experiment.Field("force"), experiment.Errorf("must be true or false, got %q", v))
		}
	}
	m, old, err := d.Models().Reload(c.Request().Context(), journey.ReloadRequest{Name: c.Param("name"), Force: force, Actor: actor(c), Trigger: journey.TriggerAPI})
	if err != nil {
		return experiment.E(op, err)
	}
	out := modelReload{Model: infoOf(m)}
	if old != nil {
		out.PreviousVersion = old.Version()
	}
	s.log.Info("model reloaded", "name", m.Name, "version", m.Version(), "previous", out.PreviousVersion, "backend", m.Scorer.Name())
	return c.JSON(http.StatusOK, out)
}

func (s *Server) listModels(c echo.Context) error {
	d, err := s.decider()
	if err != nil {
		return err
	}
	out := modelList{Models: []modelInfo{}}
	for _, m := range d.Models().List() {
		out.Models = append(out.Models, infoOf(m))
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
