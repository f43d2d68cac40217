package api

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// experimentRequest is the body of POST /v1/experiments: the design of an
// experiment. Defaults: seed = key, coverage 1, hash_version 2, analysis.alpha 0.05.
type experimentRequest struct {
	Key         string                   `json:"key" required:"true" doc:"unique key: 1-128 letters, digits, '_', '.' or '-'"`
	Name        string                   `json:"name,omitempty"`
	Description string                   `json:"description,omitempty"`
	Variants    []experiment.Variant     `json:"variants" required:"true" doc:"at least 2; weights in [0, 1] summing to 1; the first is the control"`
	Coverage    *float64                 `json:"coverage,omitempty" doc:"share of eligible units included, in [0, 1]; default 1"`
	HashVersion int                      `json:"hash_version,omitempty" doc:"1 or 2 (GrowthBook-compatible hashing); default 2"`
	Seed        string                   `json:"seed,omitempty" doc:"hash seed; default the key"`
	Layer       string                   `json:"layer,omitempty" doc:"mutual-exclusion layer (must exist)"`
	LayerRange  *experiment.Range        `json:"layer_range,omitempty" doc:"this experiment's slice [start, end) of the layer; required with layer"`
	Holdout     string                   `json:"holdout,omitempty" doc:"permanent holdout whose units are kept out (must exist)"`
	Metrics     []experiment.MetricRef   `json:"metrics,omitempty" doc:"registered metrics, not deprecated; with a template: replaces the template's metrics"`
	Guardrails  []string                 `json:"guardrails,omitempty" doc:"metrics watched for harm, added after metrics; with a template: replaces the template's guardrails"`
	Analysis    *experiment.AnalysisPlan `json:"analysis,omitempty" doc:"the analysis plan; with a template: replaces the template's plan whole"`
	Allocation  *experiment.Allocation   `json:"allocation,omitempty" doc:"absent: fixed weights; {kind: bandit, reward, reward_kind, period, min_share, burn_in, top_two, beta}: adaptive (docs/bandits.md)"`
	Template    string                   `json:"template,omitempty" doc:"an experiment template (POST /v1/templates) to take metrics, guardrails and the analysis plan from; the fields given here override it"`
}

func (r *experimentRequest) experiment() *experiment.Experiment {
	return &experiment.Experiment{
		Key: r.Key, Name: r.Name, Description: r.Description, Variants: r.Variants,
		Coverage: r.Coverage, HashVersion: r.HashVersion, Seed: r.Seed, Layer: r.Layer,
		LayerRange: r.LayerRange, Holdout: r.Holdout, Allocation: r.Allocation,
	}
}

// given are the fields of the request that override its template's (all of
// them, without a template).
func (r *experimentRequest) given() experiment.TemplateFields {
	var f experiment.TemplateFields
	if r.Metrics != nil {
		f.Metrics = &r.Metrics
	}
	if r.Guardrails != nil {
		f.Guardrails = &r.Guardrails
	}
	f.Analysis = r.Analysis
	return f
}

// experimentPatch is the body of PATCH /v1/experiments/KEY: the fields to change.
// Drafts may change any of them; running and stopped experiments only name and
// description (pre-registration).
type experimentPatch struct {
	Name        *string                  `json:"name,omitempty"`
	Description *string                  `json:"description,omitempty"`
	Variants    *[]experiment.Variant    `json:"variants,omitempty"`
	Coverage    *float64                 `json:"coverage,omitempty"`
	HashVersion *int                     `json:"hash_version,omitempty"`
	Seed        *string                  `json:"seed,omitempty"`
	Layer       *string                  `json:"layer,omitempty"`
	LayerRange  *experiment.Range        `json:"layer_range,omitempty"`
	Holdout     *string                  `json:"holdout,omitempty"`
	Metrics     *[]experiment.MetricRef  `json:"metrics,omitempty"`
	Analysis    *experiment.AnalysisPlan `json:"analysis,omitempty"`
	Allocation  *experiment.Allocation   `json:"allocation,omitempty"`
}

