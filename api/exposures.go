package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// exposureIn is one exposure sent by a client that assigns locally with a
// compatible SDK.
type exposureIn struct {
	Experiment     string    `json:"experiment" required:"true"`
	Unit           string    `json:"unit" required:"true"`
	Variant        string    `json:"variant" doc:"the variant shown; empty (or absent) for a unit in the holdout"`
	TS             time.Time `json:"ts" doc:"RFC 3339 time of the exposure, not before the experiment started (1 minute of clock skew allowed); absent: the time the server received it"`
	InHoldout      bool      `json:"in_holdout,omitempty" doc:"the unit is in the experiment's holdout (variant empty)"`
	HoldoutVersion int       `json:"holdout_version,omitempty" doc:"the holdout version the unit was held out under; absent: the current one"`
}

type exposureBatch struct {
	Exposures []exposureIn `json:"exposures" required:"true"`
}

type exposureAccepted struct {
	Accepted int `json:"accepted" doc:"exposures committed to the database"`
}

// exposureClockSkew is how far before its experiment's start an exposure's
// timestamp may lie: the clocks of the clients that send them differ a little.
// Past data (a backfill) needs the experiment started at the time it began
// (POST /v1/experiments/KEY/start with started_at).
const exposureClockSkew = time.Minute

// exposureRoutes log exposures sent by clients; ingest keys (and admins).
func (s *Server) exposureRoutes() {
	s.route(http.MethodPost, "/v1/exposures", experiment.RoleIngest, s.postExposures, op{
		Summary: "Log a batch of exposures", Request: exposureBatch{}, Response: exposureAccepted{},
		Description: "The answer comes after the rows are committed: an acknowledged exposure is never lost. " +
			"A batch is all or nothing: a bad row is 400 naming exposures[i].field and nothing is stored. " +
			"Experiments must exist and not be drafts; variants must be the experiment's; an exposure may not precede its experiment's start " +
			"by more than a minute (to load past data, start the experiment with started_at)."})
}

func (s *Server) postExposures(c echo.Context) error {
	const op = "api.exposures"
	b, err := s.readBody(c)
	if err != nil {
		return err
	}
	var batch exposureBatch
	if !decodeExposuresFast(b, &batch.Exposures) {
		batch.Exposures = batch.Exposures[:0]
		if err := decodeJSON(b, &batch); err != nil {
			return err
		}
	}
	in := batch.Exposures
	if len(in) > s.opt.MaxExposureBatch {
		return experiment.E(op, experiment.TooLarge, experiment.Field("exposures"),
			experiment.Errorf("%d exposures in one request; the limit is %d: split the batch", len(in), s.opt.MaxExposureBatch))
	}
	if len(in) == 0 {
		return c.JSON(http.StatusOK, exposureAccepted{Accepted: 0})
	}
	ctx := c.Request().Context()
	now := s.opt.Now()
	xs := make([]experiment.Exposure, len(in))
	var last *compiled
	for i := range in {
		x := &in[i]
		field := func(name string) experiment.Field {
			return experiment.Field("exposures[" + strconv.Itoa(i) + "]." + name)
		}
		bad := func(name, format string, args ...any) error {
			return experiment.E(op, experiment.Invalid, field(name), experiment.Errorf(format, args...))
		}
		if x.Experiment == "" {
			return bad("experiment", "must not be empty")
		}
		if x.Unit == "" {
			return bad("unit", "must not be empty")
		}
		if last == nil || last.exp.Key != x.Experiment {
			cp, err := s.plans.get(ctx, x.Experiment)
			if experiment.Is(err, experiment.NotFound) {
				return bad("experiment", "unknown experiment %q", x.Experiment)
			} else if err != nil {
				return err
			}
			if cp.exp.Status == experiment.Draft {
				return experiment.E(op, experiment.Conflict, field("experiment"),
					experiment.Errorf("experiment %q is not started (draft): exposures are accepted once it runs", x.Experiment))
			}
			last = cp
		}
		hv := 0
		switch {
		case x.InHoldout:
			if x.Variant != "" {
				return bad("variant", "must be empty for a unit in the holdout, got %q", x.Variant)
			}
			if last.exp.Holdout == "" {
				return bad("in_holdout", "experiment %q has no holdout", x.Experiment)
			}
			// 0 (absent) lets the store record the holdout's current version.
			hv = x.HoldoutVersion
			if hv < 0 || hv > last.holdout {
				return bad("holdout_version", "must be in [1, %d], got %d", last.holdout, hv)
			}
		case x.Variant == "":
			return bad("variant", "must not be empty (or set in_holdout for a held-out unit)")
		case !last.variants[x.Variant]:
			return bad("variant", "experiment %q has no variant %q", x.Experiment, x.Variant)
		case x.HoldoutVersion != 0:
			return bad("holdout_version", "only for units in the holdout (in_holdout true)")
		}
		ts := x.TS
		if ts.IsZero() {
			ts = now
		}
		if st := last.exp.StartedAt; st != nil && ts.Before(st.Add(-exposureClockSkew)) {
			return bad("ts", "%s is before experiment %q started (%s): no unit can have been exposed to it then; "+
				"to load past data, start the experiment at the time it began (started_at)",
				ts.UTC().Format(time.RFC3339), x.Experiment, st.UTC().Format(time.RFC3339))
		}
		xs[i] = experiment.Exposure{Experiment: x.Experiment, Unit: x.Unit, Variant: x.Variant, TS: ts,
			InHoldout: x.InHoldout, HoldoutVersion: hv, Source: "client"}
	}
	if err := s.db.LogExposures(ctx, xs); err != nil {
		return err
	}
	s.metrics.exposures.WithLabelValues("client").Add(float64(len(xs)))
	return c.JSON(http.StatusOK, exposureAccepted{Accepted: len(xs)})
}
