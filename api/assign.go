package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// assignBatchRequest is the body of POST /v1/assign.
type assignBatchRequest struct {
	Experiment string   `json:"experiment" required:"true"`
	Units      []string `json:"units" required:"true" doc:"unit ids, at most 10,000 per request; none may be empty"`
	Expose     bool     `json:"expose,omitempty" doc:"also log an exposure for every unit in the experiment or its holdout"`
}

// assignBatchResponse is the answer of POST /v1/assign (written by appendBatch).
type assignBatchResponse struct {
	Experiment  string                  `json:"experiment"`
	Exposed     int                     `json:"exposed" doc:"exposures logged (committed) by this request"`
	Assignments []experiment.Assignment `json:"assignments" doc:"one per unit, in the order of units"`
}

// assignRoutes answer "which variant does this unit get". Services call them
// with an ingest key (they also log exposures); analysts and admins may call
// them too, to audit assignments.
func (s *Server) assignRoutes() {
	also := []experiment.Role{experiment.RoleIngest}
	s.route(http.MethodGet, "/v1/assign", experiment.RoleAnalyst, s.assignOne, op{
		Summary: "Assign one unit", Also: also, Response: experiment.Assignment{},
		Description: "Running experiments only: a draft is 409. A stopped experiment answers every unit with variant null (serve the control experience) and logs nothing. " +
			"With expose=true the exposure is committed before the answer (units outside the experiment and its holdout are not logged); expose=true needs an ingest (or admin) key.",
		Query: []param{
			{Name: "experiment", Required: true, Description: "the experiment's key"},
			{Name: "unit", Required: true, Description: "the unit id (user, device, account…)"},
			{Name: "expose", Type: "boolean", Description: "log the exposure too (default false)"},
		}})
	s.route(http.MethodPost, "/v1/assign", experiment.RoleAnalyst, s.assignBatch, op{
		Summary: "Assign a batch of units (at most 10,000)", Also: also, Request: assignBatchRequest{}, Response: assignBatchResponse{},
		Description: "Same rules as GET /v1/assign. More than 10,000 units is 413."})
}

// mayExpose checks that the key may write exposures: expose=true needs a key
// allowing role ingest (an ingest or admin key), not just one that may assign.
func mayExpose(c echo.Context) error {
	if k := keyOf(c); k != nil && !k.Role.Allows(experiment.RoleIngest) {
		return experiment.E("api.assign", experiment.Forbidden, experiment.Field("expose"),
			experiment.Errorf("expose=true writes exposures: API key %q has role %q, it needs role ingest", k.Name, k.Role))
	}
	return nil
}

// assignable returns the compiled experiment when it may be assigned: a draft is
// a Conflict; stopped reports true in the second result.
func (s *Server) assignable(ctx context.Context, key string) (*compiled, bool, error) {
	const op = "api.assign"
	if key == "" {
		return nil, false, experiment.E(op, experiment.Invalid, experiment.Field("experiment"), experiment.Errorf("must not be empty"))
	}
	c, err := s.plans.get(ctx, key)
	if err != nil {
		return nil, false, err
	}
	switch c.exp.Status {
	case experiment.Draft:
		return nil, false, experiment.E(op, experiment.Conflict, experiment.Field("experiment"),
			experiment.Errorf("experiment %q is not started (draft): start it with POST /v1/experiments/%s/start before assigning", key, key))
	case experiment.Stopped:
		return c, true, nil
	}
	return c, false, nil
}

// stoppedAnswer turns an assignment of a stopped experiment into "not in the
// experiment": everyone gets the control experience.
func stoppedAnswer(a *experiment.Assignment) {
	a.Variant, a.VariantIndex, a.InExperiment = nil, -1, false
}

// exposureOf returns the exposure of an assignment and whether there is one:
// units in the experiment, and units in its holdout (variant empty).
func exposureOf(a *experiment.Assignment, ts time.Time) (experiment.Exposure, bool) {
	switch {
	case a.InExperiment:
		return experiment.Exposure{Experiment: a.Experiment, Unit: a.Unit, Variant: *a.Variant, TS: ts, Source: "assign"}, true
	case a.Holdout != nil && a.Holdout.InHoldout:
		return experiment.Exposure{Experiment: a.Experiment, Unit: a.Unit, TS: ts, InHoldout: true, HoldoutVersion: a.Holdout.Version, Source: "assign"}, true
	}
	return experiment.Exposure{}, false
}