func (p *experimentPatch) apply(e *experiment.Experiment) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&e.Name, p.Name)
	set(&e.Description, p.Description)
	set(&e.Seed, p.Seed)
	set(&e.Layer, p.Layer)
	set(&e.Holdout, p.Holdout)
	if p.Variants != nil {
		e.Variants = *p.Variants
	}
	if p.Coverage != nil {
		c := *p.Coverage
		e.Coverage = &c
	}
	if p.HashVersion != nil {
		e.HashVersion = *p.HashVersion
	}
	if p.Allocation != nil {
		a := *p.Allocation
		e.Allocation = &a
	}
	if p.LayerRange != nil {
		r := *p.LayerRange
		e.LayerRange = &r
	}
	if p.Layer != nil && *p.Layer == "" {
		e.LayerRange = nil // leaving the layer drops the slice
	}
	// The primary metric has one record, analysis.primary_metric, which the stored
	// metrics' flags mirror (experiment.ApplyDefaults). A body that sets only one of
	// the two says which metric is primary now; one that sets both must agree.
	old := e.Analysis.PrimaryMetric
	if p.Metrics != nil {
		e.Metrics = *p.Metrics
		if p.Analysis == nil {
			e.Analysis.PrimaryMetric = ""
			flagged := false
			for _, m := range e.Metrics {
				flagged = flagged || m.Primary
			}
			for i, m := range e.Metrics {
				if !flagged && m.Name == old { // unmarked lists keep a primary they still hold
					e.Metrics[i].Primary = true
				}
			}
		}
	}
	if p.Analysis != nil {
		e.Analysis = *p.Analysis
		if p.Metrics == nil && e.Analysis.PrimaryMetric != "" {
			ms := make([]experiment.MetricRef, len(e.Metrics))
			for i, m := range e.Metrics {
				ms[i] = experiment.MetricRef{Name: m.Name} // the plan's choice replaces the old flag
			}
			e.Metrics = ms
		}
	}
}

type experimentList struct {
	Experiments []*experiment.Experiment `json:"experiments"`
}

type layerRequest struct {
	Name        string `json:"name" required:"true"`
	Description string `json:"description,omitempty"`
}

type layerList struct {
	Layers []*experiment.Layer `json:"layers"`
}

type holdoutRequest struct {
	Name           string              `json:"name" required:"true"`
	Description    string              `json:"description,omitempty"`
	Fraction       float64             `json:"fraction" required:"true" doc:"share of all units held out, in (0, 1), e.g. 0.05"`
	RotationPeriod experiment.Duration `json:"rotation_period,omitempty" doc:"rotate automatically after this period, e.g. \"90d\"; absent: by hand only"`
}

type holdoutList struct {
	Holdouts []*experiment.Holdout `json:"holdouts"`
}

type auditList struct {
	Entries []experiment.AuditEntry `json:"entries"`
}

