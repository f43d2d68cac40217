package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/store"
)

// journeyRequest is the body of POST /v1/journeys. There is no price field, and
// none may be added: journeys order content only (see docs/journeys.md).
type journeyRequest struct {
	Key           string                   `json:"key" required:"true" doc:"unique key: 1-128 letters, digits, '_', '.' or '-'"`
	Name          string                   `json:"name,omitempty"`
	Description   string                   `json:"description,omitempty"`
	Experiment    string                   `json:"experiment" required:"true" doc:"the experiment that randomizes units (must exist)"`
	Control       string                   `json:"control,omitempty" doc:"the control variant; default the experiment's first variant"`
	Holdout       string                   `json:"holdout,omitempty" doc:"the experiment's permanent holdout, or empty (it is then filled from the experiment)"`
	K             int                      `json:"k,omitempty" doc:"items per decision, 1-1000; default 10"`
	ControlPolicy experiment.ControlPolicy `json:"control_policy" required:"true" doc:"{\"kind\": \"popular\", \"event_type\": \"view\", \"days\": 7} or {\"kind\": \"fixed\", \"items\": [...]}"`
	Model         string                   `json:"model" required:"true" doc:"the personalization model's name (a file NAME.safetensors of the server's model folder)"`
	LatencyBudget experiment.Duration      `json:"latency_budget,omitempty" doc:"scorer deadline, e.g. \"120ms\" (default); past it the unit gets the control journey (fallback)"`
	Exploration   experiment.Exploration   `json:"exploration,omitempty" doc:"{\"kind\": \"epsilon_greedy\", \"epsilon\": 0.05} (default), {\"kind\": \"thompson\", \"min_history\": 5, \"budget\": 0.2, \"epsilon\": 0, \"reward_event\": \"click\"} (Thompson sampling over items for new units, ε-greedy for established ones) or {\"kind\": \"none\"}"`
	ConsentTier   int                      `json:"consent_tier,omitempty" doc:"consent tier personalization needs: default 2 (personalization)"`
	Diversity     experiment.Diversity     `json:"diversity,omitempty" doc:"{\"kind\": \"none\"} (default), {\"kind\": \"category_quota\", \"max_per_category\": 2} or {\"kind\": \"mmr\", \"lambda\": 0.7}; both may set candidates (default 4·k), the model's top items the list is chosen from"`
	FrequencyCap  *experiment.FrequencyCap `json:"frequency_cap,omitempty" doc:"{\"max\": 3, \"window\": \"24h\"}: with max decisions that showed items in the window, the unit is ineligible (frequency_cap) and shown nothing"`
	QuietHours    *experiment.QuietHours   `json:"quiet_hours,omitempty" doc:"{\"start\": \"22:00\", \"end\": \"07:00\", \"time_zone\": \"Europe/Paris\"}: no one is shown anything then (quiet_hours)"`
	FeatureSets   map[int][]string         `json:"feature_sets,omitempty" doc:"signals the model may use per consent tier, e.g. {\"1\": [\"session_items\"], \"2\": [\"session_items\", \"stored_history\"], \"3\": [\"session_items\", \"stored_history\", \"attributes\"]}; a tier left out keeps that default (tier 3 as tier 2)"`
}

func (r *journeyRequest) journey() *experiment.Journey {
	return &experiment.Journey{
		Key: r.Key, Name: r.Name, Description: r.Description, Experiment: r.Experiment, Control: r.Control,
		Holdout: r.Holdout, K: r.K, ControlPolicy: r.ControlPolicy, Model: r.Model, LatencyBudget: r.LatencyBudget,
		Exploration: r.Exploration, ConsentTier: r.ConsentTier, Diversity: r.Diversity, FrequencyCap: r.FrequencyCap,
		QuietHours: r.QuietHours, FeatureSets: r.FeatureSets,
	}
}

type journeyList struct {
	Journeys []*experiment.Journey `json:"journeys"`
}

type guardrailList struct {
	Journeys []journey.Guardrails `json:"journeys"`
}

