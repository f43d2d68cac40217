package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis/synth"
	"github.com/liftlab/lift/experiment"
)

// MaxGeoRows is the most panel rows one POST /v1/analyses/geo may carry.
const MaxGeoRows = 500_000

type geoRowIn struct {
	Unit   string   `json:"unit" required:"true" doc:"the market (or state, store, ...)"`
	Period string   `json:"period" required:"true" doc:"the period, as text: numbers are ordered as numbers, other labels as text (ISO dates)"`
	Value  *float64 `json:"value" required:"true" doc:"the outcome"`
}

type geoRequest struct {
	Rows      []geoRowIn `json:"rows" required:"true" doc:"the panel in long form: one row per unit and period, every unit in every period"`
	Treated   []string   `json:"treated" required:"true" doc:"the test markets; every other unit is a donor"`
	Start     string     `json:"start" required:"true" doc:"the first treated period (a period label, or a value compared with them)"`
	Method    string     `json:"method,omitempty" doc:"scm (default) or augmented (ridge-augmented)"`
	Intercept bool       `json:"intercept,omitempty" doc:"remove each unit's pre-period mean before weighting"`
	Lambda    float64    `json:"lambda,omitempty" doc:"ridge penalty of augmented; 0 (default) cross-validates it"`
	Alpha     float64    `json:"alpha,omitempty" doc:"1 − confidence level, default 0.05"`
	Conformal *bool      `json:"conformal,omitempty" doc:"conformal inference, default true"`
	Placebo   *bool      `json:"placebo,omitempty" doc:"in-space placebo test, default true"`
	PerMarket *bool      `json:"per_market,omitempty" doc:"with several test markets, also fit each one, default true"`
}

// geoResult is the answer of POST /v1/analyses/geo: the report of "lift geo"
// (the same pipeline: synth.FromLong, synth.Run) and the panel's size.
type geoResult struct {
	*synth.Report
	NUnits   int `json:"n_units"`
	NPeriods int `json:"n_periods"`
}

func (s *Server) geoRoutes() {
	s.route(http.MethodPost, "/v1/analyses/geo", experiment.RoleAnalyst, s.postGeo, op{
		Summary: "Synthetic control of test markets over an uploaded panel", Request: geoRequest{}, Response: geoResult{},
		Description: "Fits the synthetic control (Abadie, Diamond & Hainmueller 2010; method augmented: Ben-Michael, " +
			"Feller & Rothstein 2021) of the average of the treated units from the others over the periods before start, " +
			"and reports the weights, the effect path, the average effect and lift, conformal inference (Chernozhukov, " +
			"Wüthrich & Zhu 2021) and the in-space placebo test with their p-values and intervals, and the fit " +
			"diagnostics; with several test markets also one fit per market. The same pipeline as \"lift geo\" " +
			"(docs/geo.md). A bad row is 400 naming rows[i]; at most 500,000 rows."})
}

func (s *Server) postGeo(c echo.Context) error {
	const op = "api.geo"
	var req geoRequest
	if err := s.decode(c, &req); err != nil {
		return err
	}
	invalid := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	switch {
	case len(req.Rows) == 0:
		return invalid("rows", "is required: the panel, one row per unit and period")
	case len(req.Rows) > MaxGeoRows:
		return experiment.E(op, experiment.TooLarge, experiment.Field("rows"), experiment.Errorf("%d rows; the limit is %d", len(req.Rows), MaxGeoRows))
	case len(req.Treated) == 0:
		return invalid("treated", "is required: list the test markets")
	case req.Start == "":
		return invalid("start", "is required")
	case req.Alpha != 0 && !(req.Alpha > 0 && req.Alpha < 1):
		return invalid("alpha", "must be in (0, 1), got %g", req.Alpha)
	case !(req.Lambda >= 0):
		return invalid("lambda", "must be ≥ 0, got %g", req.Lambda)
	}
	method := synth.Method(req.Method)
	if req.Method == "" {
		method = synth.SCM
	}
	if method != synth.SCM && method != synth.Augmented {
		return invalid("method", "must be scm or augmented, got %q", req.Method)
	}
	units, periods, y := make([]string, len(req.Rows)), make([]string, len(req.Rows)), make([]float64, len(req.Rows))
	for i, r := range req.Rows {
		switch {
		case r.Unit == "":
			return invalid(fmt.Sprintf("rows[%d].unit", i), "is required")
		case r.Period == "":
			return invalid(fmt.Sprintf("rows[%d].period", i), "is required")
		case r.Value == nil:
			return invalid(fmt.Sprintf("rows[%d].value", i), "is required")
		}
		units[i], periods[i], y[i] = r.Unit, r.Period, *r.Value
	}
	p, err := synth.FromLong(units, periods, y)
	var re *synth.RowError
	switch {
	case errors.As(err, &re):
		return invalid(fmt.Sprintf("rows[%d]", re.Row), "%s", re.Msg)
	case err != nil:
		return invalid("rows", "%v", err)
	}
	on := func(b *bool) bool { return b == nil || *b }
	o := synth.Options{Method: method, Intercept: req.Intercept, Lambda: req.Lambda, Alpha: req.Alpha,
		Conformal: on(req.Conformal), Placebo: on(req.Placebo), PerMarket: on(req.PerMarket)}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	var bad int
	if o.Treated, bad, err = synth.UnitIndexes(p, req.Treated); err != nil {
		return invalid(fmt.Sprintf("treated[%d]", bad), "%v", err)
	}
	if o.Start, err = synth.StartIndex(p.Periods, req.Start); err != nil {
		return experiment.E(op, experiment.InsufficientData, experiment.Field("start"), err)
	}
	rep, err := synth.Run(p, o)
	switch {
	case errors.Is(err, synth.ErrInsufficient):
		return experiment.E(op, experiment.InsufficientData, experiment.Field("treated"), err)
	case err != nil:
		return experiment.E(op, experiment.InsufficientData, err)
	}
	return c.JSON(http.StatusOK, geoResult{Report: rep, NUnits: len(p.Units), NPeriods: len(p.Periods)})
}