// registryRoutes are experiments, layers, holdouts and the audit log. Admins
// change, analysts (and admins) read.
func (s *Server) registryRoutes() {
	const admin, analyst = experiment.RoleAdmin, experiment.RoleAnalyst
	s.route(http.MethodPost, "/v1/experiments", admin, s.createExperiment, op{
		Summary: "Register an experiment (as a draft)", Request: experimentRequest{}, Response: experiment.Experiment{}, Status: http.StatusCreated,
		Description: "Validates the design (weights sum to 1, no negative weight, unique variant names, coverage in [0, 1], known layer and holdout, a layer slice disjoint from the layer's other live experiments). Nothing is stored on error."})
	s.route(http.MethodGet, "/v1/experiments", analyst, s.listExperiments, op{
		Summary: "List experiments", Response: experimentList{}})
	s.route(http.MethodGet, "/v1/experiments/:key", analyst, s.getExperiment, op{
		Summary: "Get an experiment", Response: experiment.Experiment{}})
	s.route(http.MethodPatch, "/v1/experiments/:key", admin, s.updateExperiment, op{
		Summary: "Change an experiment", Request: experimentPatch{}, Response: experiment.Experiment{},
		Description: "Drafts may change every field but the key. Once started the design is pre-registered: only name and description may change; other changes are 409."})
	s.route(http.MethodPost, "/v1/experiments/:key/start", admin, s.startExperiment, op{
		Summary: "Start a draft experiment (locks its design)", Request: startRequest{}, OptionalBody: true, Response: experiment.Experiment{},
		Description: "The body is optional. started_at, a time in the past, starts a backfill: exposures are accepted from that time on " +
			"(POST /v1/exposures refuses those stamped more than a minute before an experiment's start)."})
	s.route(http.MethodPost, "/v1/experiments/:key/stop", admin, s.stopExperiment, op{
		Summary: "Stop a running experiment", Response: experiment.Experiment{}})

	s.route(http.MethodPost, "/v1/layers", admin, s.createLayer, op{
		Summary: "Create a mutual-exclusion layer", Request: layerRequest{}, Response: experiment.Layer{}, Status: http.StatusCreated})
	s.route(http.MethodGet, "/v1/layers", analyst, s.listLayers, op{Summary: "List layers", Response: layerList{}})
	s.route(http.MethodGet, "/v1/layers/:name", analyst, s.getLayer, op{Summary: "Get a layer", Response: experiment.Layer{}})

	s.route(http.MethodPost, "/v1/holdouts", admin, s.createHoldout, op{
		Summary: "Create a permanent holdout (version 1)", Request: holdoutRequest{}, Response: experiment.Holdout{}, Status: http.StatusCreated})
	s.route(http.MethodGet, "/v1/holdouts", analyst, s.listHoldouts, op{Summary: "List holdouts", Response: holdoutList{}})
	s.route(http.MethodGet, "/v1/holdouts/:name", analyst, s.getHoldout, op{Summary: "Get a holdout with its versions", Response: experiment.Holdout{}})
	s.route(http.MethodPost, "/v1/holdouts/:name/rotate", admin, s.rotateHoldout, op{
		Summary: "Rotate a holdout: start version N+1 with a new salt", Response: experiment.Holdout{},
		Description: "Earlier cohorts stay analyzable: every exposure records the holdout version it was made under."})

	s.route(http.MethodGet, "/v1/audit", analyst, s.audit, op{
		Summary: "Read the audit log, newest first", Response: auditList{},
		Query: []param{
			{Name: "entity", Description: `"experiment", "layer", "holdout", "key"; absent: all`},
			{Name: "key", Description: "the entity's key or name; absent: all"},
			{Name: "limit", Type: "integer", Description: "most entries, default 100, at most 10000"},
		}})
}

func (s *Server) createExperiment(c echo.Context) error {
	var req experimentRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	if err := s.metricsExist(c.Request().Context(), req.Metrics, "metrics"); err != nil {
		return err
	}
	gs := make([]experiment.MetricRef, len(req.Guardrails))
	for i, g := range req.Guardrails {
		gs[i] = experiment.MetricRef{Name: g}
	}
	if err := s.metricsExist(c.Request().Context(), gs, "guardrails"); err != nil {
		return err
	}
	e, err := s.db.CreateExperimentFrom(c.Request().Context(), actor(c), req.experiment(), req.Template, req.given())
	if err != nil {
		return err
	}
	s.plans.invalidate(e.Key)
	return c.JSON(http.StatusCreated, e)
}