// journeyRoutes are the journey registry, decisions, live guardrails and the
// journey comparison.
func (s *Server) journeyRoutes() {
	const admin, analyst, ingest = experiment.RoleAdmin, experiment.RoleAnalyst, experiment.RoleIngest
	s.route(http.MethodPost, "/v1/journeys", admin, s.createJourney, op{
		Summary: "Register a personalized journey", Request: journeyRequest{}, Response: experiment.Journey{}, Status: http.StatusCreated,
		Description: "The experiment must exist; the holdout must be the experiment's; the control variant must be one of its variants. There is no price field: journeys order content only."})
	s.route(http.MethodGet, "/v1/journeys", analyst, s.listJourneys, op{Summary: "List journeys", Response: journeyList{}})
	s.route(http.MethodGet, "/v1/journeys/:key", analyst, s.getJourney, op{Summary: "Get a journey", Response: experiment.Journey{}})
	s.route(http.MethodPost, "/v1/journeys/:key/decide", ingest, s.decideJourney, op{
		Summary: "Decide what a unit is shown, and log the decision and exposure", Also: []experiment.Role{admin},
		Request: journey.Request{}, Response: journey.Decision{},
		Description: "policy is personalized, control, holdout, fallback (the scorer missed the latency budget or failed: control journey, exposure kept in the assigned variant) or ineligible (consent below the journey's tier: control journey, not entered in the experiment)."})
	s.route(http.MethodGet, "/v1/journeys/:key/decisions/:id", analyst, s.getDecision, op{
		Summary: "Why a unit saw this: a stored decision with its provenance", Also: []experiment.Role{admin}, Response: store.DecisionRecord{},
		Description: "The items shown with the reason of each, and the provenance: the consent tier and policy version in force, " +
			"the signals the model was allowed (session_items, stored_history) and the session items it used, the model and " +
			"its version, the exploration applied, and the journey's rules. An erased unit's decisions keep their items, " +
			"under its pseudonym, without provenance."})
	s.route(http.MethodGet, "/v1/journeys/:key/guardrails", analyst, s.journeyGuardrails, op{
		Summary: "Live guardrails of a journey: latency quantiles, fallback rate, share ineligible, Gini of item exposures", Response: journey.Guardrails{}})
	s.route(http.MethodGet, "/v1/journeys/:key/comparison", analyst, s.compareJourney, op{
		Summary: "Personalized vs control vs holdout, with the daily guardrails (stored per day)", Response: journey.Comparison{},
		Query: []param{
			{Name: "from", Description: "start of the window (RFC 3339 or YYYY-MM-DD); default 7 days before to"},
			{Name: "to", Description: "end of the window, exclusive; default the start of tomorrow (UTC)"},
		}})
	if s.opt.Journeys != nil {
		if err := s.opt.Registry.Register(newGuardrailCollector(s.opt.Journeys)); err != nil {
			s.log.Error("registering journey metrics", "err", err)
		}
	}
}

func (s *Server) decider() (*journey.Decider, error) {
	if s.opt.Journeys == nil {
		return nil, experiment.E("api.journeys", experiment.Unavailable,
			experiment.Errorf("this server serves no journeys: start it with --models DIR"))
	}
	return s.opt.Journeys, nil
}

func (s *Server) createJourney(c echo.Context) error {
	b, err := s.readBody(c)
	if err != nil {
		return err
	}
	if err := noPrice(b); err != nil {
		return err
	}
	var req journeyRequest
	if err := decodeJSON(b, &req); err != nil {
		return err
	}
	if err := s.modelLoaded(req.Model); err != nil {
		return err
	}
	j, err := s.db.CreateJourney(c.Request().Context(), actor(c), req.journey())
	if err != nil {
		return err
	}
	if s.opt.Journeys != nil {
		s.opt.Journeys.Invalidate(j.Key)
	}
	return c.JSON(http.StatusCreated, j)
}

// modelLoaded refuses a journey whose model this server has not loaded: every
// decision of it would fall back to the control journey. A server without
// journeys (no Decider) cannot tell, and lets the store validate the rest.
func (s *Server) modelLoaded(name string) error {
	if s.opt.Journeys == nil || name == "" {
		return nil
	}
	ms := s.opt.Journeys.Models()
	if _, ok := ms.Get(name); ok {
		return nil
	}
	var names []string
	for _, m := range ms.List() {
		names = append(names, m.Name)
	}
	loaded := "none"
	if len(names) > 0 {
		loaded = strings.Join(names, ", ")
	}
	return experiment.E("api.createJourney", experiment.Invalid, experiment.Field("model"),
		experiment.Errorf("model %q is not loaded (loaded: %s): put NAME.safetensors in the folder of lift serve --models and restart it", name, loaded))
}

// noPrice rejects a journey body with a price-like field, with the reason.
func noPrice(b []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return nil // decodeJSON reports the malformed body
	}
	for k := range top {
		if l := strings.ToLower(k); strings.Contains(l, "price") || strings.Contains(l, "discount") {
			return experiment.E("api.createJourney", experiment.Invalid, experiment.Field(k), experiment.Errorf(
				"journeys order content only and never set or vary prices: personalized pricing treats users unequally for the same product and is legally risky (see docs/journeys.md)"))
		}
	}
	return nil
}

func (s *Server) listJourneys(c echo.Context) error {
	js, err := s.db.ListJourneys(c.Request().Context())
	if err != nil {
		return err
	}
	if js == nil {
		js = []*experiment.Journey{}
	}
	return c.JSON(http.StatusOK, journeyList{js})
}

