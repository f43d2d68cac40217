package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/store"
)

// privacyBudgetIn is the body of PUT /v1/experiments/KEY/privacy.
type privacyBudgetIn struct {
	Epsilon        float64 `json:"epsilon"`
	Delta          float64 `json:"delta"`
	ReleaseEpsilon float64 `json:"release_epsilon"`
	ReleaseDelta   float64 `json:"release_delta,omitempty"`
}

// PrivateInfo says what a differentially private answer cost and what is left.
type PrivateInfo struct {
	Mechanism    privacy.Mechanism `json:"mechanism"`
	Epsilon      float64           `json:"epsilon"` // this release's ε
	Delta        float64           `json:"delta"`
	EpsilonSpent float64           `json:"epsilon_spent"` // the experiment's total so far
	EpsilonLeft  float64           `json:"epsilon_left"`
	Reused       bool              `json:"reused"` // served again for unchanged data: spent nothing now
	// ReleasedAt is when the release was made (earlier than now when Reused).
	ReleasedAt time.Time `json:"released_at"`
}

// PrivateMetric is one metric of a private results answer.
type PrivateMetric struct {
	Name    string  `json:"name"`
	Control string  `json:"control"`
	Alpha   float64 `json:"alpha"`
	privacy.MetricRelease
}

// PrivateResults is the results JSON with differentially private numbers.
type PrivateResults struct {
	Experiment string             `json:"experiment,omitempty"`
	Holdout    string             `json:"holdout,omitempty"`
	Version    int                `json:"version,omitempty"` // holdout version
	Private    PrivateInfo        `json:"private"`
	Exposures  map[string]int64   `json:"exposures"` // noised units per variant
	SRM        analysis.SRMResult `json:"srm"`       // on the noised counts
	Alpha      float64            `json:"alpha"`
	Metrics    []PrivateMetric    `json:"metrics"`
	// Omitted lists metrics that cannot be released privately, with the reason
	// (ratio metrics, metrics without bounds).
	Omitted map[string]string `json:"omitted,omitempty"`
	Release *privacy.Release  `json:"-"`
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
		Description: "Noised per-variant counts, means and lifts with intervals that account for the noise, spending the " +
			"experiment's release_epsilon from its budget (409 budget_exhausted when it would overspend, spending nothing). " +
			"For unchanged data the stored release is served again and nothing is spent."})
}