// metricsExist refuses metrics that are not defined: their results would fail
// at every query. A metric in use cannot be deleted, so the check holds.
// field names the list (metrics, guardrails).
func (s *Server) metricsExist(ctx context.Context, ms []experiment.MetricRef, field string) error {
	for i, m := range ms {
		if m.Name == "" {
			continue // experiment.Validate names it
		}
		if _, err := s.db.GetMetric(ctx, m.Name); experiment.Is(err, experiment.NotFound) {
			return experiment.E("api.experiment", experiment.Invalid, experiment.Field(field+"["+strconv.Itoa(i)+"]"),
				experiment.Errorf("unknown metric %q: define it first (POST /v1/metrics)", m.Name))
		} else if err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) listExperiments(c echo.Context) error {
	es, err := s.db.ListExperiments(c.Request().Context())
	if err != nil {
		return err
	}
	if es == nil {
		es = []*experiment.Experiment{}
	}
	return c.JSON(http.StatusOK, experimentList{es})
}

func (s *Server) getExperiment(c echo.Context) error {
	e, err := s.db.GetExperiment(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) updateExperiment(c echo.Context) error {
	var p experimentPatch
	if err := s.decode(c, &p); err != nil {
		return err
	}
	ctx := c.Request().Context()
	e, err := s.db.GetExperiment(ctx, c.Param("key"))
	if err != nil {
		return err
	}
	if p.Metrics != nil {
		if err := s.metricsExist(ctx, *p.Metrics, "metrics"); err != nil {
			return err
		}
	}
	p.apply(e)
	e, err = s.db.UpdateExperiment(ctx, actor(c), e)
	if err != nil {
		return err
	}
	s.plans.invalidate(e.Key)
	return c.JSON(http.StatusOK, e)
}

// startRequest is the optional body of POST /v1/experiments/KEY/start.
type startRequest struct {
	StartedAt string `json:"started_at,omitempty" doc:"RFC 3339 time the experiment started, for a backfill of past data: not after the server's clock; absent: now"`
}

func (s *Server) startExperiment(c echo.Context) error {
	b, err := s.readBody(c)
	if err != nil {
		return err
	}
	var req startRequest
	if len(bytes.TrimSpace(b)) > 0 {
		if err := decodeJSON(b, &req); err != nil {
			return err
		}
	}
	var at time.Time
	if req.StartedAt != "" {
		if at, err = time.Parse(time.RFC3339Nano, req.StartedAt); err != nil {
			return experiment.E("api.startExperiment", experiment.Invalid, experiment.Field("started_at"),
				experiment.Errorf("must be an RFC 3339 time (2026-03-01T10:00:00Z), got %q", req.StartedAt))
		}
	}
	e, err := s.db.StartExperimentAt(c.Request().Context(), actor(c), c.Param("key"), at)
	if err != nil {
		return err
	}
	s.plans.invalidate(e.Key)
	return c.JSON(http.StatusOK, e)
}

func (s *Server) stopExperiment(c echo.Context) error {
	e, err := s.db.StopExperiment(c.Request().Context(), actor(c), c.Param("key"))
	if err != nil {
		return err
	}
	s.plans.invalidate(e.Key)
	return c.JSON(http.StatusOK, e)
}

func (s *Server) createLayer(c echo.Context) error {
	var req layerRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	l, err := s.db.CreateLayer(c.Request().Context(), actor(c), &experiment.Layer{Name: req.Name, Description: req.Description})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, l)
}

func (s *Server) listLayers(c echo.Context) error {
	ls, err := s.db.ListLayers(c.Request().Context())
	if err != nil {
		return err
	}
	if ls == nil {
		ls = []*experiment.Layer{}
	}
	return c.JSON(http.StatusOK, layerList{ls})
}

func (s *Server) getLayer(c echo.Context) error {
	l, err := s.db.GetLayer(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, l)
}

func (s *Server) createHoldout(c echo.Context) error {
	var req holdoutRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	h, err := s.db.CreateHoldout(c.Request().Context(), actor(c), &experiment.Holdout{
		Name: req.Name, Description: req.Description, Fraction: req.Fraction, RotationPeriod: req.RotationPeriod})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, h)
}

func (s *Server) listHoldouts(c echo.Context) error {
	hs, err := s.db.ListHoldouts(c.Request().Context())
	if err != nil {
		return err
	}
	if hs == nil {
		hs = []*experiment.Holdout{}
	}
	return c.JSON(http.StatusOK, holdoutList{hs})
}

func (s *Server) getHoldout(c echo.Context) error {
	h, err := s.db.GetHoldout(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h)
}

func (s *Server) rotateHoldout(c echo.Context) error {
	h, err := s.db.RotateHoldout(c.Request().Context(), actor(c), c.Param("name"))
	if err != nil {
		return err
	}
	s.plans.invalidateAll() // every experiment naming the holdout now hashes with the new salt
	return c.JSON(http.StatusOK, h)
}

func (s *Server) audit(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10_000 {
			return experiment.E("api.audit", experiment.Invalid, experiment.Field("limit"), experiment.Errorf("must be a whole number in [1, 10000], got %q", v))
		}
		limit = n
	}
	es, err := s.db.Audit(c.Request().Context(), c.QueryParam("entity"), c.QueryParam("key"), limit)
	if err != nil {
		return err
	}
	if es == nil {
		es = []experiment.AuditEntry{}
	}
	return c.JSON(http.StatusOK, auditList{es})
}
