package api

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/metric"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// privacyBudgetIn is the body of PUT /v1/experiments/KEY/privacy.
type privacyBudgetIn struct {
	Epsilon        float64             `json:"epsilon"`
	Delta          float64             `json:"delta"`
	ReleaseEpsilon float64             `json:"release_epsilon"`
	ReleaseDelta   float64             `json:"release_delta,omitempty"`
	ReleasePeriod  experiment.Duration `json:"release_period,omitempty" doc:"how often a new release is made, e.g. \"24h\" (the default: one release per UTC day) or \"1h\"; from 1m to 366d. Every reader within a period gets that period's release."`
}

// PrivateInfo says which scheduled release an answer is, what it cost and what is
// left. Everything in it depends on the clock and the budget only, never on the
// data: a reader cannot tell from it whether the data changed.
type PrivateInfo struct {
	Mechanism    privacy.Mechanism `json:"mechanism"`
	Epsilon      float64           `json:"epsilon"` // this release's ε
	Delta        float64           `json:"delta"`
	EpsilonSpent float64           `json:"epsilon_spent"` // the scope's total so far
	EpsilonLeft  float64           `json:"epsilon_left"`
	// ReleasePeriod is the scope's schedule; PeriodStart the start of the period
	// this release belongs to; ReleasedAt when it was made, by the period's first
	// reader, and it covers the data until then; NextReleaseAt is when the next
	// period starts (its first reader gets a new release, spending again).
	ReleasePeriod experiment.Duration `json:"release_period"`
	PeriodStart   time.Time           `json:"period_start"`
	ReleasedAt    time.Time           `json:"released_at"`
	NextReleaseAt time.Time           `json:"next_release_at"`
}

// PrivateMetric is one metric of a private results answer.
type PrivateMetric struct {
	Name    string  `json:"name"`
	Control string  `json:"control"`
	Alpha   float64 `json:"alpha"`
	privacy.MetricRelease
	// Comparisons are the release's, with their adjusted p-values.
	Comparisons []PrivateComparison `json:"comparisons"`
}

// PrivateComparison is a released comparison with its p-values adjusted for
// multiple testing across every comparison of the release (post-processing of
// the release: it costs no ε).
type PrivateComparison struct {
	privacy.Comparison
	Adjusted *analysis.Adjusted `json:"adjusted_p_value,omitempty"`
}

// PrivateResults is the results JSON with differentially private numbers.
type PrivateResults struct {
	Experiment string           `json:"experiment,omitempty"`
	Holdout    string           `json:"holdout,omitempty"`
	Version    int              `json:"version,omitempty"` // holdout version
	Private    PrivateInfo      `json:"private"`
	Exposures  map[string]int64 `json:"exposures"` // noised units per variant
	SRM        privacy.SRM      `json:"srm"`       // on the noised counts, with their noise accounted for
	Alpha      float64          `json:"alpha"`
	// Correction is the multiple-testing correction of the adjusted p-values:
	// the experiment's pre-registered one ("holm", "bh" or "none"); "none" for a
	// holdout, which has no analysis plan.
	Correction string          `json:"correction"`
	Metrics    []PrivateMetric `json:"metrics"`
	// Omitted lists metrics that cannot be released privately, with the reason
	// (ratio metrics, metrics without bounds).
	Omitted map[string]string `json:"omitted,omitempty"`
	// MetricVersions are the versions of the metric definitions read (an
	// experiment's pinned ones).
	MetricVersions map[string]int   `json:"metric_versions,omitempty"`
	Release        *privacy.Release `json:"-"`
}

