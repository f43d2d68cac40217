package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

type keyRequest struct {
	Name string          `json:"name" required:"true" doc:"a label for the key, e.g. checkout-service"`
	Role experiment.Role `json:"role" required:"true" doc:"admin, analyst, viewer or ingest"`
}

// createdKey is the answer of POST /v1/keys: the key and its secret, which is
// shown this once (the server keeps only its SHA-256).
type createdKey struct {
	experiment.APIKey
	Secret string `json:"secret" doc:"the bearer token; shown only in this answer"`
}

type keyList struct {
	Keys []*experiment.APIKey `json:"keys"`
}

// keyRoutes manage API keys; admins only.
func (s *Server) keyRoutes() {
	const admin = experiment.RoleAdmin
	s.route(http.MethodPost, "/v1/keys", admin, s.createKey, op{
		Summary: "Create an API key", Request: keyRequest{}, Response: createdKey{}, Status: http.StatusCreated,
		Description: "The answer holds the secret; it is never shown again."})
	s.route(http.MethodGet, "/v1/keys", admin, s.listKeys, op{
		Summary: "List API keys (without secrets)", Response: keyList{}})
	s.route(http.MethodDelete, "/v1/keys/:id", admin, s.revokeKey, op{
		Summary: "Revoke an API key", Status: http.StatusNoContent})
}

func (s *Server) createKey(c echo.Context) error {
	var req keyRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	secret, k, err := s.db.CreateKey(c.Request().Context(), actor(c), req.Name, req.Role)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, createdKey{APIKey: *k, Secret: secret})
}

func (s *Server) listKeys(c echo.Context) error {
	ks, err := s.db.ListKeys(c.Request().Context())
	if err != nil {
		return err
	}
	if ks == nil {
		ks = []*experiment.APIKey{}
	}
	return c.JSON(http.StatusOK, keyList{ks})
}

func (s *Server) revokeKey(c echo.Context) error {
	if err := s.db.RevokeKey(c.Request().Context(), actor(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