func (s *Server) putPrivacy(c echo.Context) error {
	ctx := c.Request().Context()
	var in privacyBudgetIn
	if err := s.decode(c, &in); err != nil {
		return err
	}
	scope := scopeOf(c)
	l := privacy.NewLedger(s.db.Ledger())
	b := privacy.Budget{Epsilon: in.Epsilon, Delta: in.Delta, ReleaseEpsilon: in.ReleaseEpsilon, ReleaseDelta: in.ReleaseDelta}
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
	r, err := PrivateExperimentResults(c.Request().Context(), s.db, c.Param("key"), actor(c), privacy.Options{})
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
	r, err := PrivateHoldoutResults(c.Request().Context(), s.db, c.Param("name"), int(v), actor(c), privacy.Options{})
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

// PrivateExperimentResults releases the experiment's results under differential
// privacy on behalf of who: per-unit values clamped to each metric's bounds
// (store.BoundedStats), noised by privacy.NewRelease with the experiment's
// per-release parameters, spent from its budget (experiment.BudgetExceeded when it
// would overspend, spending nothing). When a release of exactly the same input was
// already made it is served again without spending: that is post-processing.
func PrivateExperimentResults(ctx context.Context, db *store.DB, key, who string, opt privacy.Options) (*PrivateResults, error) {
	return privateExperimentResults(ctx, db, key, who, opt, 0)
}

// privateExperimentResults is PrivateExperimentResults that serves the latest
// release when it is younger than reuseWithin (see privateResults).
func privateExperimentResults(ctx context.Context, db *store.DB, key, who string, opt privacy.Options, reuseWithin time.Duration) (*PrivateResults, error) {
	e, err := db.GetExperiment(ctx, key)
	if err != nil {
		return nil, err
	}
	out := &PrivateResults{Experiment: key, Alpha: e.Analysis.Alpha}
	var names []string
	for _, m := range e.Metrics {
		names = append(names, m.Name)
	}
	return privateResults(ctx, db, out, privacy.ExperimentScope(key), store.ExperimentPopulation(e), names, who, "results", opt, reuseWithin)
}

// PrivateHoldoutResults is PrivateExperimentResults for a holdout version (0: the
// current one): arms "holdout" (control) and "exposed", the metrics of the
// experiments naming the holdout, spending from the holdout's budget.
func PrivateHoldoutResults(ctx context.Context, db *store.DB, name string, version int, who string, opt privacy.Options) (*PrivateResults, error) {
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
	out := &PrivateResults{Holdout: name, Version: version}
	return privateResults(ctx, db, out, privacy.HoldoutScope(name), store.HoldoutPopulation(h, version), names, who, "holdout results v"+strconv.Itoa(version), opt, 0)
}

// privateResults releases the bounded metrics among names over pop, spending from
// scope (or reusing the stored release of the same input), and fills out.
//
// reuseWithin > 0 serves the scope's latest release, whatever its input, when it
// is younger than that, without reading the data: for callers that must not be
// able to spend the budget by asking often while data arrives (share links).
func privateResults(ctx context.Context, db *store.DB, out *PrivateResults, scope string, pop store.Population, all []string, who, what string, opt privacy.Options, reuseWithin time.Duration) (*PrivateResults, error) {
	const op = "api.PrivateResults"
	if out.Alpha == 0 {
		out.Alpha = 0.05
	}
	out.Omitted = map[string]string{}
	opt.Alpha = out.Alpha
	var names []string
	for _, n := range all {
		def, err := db.GetMetric(ctx, n)
		if err != nil {
			return nil, experiment.E(op, err)
		}
		switch {
		case def.Aggregation == experiment.Ratio:
			out.Omitted[n] = "ratio metrics are not released privately; release their numerator and denominator"
		case def.Bounds == nil && def.Aggregation != experiment.Binary:
			out.Omitted[n] = "no per-unit bounds declared"
		default:
			names = append(names, n)
		}
	}
	sl := db.Ledger()
	l := privacy.NewLedger(sl)
	var (
		r    *privacy.Release
		acct *experiment.PrivacyAccount
		at   time.Time
	)
	// stored decodes a stored release: serving it again is post-processing.
	stored := func(doc []byte, when time.Time) error {
		r = new(privacy.Release)
		if err := json.Unmarshal(doc, r); err != nil {
			return experiment.E(op, experiment.Internal, err)
		}
		var err error
		if acct, err = l.Account(ctx, scope, 1); err != nil {
			return err
		}
		at, out.Private.Reused = when, true
		return nil
	}
	if reuseWithin > 0 {
		doc, when, err := sl.LatestRelease(ctx, scope)
		switch {
		case err == nil && time.Since(when) < reuseWithin:
			if err := stored(doc, when); err != nil {
				return nil, err
			}
		case err != nil && !experiment.Is(err, experiment.NotFound):
			return nil, err
		}
	}
	if r == nil {
		bs, err := db.BoundedStats(ctx, pop, names)
		if err != nil {
			return nil, experiment.E(op, err)
		}
		in := PrivacyInput(bs, pop.Arms)
		inJSON, err := json.Marshal(struct {
			In  *privacy.Input
			Opt privacy.Mechanism
		}{in, opt.Mechanism})
		if err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		sum := sha256.Sum256(inJSON)
		hash := hex.EncodeToString(sum[:])
		if doc, when, err := sl.Release(ctx, scope, hash); err == nil {
			if err := stored(doc, when); err != nil {
				return nil, err
			}
		} else if !experiment.Is(err, experiment.NotFound) {
			return nil, err
		} else {
			if r, acct, err = l.ReleaseResults(ctx, scope, in, opt, who, what); err != nil {
				return nil, err
			}
			doc, err := json.Marshal(r)
			if err != nil {
				return nil, experiment.E(op, experiment.Internal, err)
			}
			if err := sl.SaveRelease(ctx, scope, hash, doc); err != nil {
				return nil, err
			}
			at = time.Now().UTC()
		}
	}
	out.Release = r
	out.Private = PrivateInfo{Mechanism: r.Mechanism, Epsilon: r.Epsilon, Delta: r.Delta,
		EpsilonSpent: acct.EpsilonSpent, EpsilonLeft: acct.EpsilonLeft, Reused: out.Private.Reused, ReleasedAt: at}
	out.Exposures = map[string]int64{}
	users := make([]float64, len(r.Units))
	weights := make([]float64, len(r.Units))
	for i, u := range r.Units {
		out.Exposures[u.Variant] = u.N
		users[i] = float64(u.N)
		weights[i] = pop.Weights[i]
	}
	p := analysis.SRM(users, weights)
	out.SRM = analysis.SRMResult{PValue: p, Threshold: 0.001, Mismatch: p < 0.001}
	for _, m := range r.Metrics {
		out.Metrics = append(out.Metrics, PrivateMetric{Name: m.Metric, Control: r.Control, Alpha: r.Alpha, MetricRelease: m})
	}
	return out, nil
}

// PrivacyInput turns bounded statistics (arms in order, the control first) into a
// release input.
func PrivacyInput(bs *store.BoundedStats, arms []string) *privacy.Input {
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