// privacyRoutes: budgets are set by admins and read by anyone with a key; private
// results, reports, charts and CSV are open to viewers (see reportRoutes).
func (s *Server) privacyRoutes() {
	defer s.reportRoutes()
	s.route(http.MethodPut, "/v1/experiments/:key/privacy", experiment.RoleAdmin, s.putPrivacy, op{
		Summary: "Set the differential-privacy budget of an experiment", Request: privacyBudgetIn{}, Response: experiment.PrivacyAccount{},
		Description: "epsilon and delta are the total every private release of the experiment may spend together; " +
			"release_epsilon is what one release of the results spends (release_delta defaults to delta·release_epsilon/epsilon). " +
			"What is already spent is kept."})
	s.route(http.MethodGet, "/v1/experiments/:key/privacy", experiment.RoleViewer, s.getPrivacy, op{
		Summary: "The privacy budget of an experiment, what is spent and the ledger of releases", Response: experiment.PrivacyAccount{},
		Query: []param{{Name: "limit", Type: "integer", Description: "newest ledger entries to list, default 100"}}})
	s.route(http.MethodPut, "/v1/holdouts/:name/privacy", experiment.RoleAdmin, s.putPrivacy, op{
		Summary: "Set the differential-privacy budget of a holdout (its long-run incrementality releases)", Request: privacyBudgetIn{}, Response: experiment.PrivacyAccount{}})
	s.route(http.MethodGet, "/v1/holdouts/:name/privacy", experiment.RoleViewer, s.getPrivacy, op{
		Summary: "The privacy budget of a holdout, what is spent and the ledger", Response: experiment.PrivacyAccount{},
		Query: []param{{Name: "limit", Type: "integer", Description: "newest ledger entries to list, default 100"}}})
	s.route(http.MethodGet, "/v1/holdouts/:name/results/private", experiment.RoleViewer, s.getPrivateHoldoutResults, op{
		Summary: "Differentially private long-run incrementality of a holdout version", Response: PrivateResults{},
		Description: "Arms \"holdout\" (control) and \"exposed\" as in /v1/holdouts/NAME/results, released like the private " +
			"results of an experiment and spent from the holdout's budget.",
		Query: []param{{Name: "version", Type: "integer", Description: "holdout version (cohort); default the current one"}}})
	s.route(http.MethodGet, "/v1/experiments/:key/results/private", experiment.RoleViewer, s.getPrivateResults, op{
		Summary: "Differentially private results of an experiment", Response: PrivateResults{},
		Description: "Noised per-variant counts, means and lifts with intervals that account for the noise. Releases follow " +
			"the budget's release_period (default one per UTC day): the first request of a period makes the release, spending " +
			"the experiment's release_epsilon (409 budget_exhausted when it would overspend, spending nothing), and every " +
			"request of the period gets that same release, whether or not the data changed."})
}

