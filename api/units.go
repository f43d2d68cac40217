package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// consentRequest is the body of PUT /v1/units/ID/consent.
type consentRequest struct {
	Tier             int       `json:"tier" doc:"0 none, 1 functional (session items only), 2 personalization (also stored history), 3 enhanced (also attributes)"`
	Purposes         []string  `json:"purposes,omitempty" doc:"personalization, analytics, ads; tier 2 and 3 need personalization"`
	OptOutCategories []string  `json:"opt_out_categories,omitempty" doc:"item categories the unit opted out of"`
	Channels         []string  `json:"channels,omitempty" doc:"channels the consent covers"`
	PolicyID         string    `json:"policy_id" required:"true" doc:"the privacy policy agreed to"`
	PolicyVersion    string    `json:"policy_version" required:"true" doc:"its version"`
	GrantedAt        time.Time `json:"granted_at,omitempty" doc:"when the unit agreed (RFC 3339); default now"`
}

type consentHistory struct {
	Unit    string               `json:"unit"`
	History []experiment.Consent `json:"history" doc:"every version, oldest first; the last is in force"`
}

// unitRoutes: consent and the data-subject rights (export, erasure, reset).
func (s *Server) unitRoutes() {
	const admin, analyst, ingest = experiment.RoleAdmin, experiment.RoleAnalyst, experiment.RoleIngest
	s.route(http.MethodPut, "/v1/units/:unit/consent", ingest, s.putConsent, op{
		Summary: "Record a unit's consent (a new version; the history is kept)", Also: []experiment.Role{admin},
		Request: consentRequest{}, Response: store.ConsentChange{},
		Description: "Appends a version with its audit entry and, in the same transaction, purges what the new tier no " +
			"longer allows: below tier 3 the unit's attributes, below tier 2 the item of each of its events (the events " +
			"stay as experiment outcomes) and its trained vector is no longer used. The next decision uses the new tier."})
	s.route(http.MethodGet, "/v1/units/:unit/consent", analyst, s.getConsent, op{
		Summary: "A unit's consent history", Also: []experiment.Role{admin, ingest}, Response: consentHistory{}})
	s.route(http.MethodGet, "/v1/units/:unit/data", admin, s.exportUnit, op{
		Summary: "Everything Lift holds about a unit (data-subject access)", Response: store.UnitData{},
		Description: "Exposures, events, journey decisions, attributes and consent history, read in one transaction; " +
			"for an erased id, its erasure (pseudonym, time, and whether ClickHouse's part is pending or done)."})
	s.route(http.MethodDelete, "/v1/units/:unit", admin, s.eraseUnit, op{
		Summary: "Erase a unit (data-subject erasure)", Response: store.Erasure{},
		Description: "Deletes its events, attributes and consent history; replaces its id by a keyed pseudonym in its " +
			"exposures, decisions and audit entries, so that experiment counts and past results stay as they were. " +
			"Audited under the pseudonym; erasing again removes what arrived since and says already_erased. " +
			"Models trained before the erasure no longer use its vector. With rows forwarded to ClickHouse, clickhouse " +
			"is \"pending\" until the forwarder has deleted them there and stored the exposures under the pseudonym " +
			"(GET /v1/units/ID/data then says \"done\"). See docs/privacy.md#data-subject-rights."})
	s.route(http.MethodPost, "/v1/units/:unit/reset", ingest, s.resetUnit, op{
		Summary: "Reset a unit's personalization profile", Also: []experiment.Role{admin}, Response: store.ProfileReset{},
		OptionalBody: true,
		Description: "Removes the item of each of its events (its experiment history stays) and stops models trained " +
			"before now from using its vector; audited."})
}

// unitParam is the unit of the path, unescaped.
func unitParam(c echo.Context) (string, error) {
	u, err := url.PathUnescape(c.Param("unit"))
	if err != nil || u == "" {
		return "", experiment.E("api.units", experiment.Invalid, experiment.Field("unit"), experiment.Errorf("the unit in the path must be a non-empty, URL-escaped id"))
	}
	if p := experiment.IdentProblem(u); p != "" {
		return "", experiment.E("api.units", experiment.Invalid, experiment.Field("unit"), experiment.Errorf("%s", p))
	}
	return u, nil
}

func (s *Server) putConsent(c echo.Context) error {
	unit, err := unitParam(c)
	if err != nil {
		return err
	}
	var req consentRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	ch, err := s.db.RecordConsent(c.Request().Context(), actor(c), experiment.Consent{
		Unit: unit, Tier: req.Tier, Purposes: req.Purposes, OptOutCategories: req.OptOutCategories, Channels: req.Channels,
		PolicyID: req.PolicyID, PolicyVersion: req.PolicyVersion, GrantedAt: req.GrantedAt,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ch)
}

func (s *Server) getConsent(c echo.Context) error {
	unit, err := unitParam(c)
	if err != nil {
		return err
	}
	h, err := s.db.ConsentHistory(c.Request().Context(), unit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, consentHistory{Unit: unit, History: h})
}

func (s *Server) exportUnit(c echo.Context) error {
	unit, err := unitParam(c)
	if err != nil {
		return err
	}
	if s.opt.Journeys != nil { // decisions answered so far are part of the export
		if err := s.opt.Journeys.Flush(c.Request().Context()); err != nil {
			return err
		}
	}
	d, err := s.db.ExportUnit(c.Request().Context(), unit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) eraseUnit(c echo.Context) error {
	unit, err := unitParam(c)
	if err != nil {
		return err
	}
	e, err := s.erase(c.Request().Context(), actor(c), unit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

// erase erases unit (DELETE /v1/units/ID and the console's form), queued
// decisions included.
func (s *Server) erase(ctx context.Context, who, unit string) (*store.Erasure, error) {
	if s.opt.Journeys != nil { // queued decisions are erased too
		if err := s.opt.Journeys.Flush(ctx); err != nil {
			return nil, err
		}
	}
	return s.db.EraseUnit(ctx, who, unit)
}

func (s *Server) resetUnit(c echo.Context) error {
	unit, err := unitParam(c)
	if err != nil {
		return err
	}
	r, err := s.db.ResetProfile(c.Request().Context(), actor(c), unit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}