func (s *Server) getJourney(c echo.Context) error {
	j, err := s.db.GetJourney(c.Request().Context(), c.Param("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, j)
}

func (s *Server) decideJourney(c echo.Context) error {
	d, err := s.decider()
	if err != nil {
		return err
	}
	var req journey.Request
	if err := s.decode(c, &req); err != nil {
		return err
	}
	dec, err := d.Decide(c.Request().Context(), c.Param("key"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, dec)
}

func (s *Server) getDecision(c echo.Context) error {
	d, err := s.db.GetDecision(c.Request().Context(), c.Param("key"), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) journeyGuardrails(c echo.Context) error {
	d, err := s.decider()
	if err != nil {
		return err
	}
	key := c.Param("key")
	if _, err := s.db.GetJourney(c.Request().Context(), key); err != nil {
		return err
	}
	for _, g := range d.Guardrails() {
		if g.Journey == key {
			return c.JSON(http.StatusOK, g)
		}
	}
	return c.JSON(http.StatusOK, journey.Guardrails{Journey: key, Decisions: map[string]int64{}, Fallbacks: map[string]int64{}})
}

func (s *Server) compareJourney(c echo.Context) error {
	const op = "api.compareJourney"
	now := s.opt.Now().UTC()
	to := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	var err error
	if v := c.QueryParam("to"); v != "" {
		if to, err = parseTime(v); err != nil {
			return experiment.E(op, experiment.Invalid, experiment.Field("to"), err)
		}
	}
	from := to.Add(-7 * 24 * time.Hour)
	if v := c.QueryParam("from"); v != "" {
		if from, err = parseTime(v); err != nil {
			return experiment.E(op, experiment.Invalid, experiment.Field("from"), err)
		}
	}
	if s.opt.Journeys != nil { // the decisions made so far are part of the comparison
		if err := s.opt.Journeys.Flush(c.Request().Context()); err != nil {
			return err
		}
	}
	cmp, err := journey.Compare(c.Request().Context(), s.db, s.results, c.Param("key"), from, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cmp)
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, experiment.Errorf("want RFC 3339 (2026-11-20T00:00:00Z) or a date (2026-11-20), got %q", v)
	}
	return t, nil
}

// guardrailCollector exports the live journey guardrails to Prometheus at scrape time.
type guardrailCollector struct {
	d                                                                   *journey.Decider
	decisions, fallbacks, latency, fallback, ineligible, gini, distinct *prometheus.Desc
}

func newGuardrailCollector(d *journey.Decider) *guardrailCollector {
	j := []string{"journey"}
	return &guardrailCollector{
		d:          d,
		decisions:  prometheus.NewDesc("lift_journey_decisions_total", "Journey decisions, by journey and policy.", []string{"journey", "policy"}, nil),
		fallbacks:  prometheus.NewDesc("lift_journey_fallbacks_total", "Journey fallbacks to the control journey, by journey and cause (timeout, overload, error, no_history, model_not_loaded).", []string{"journey", "cause"}, nil),
		latency:    prometheus.NewDesc("lift_journey_decision_latency_seconds", "Decision latency quantiles over the most recent decisions of each journey.", []string{"journey", "quantile"}, nil),
		fallback:   prometheus.NewDesc("lift_journey_fallback_rate", "fallback / (personalized + fallback) since start, per journey.", j, nil),
		ineligible: prometheus.NewDesc("lift_journey_ineligible_share", "ineligible / decisions since start, per journey.", j, nil),
		gini:       prometheus.NewDesc("lift_journey_item_exposure_gini", "Gini coefficient of today's (UTC) item exposure counts per journey; rising means narrowing recommendations.", j, nil),
		distinct:   prometheus.NewDesc("lift_journey_distinct_items", "Items shown at least once today (UTC), per journey.", j, nil),
	}
}

func (g *guardrailCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.decisions, g.fallbacks, g.latency, g.fallback, g.ineligible, g.gini, g.distinct} {
		ch <- d
	}
}

func (g *guardrailCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range g.d.Guardrails() {
		for _, p := range []string{experiment.PolicyPersonalized, experiment.PolicyControl, experiment.PolicyHoldout, experiment.PolicyFallback, experiment.PolicyIneligible} {
			ch <- prometheus.MustNewConstMetric(g.decisions, prometheus.CounterValue, float64(r.Decisions[p]), r.Journey, p)
		}
		for cause, n := range r.Fallbacks {
			ch <- prometheus.MustNewConstMetric(g.fallbacks, prometheus.CounterValue, float64(n), r.Journey, cause)
		}
		for _, q := range []struct {
			name string
			ms   float64
		}{{"0.5", r.LatencyP50}, {"0.95", r.LatencyP95}, {"0.99", r.LatencyP99}} {
			ch <- prometheus.MustNewConstMetric(g.latency, prometheus.GaugeValue, q.ms/1000, r.Journey, q.name)
		}
		ch <- prometheus.MustNewConstMetric(g.fallback, prometheus.GaugeValue, r.FallbackRate, r.Journey)
		ch <- prometheus.MustNewConstMetric(g.ineligible, prometheus.GaugeValue, r.IneligibleShare, r.Journey)
		ch <- prometheus.MustNewConstMetric(g.gini, prometheus.GaugeValue, r.Gini, r.Journey)
		ch <- prometheus.MustNewConstMetric(g.distinct, prometheus.GaugeValue, float64(r.DistinctItems), r.Journey)
	}
}