func (s *Server) putPrivacy(c echo.Context) error {
	ctx := c.Request().Context()
	var in privacyBudgetIn
	if err := s.decode(c, &in); err != nil {
		return err
	}
	scope := scopeOf(c)
	l := privacy.NewLedger(s.db.Ledger())
	b := privacy.Budget{Epsilon: in.Epsilon, Delta: in.Delta, ReleaseEpsilon: in.ReleaseEpsilon, ReleaseDelta: in.ReleaseDelta, ReleasePeriod: in.ReleasePeriod}
	if err := l.SetBudget(ctx, scope, b, actor(c)); err != nil {
		return err
	}
	a, err := l.Account(ctx, scope, 100)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) getPrivacy(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return experiment.E("api.privacy", experiment.Invalid, experiment.Field("limit"), experiment.Errorf("must be a positive integer, got %q", v))
		}
		limit = n
	}
	a, err := privacy.NewLedger(s.db.Ledger()).Account(c.Request().Context(), scopeOf(c), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

// scopeOf is the ledger scope of a privacy route: the experiment or the holdout.
func scopeOf(c echo.Context) string {
	if name := c.Param("name"); name != "" {
		return privacy.HoldoutScope(name)
	}
	return privacy.ExperimentScope(c.Param("key"))
}

func (s *Server) getPrivateResults(c echo.Context) error {
	r, err := PrivateExperimentResults(c.Request().Context(), s.db, s.results, c.Param("key"), actor(c), privacy.Options{Now: s.opt.Now})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) getPrivateHoldoutResults(c echo.Context) error {
	v, err := intParam(c, "version")
	if err != nil {
		return err
	}
	r, err := PrivateHoldoutResults(c.Request().Context(), s.db, s.results, c.Param("name"), int(v), actor(c), privacy.Options{Now: s.opt.Now})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// wantsPrivate reports whether a results request must be answered with DP numbers:
// ?private=true, or a key whose role may not see exact numbers (viewer).
func wantsPrivate(c echo.Context) bool {
	if v, _ := strconv.ParseBool(c.QueryParam("private")); v {
		return true
	}
	k := keyOf(c)
	return k == nil || !k.Role.SeesExact()
}

// PrivateExperimentResults is the experiment's current scheduled release under
// differential privacy, read on behalf of who: the release of the period of the
// experiment's schedule that holds opt.Now() (privacy.Ledger.Release), made by the
// period's first reader from the data until then (per-unit values clamped to each
// metric's bounds, metric.CompileBounded and the store's engine; noised by privacy.NewRelease with the
// experiment's per-release parameters; spent and saved in one ledger transaction,
// experiment.BudgetExceeded when it would overspend) and served unchanged to every
// later reader of the period. A journey's digests read its experiment's release.
func PrivateExperimentResults(ctx context.Context, db *store.DB, rs *results.Service, key, who string, opt privacy.Options) (*PrivateResults, error) {
	e, err := db.GetExperiment(ctx, key)
	if err != nil {
		return nil, err
	}
	out := &PrivateResults{Experiment: key, Alpha: e.Analysis.Alpha, Correction: e.Analysis.Correction}
	var names []string
	for _, m := range e.Metrics {
		names = append(names, m.Name)
	}
	return privateResults(ctx, db, rs, out, privacy.ExperimentScope(key), "results", e, metric.ExperimentPopulation(e), names, who, opt)
}

// PrivateHoldoutResults is PrivateExperimentResults for a holdout version (0: the
// current one): arms "holdout" (control) and "exposed", the metrics of the
// experiments naming the holdout, spending from the holdout's budget. Each version
// is a subject of its own in the holdout's schedule ("holdout results vN").
func PrivateHoldoutResults(ctx context.Context, db *store.DB, rs *results.Service, name string, version int, who string, opt privacy.Options) (*PrivateResults, error) {
	const op = "api.PrivateHoldoutResults"
	h, err := db.GetHoldout(ctx, name)
	if err != nil {
		return nil, err
	}
	if version == 0 {
		version = h.Version
	}
	if version < 1 || version > h.Version {
		return nil, experiment.E(op, experiment.NotFound, experiment.Field("version"), experiment.Errorf("holdout %q has versions 1 to %d, not %d", name, h.Version, version))
	}
	exps, err := db.ListExperiments(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for _, e := range exps {
		for _, m := range e.Metrics {
			if e.Holdout == name && !seen[m.Name] {
				seen[m.Name] = true
				names = append(names, m.Name)
			}
		}
	}
	sort.Strings(names)
	pop, err := db.HoldoutPopulation(ctx, h, version)
	if err != nil {
		return nil, err
	}
	out := &PrivateResults{Holdout: name, Version: version}
	return privateResults(ctx, db, rs, out, privacy.HoldoutScope(name), "holdout results v"+strconv.Itoa(version), nil, pop, names, who, opt)
}

// privateResults answers with the scope's release of subject for the current
// period, making it from the bounded metrics among all over pop when the period
// has none yet, and fills out.
//
// e is the experiment released (nil for a holdout): its metrics are read at
// the versions it pinned.
func privateResults(ctx context.Context, db *store.DB, rs *results.Service, out *PrivateResults, scope, subject string, e *experiment.Experiment, pop metric.Population, all []string, who string, opt privacy.Options) (*PrivateResults, error) {
	const op = "api.PrivateResults"
	if out.Alpha == 0 {
		out.Alpha = 0.05
	}
	out.Omitted = map[string]string{}
	opt.Alpha = out.Alpha
	if opt.Now == nil {
		opt.Now = time.Now
	}
	var names []string
	pinned, err := db.ResolveExperimentMetrics(ctx, e, all)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	for n, d := range pinned {
		if d.Version > 0 {
			if out.MetricVersions == nil {
				out.MetricVersions = map[string]int{}
			}
			out.MetricVersions[n] = d.Version
		}
	}
	for _, n := range all {
		def := pinned[n]
		switch {
		case def.Aggregation == experiment.Ratio:
			out.Omitted[n] = "ratio metrics are not released privately; release their numerator and denominator"
		case def.Bounds == nil && def.Aggregation != experiment.Binary:
			out.Omitted[n] = "no per-unit bounds declared"
		default:
			names = append(names, n)
		}
	}
	now := opt.Now().UTC().Truncate(time.Microsecond)
	s, err := privacy.NewLedger(db.Ledger()).Release(ctx, scope, subject, now, opt.Mechanism, who, func(p privacy.Params) (*privacy.Release, error) {
		pop.Until = now // the release covers the data until it is made
		defs, err := db.ResolveExperimentMetrics(ctx, e, names)
		if err != nil {
			return nil, experiment.E(op, err)
		}
		plan, err := metric.CompileBounded(pop, names, defs)
		if err != nil {
			return nil, experiment.E(op, err)
		}
		bs, err := rs.Engine().Bounded(ctx, plan)
		if err != nil {
			return nil, experiment.E(op, err)
		}
		return privacy.NewRelease(PrivacyInput(bs, pop.Arms), p, opt)
	})
	if err != nil {
		return nil, err
	}
	r := s.Release
	out.Release = r
	out.Private = PrivateInfo{Mechanism: r.Mechanism, Epsilon: r.Epsilon, Delta: r.Delta,
		EpsilonSpent: s.Account.EpsilonSpent, EpsilonLeft: s.Account.EpsilonLeft,
		ReleasePeriod: experiment.Duration(s.Period), PeriodStart: s.PeriodStart, ReleasedAt: s.ReleasedAt, NextReleaseAt: s.NextAt()}
	out.Exposures = map[string]int64{}
	weights := map[string]float64{}
	for i, a := range pop.Arms {
		weights[a] = pop.Weights[i]
	}
	w := make([]float64, len(r.Units))
	for i, u := range r.Units {
		out.Exposures[u.Variant] = u.N
		w[i] = weights[u.Variant]
	}
	out.SRM = privacy.SRMTest(r.Units, w, 0.001)
	for _, m := range r.Metrics {
		pm := PrivateMetric{Name: m.Metric, Control: r.Control, Alpha: r.Alpha, MetricRelease: m}
		for _, c := range m.Comparisons {
			pm.Comparisons = append(pm.Comparisons, PrivateComparison{Comparison: c})
		}
		out.Metrics = append(out.Metrics, pm)
	}
	adjustPrivate(out)
	return out, nil
}

// adjustPrivate adjusts the released p-values for multiple testing with
// out.Correction, as the exact results are (analysis.Adjust): across every
// released comparison, the absolute and the relative p-values separately; a
// comparison without a relative interval takes part with p = 1. Metrics left
// out of the release are not in the family.
func adjustPrivate(out *PrivateResults) {
	if out.Correction == "" {
		out.Correction = "none"
	}
	method := analysis.Correction(out.Correction)
	f := analysis.HolmAdjust
	switch method {
	case analysis.Holm:
	case analysis.BenjaminiHochberg:
		f = analysis.BHAdjust
	default:
		return
	}
	var abs, rel []float64
	for _, m := range out.Metrics {
		for _, c := range m.Comparisons {
			abs = append(abs, c.Absolute.PValue)
			p := 1.0
			if c.Relative != nil {
				p = c.Relative.PValue
			}
			rel = append(rel, p)
		}
	}
	abs, rel = f(abs), f(rel)
	k := 0
	for _, m := range out.Metrics {
		for i := range m.Comparisons {
			m.Comparisons[i].Adjusted = &analysis.Adjusted{Method: method, Absolute: abs[k], Relative: rel[k]}
			k++
		}
	}
}

// PrivacyInput turns bounded statistics (arms in order, the control first) into a
// release input.
func PrivacyInput(bs *metric.Bounded, arms []string) *privacy.Input {
	in := &privacy.Input{Control: arms[0]}
	for _, a := range arms {
		in.Units = append(in.Units, privacy.Count{Variant: a, N: bs.Units[a]})
	}
	for _, m := range bs.Metrics {
		ms := privacy.MetricStats{Metric: m.Name, Bounds: m.Bounds, OwnCount: m.OwnCount}
		for _, a := range m.Arms {
			ms.Variants = append(ms.Variants, privacy.Stats{Variant: a.Arm, N: a.N, Sum: a.Sum, SumSq: a.SumSq})
		}
		in.Metrics = append(in.Metrics, ms)
	}
	return in
}