func (s *Server) assignOne(c echo.Context) error {
	const op = "api.assign"
	expose := false
	if v := c.QueryParam("expose"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return experiment.E(op, experiment.Invalid, experiment.Field("expose"), experiment.Errorf("must be true or false, got %q", v))
		}
		expose = b
	}
	if expose {
		if err := mayExpose(c); err != nil {
			return err
		}
	}
	unit := c.QueryParam("unit")
	if unit == "" {
		return experiment.E(op, experiment.Invalid, experiment.Field("unit"), experiment.Errorf("must not be empty"))
	}
	ctx := c.Request().Context()
	cp, stopped, err := s.assignable(ctx, c.QueryParam("experiment"))
	if err != nil {
		return err
	}
	var a experiment.Assignment
	if err := cp.plan.AssignTo(&a, unit); err != nil {
		return err
	}
	if stopped {
		stoppedAnswer(&a)
	} else if cp.exp.IsBandit() {
		one := []experiment.Assignment{a}
		if err := s.banditAssign(ctx, cp.exp, one); err != nil {
			return err
		}
		a = one[0]
	}
	s.metrics.assignments.WithLabelValues(cp.exp.Key).Inc()
	if expose && !stopped {
		if x, ok := exposureOf(&a, s.opt.Now()); ok {
			if err := s.db.LogExposures(ctx, []experiment.Exposure{x}); err != nil {
				return err
			}
			s.metrics.exposures.WithLabelValues("assign").Inc()
		}
	}
	buf := s.bufs.get()
	defer s.bufs.put(buf)
	*buf = appendAssignment((*buf)[:0], &a)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, *buf)
}

func (s *Server) assignBatch(c echo.Context) error {
	const op = "api.assign"
	b, err := s.readBody(c)
	if err != nil {
		return err
	}
	var req assignBatchRequest
	if !decodeAssignFast(b, &req) {
		req = assignBatchRequest{}
		if err := decodeJSON(b, &req); err != nil {
			return err
		}
	}
	if req.Expose {
		if err := mayExpose(c); err != nil {
			return err
		}
	}
	if n := len(req.Units); n > s.opt.MaxAssignBatch {
		return experiment.E(op, experiment.TooLarge, experiment.Field("units"),
			experiment.Errorf("%d units in one request; the limit is %d: split the batch", n, s.opt.MaxAssignBatch))
	}
	if len(req.Units) == 0 {
		return experiment.E(op, experiment.Invalid, experiment.Field("units"), experiment.Errorf("must list at least one unit"))
	}
	for i, u := range req.Units {
		if u == "" {
			return experiment.E(op, experiment.Invalid, experiment.Field("units["+strconv.Itoa(i)+"]"), experiment.Errorf("must not be empty"))
		}
		if p := experiment.IdentProblem(u); p != "" {
			return experiment.E(op, experiment.Invalid, experiment.Field("units["+strconv.Itoa(i)+"]"), experiment.Errorf("%s", p))
		}
	}
	ctx := c.Request().Context()
	cp, stopped, err := s.assignable(ctx, req.Experiment)
	if err != nil {
		return err
	}
	as := make([]experiment.Assignment, len(req.Units))
	for i, u := range req.Units {
		_ = cp.plan.AssignTo(&as[i], u) // units were checked non-empty above
		if stopped {
			stoppedAnswer(&as[i])
		}
	}
	if !stopped && cp.exp.IsBandit() {
		if err := s.banditAssign(ctx, cp.exp, as); err != nil {
			return err
		}
	}
	s.metrics.assignments.WithLabelValues(cp.exp.Key).Add(float64(len(as)))
	exposed := 0
	if req.Expose && !stopped {
		ts := s.opt.Now()
		xs := make([]experiment.Exposure, 0, len(as))
		for i := range as {
			if x, ok := exposureOf(&as[i], ts); ok {
				xs = append(xs, x)
			}
		}
		if len(xs) > 0 {
			if err := s.db.LogExposures(ctx, xs); err != nil {
				return err
			}
			s.metrics.exposures.WithLabelValues("assign").Add(float64(len(xs)))
		}
		exposed = len(xs)
	}
	buf := s.bufs.get()
	defer s.bufs.put(buf)
	*buf = appendBatch((*buf)[:0], cp.exp.Key, exposed, as)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, *buf)
}

// bufferPool recycles response buffers of the assignment routes.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (bp *bufferPool) put(b *[]byte) {
	if cap(*b) <= 4<<20 {
		*b = (*b)[:0]
		bp.p.Put(b)
	}
}
