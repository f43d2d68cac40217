package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/experiment"
)

// newExperimentForm is the admin's experiment form: the values typed and, by
// form field, the API's message for what is wrong.
type newExperimentForm struct {
	V        map[string]string
	Metrics  []string        // defined metrics
	Chosen   map[string]bool // metrics ticked
	Layers   []string
	Holdouts []string
	// Templates are the experiment templates; V["template"] is the one the
	// form was filled from (GET /experiments/new?template=NAME).
	Templates []string
	Errors    map[string]string // form field → message
	Problem   string            // a message that names no field of the form
}

func (s *Server) newExperimentData(c echo.Context) (*newExperimentForm, error) {
	ctx := c.Request().Context()
	f := &newExperimentForm{V: map[string]string{}, Chosen: map[string]bool{}, Errors: map[string]string{}}
	ms, err := s.db.ListMetrics(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		f.Metrics = append(f.Metrics, m.Name)
	}
	ls, err := s.db.ListLayers(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		f.Layers = append(f.Layers, l.Name)
	}
	hs, err := s.db.ListHoldouts(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		f.Holdouts = append(f.Holdouts, h.Name)
	}
	if f.Templates, err = s.templateNames(c); err != nil {
		return nil, err
	}
	return f, nil
}

func (s *Server) consoleNewExperiment(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	if !k.Role.Allows(experiment.RoleAdmin) {
		return experiment.E("api.console", experiment.Forbidden, experiment.Errorf("API key %q has role %q; creating an experiment needs role admin", k.Name, k.Role))
	}
	f, err := s.newExperimentData(c)
	if err != nil {
		return err
	}
	f.V["variants"], f.V["alpha"], f.V["correction"] = "control=0.5, treatment=0.5", "0.05", "holm"
	status := http.StatusOK
	if t := strings.TrimSpace(c.QueryParam("template")); t != "" {
		if err := s.fillFromTemplate(c, f, t); err != nil {
			return err
		}
		if len(f.Errors) > 0 {
			status = http.StatusBadRequest
		}
	}
	return s.render(c, status, "new.html", page2(k, se, "New experiment", "experiments", f))
}

// formFields maps the API's field paths to the form's fields.
var formFields = map[string]string{
	"key": "key", "name": "name", "description": "description", "variants": "variants", "metrics": "metrics",
	"layer": "layer", "layer_range": "layer_range", "holdout": "holdout",
	"analysis.alpha": "alpha", "analysis.correction": "correction", "analysis.mde": "mde", "analysis.primary_metric": "metrics",
	"analysis.sequential_tuning": "sequential", "template": "template", "guardrails": "metrics",
}

// formField is the form field of an API error's field path ("variants[1].weight" → variants).
func formField(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		var x *experiment.Error
		if !errors.As(e, &x) {
			return ""
		}
		if x.Field != "" {
			p := x.Field
			if i := strings.IndexAny(p, "[."); i > 0 && !strings.HasPrefix(p, "analysis.") {
				p = p[:i]
			}
			return formFields[p]
		}
		e = x
	}
	return ""
}

func (s *Server) consoleCreateExperiment(c echo.Context, k *experiment.APIKey, se *consoleSession) error {
	const op = "api.console.create"
	if !k.Role.Allows(experiment.RoleAdmin) {
		return experiment.E(op, experiment.Forbidden, experiment.Errorf("API key %q has role %q; creating an experiment needs role admin", k.Name, k.Role))
	}
	if !tokensEqual(se.csrf, c.FormValue("csrf")) || !sameOrigin(c) {
		return experiment.E(op, experiment.Forbidden, experiment.Field("csrf"), experiment.Errorf("the form's token does not match this session; reload the page"))
	}
	f, err := s.newExperimentData(c)
	if err != nil {
		return err
	}
	for _, n := range []string{"key", "name", "description", "variants", "primary", "layer", "layer_start", "layer_end", "holdout", "alpha", "correction", "mde", "sequential", "start", "template"} {
		f.V[n] = strings.TrimSpace(c.FormValue(n))
	}
	form, _ := c.FormParams()
	req := experimentRequest{Key: f.V["key"], Name: f.V["name"], Description: f.V["description"], Layer: f.V["layer"], Holdout: f.V["holdout"], Analysis: &experiment.AnalysisPlan{}}
	if f.V["template"] != "" {
		// The form was filled from the template: what it shows is the
		// design; the plan's fields the form has no input for (the engine,
		// its prior) are the template's.
		t, err := s.db.GetTemplate(c.Request().Context(), f.V["template"])
		switch {
		case experiment.Is(err, experiment.NotFound):
		case err != nil:
			return err
		case t.Analysis != nil:
			*req.Analysis = *t.Analysis
		}
		req.Guardrails = []string{} // ticked among the metrics
	}
	req.Analysis.Correction = f.V["correction"]
	req.Analysis.Sequential = f.V["sequential"] != ""
	req.Analysis.Alpha, req.Analysis.MDE, req.Analysis.PrimaryMetric = 0, 0, ""
	num := func(field, v string, dst *float64) {
		if v == "" {
			return
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.Errors[field] = field + ": must be a number, got " + strconv.Quote(v)
			return
		}
		*dst = x
	}
	num("alpha", f.V["alpha"], &req.Analysis.Alpha)
	num("mde", f.V["mde"], &req.Analysis.MDE)
	if f.V["layer_start"] != "" || f.V["layer_end"] != "" {
		req.LayerRange = &experiment.Range{}
		num("layer_range", f.V["layer_start"], &req.LayerRange.Start)
		num("layer_range", f.V["layer_end"], &req.LayerRange.End)
	}
	for _, part := range strings.Split(f.V["variants"], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		x, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if !ok || err != nil {
			f.Errors["variants"] = "variants: write NAME=WEIGHT, separated by commas (control=0.5, treatment=0.5), got " + strconv.Quote(part)
			break
		}
		req.Variants = append(req.Variants, experiment.Variant{Name: strings.TrimSpace(name), Weight: x})
	}
	req.Metrics = []experiment.MetricRef{}
	for _, m := range form["metrics"] {
		f.Chosen[m] = true
		req.Metrics = append(req.Metrics, experiment.MetricRef{Name: m, Primary: m == f.V["primary"]})
	}
	if len(f.Errors) == 0 {
		err = s.metricsExist(c.Request().Context(), req.Metrics, "metrics")
		var e *experiment.Experiment
		if err == nil {
			e, err = s.db.CreateExperimentFrom(c.Request().Context(), actor(c), req.experiment(), f.V["template"], req.given())
		}
		if err == nil && f.V["start"] != "" {
			_, err = s.db.StartExperimentAt(c.Request().Context(), actor(c), e.Key, time.Time{})
		}
		if err == nil {
			s.plans.invalidate(e.Key)
			return c.Redirect(http.StatusSeeOther, "/experiments/"+e.Key)
		}
		if k := experiment.KindOf(err); k != experiment.Invalid && k != experiment.Conflict && k != experiment.NotFound {
			return err
		}
		_, _, msg := describe(err)
		if fld := formField(err); fld != "" {
			f.Errors[fld] = msg
		} else {
			f.Problem = msg
		}
	}
	return s.render(c, http.StatusBadRequest, "new.html", page2(k, se, "New experiment", "experiments", f))
}
