package journey

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/analysis/bandit"
	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
)

// Options configures a Decider. Zero fields take the defaults of DefaultOptions.
type Options struct {
	Now    func() time.Time // clock of exposure and decision timestamps, default time.Now
	Logger *slog.Logger     // default slog.Default()
	// Seed seeds exploration: each decision draws from a PCG source seeded with
	// (Seed, FNV-1a of its decision id), so a decision can be replayed.
	Seed uint64
	// NewID returns a new decision id, default "dec_" and 32 random hex digits.
	NewID func() string
	// CacheTTL is how long a journey with its compiled assignment plan is reused
	// before it is read again from the store (default 5s).
	CacheTTL time.Duration
	// PopularTTL is how long a "popular" control list is reused (default 1 minute).
	PopularTTL time.Duration
	// RewardTTL is how long a journey's per-item click record (the posteriors of
	// thompson exploration) is reused before it is read again (default 1 minute).
	RewardTTL time.Duration
	// DecisionLog configures the batching writer of decisions.
	DecisionLog store.DecisionLogOptions
	// LatencyWindow is how many recent decision latencies per journey the live
	// quantiles are computed over (default 4096).
	LatencyWindow int
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		Now: time.Now, Logger: slog.Default(), Seed: 1, NewID: newID,
		CacheTTL: 5 * time.Second, PopularTTL: time.Minute, RewardTTL: time.Minute, LatencyWindow: 4096,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.NewID == nil {
		o.NewID = d.NewID
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = d.CacheTTL
	}
	if o.PopularTTL <= 0 {
		o.PopularTTL = d.PopularTTL
	}
	if o.LatencyWindow <= 0 {
		o.LatencyWindow = d.LatencyWindow
	}
	if o.RewardTTL <= 0 {
		o.RewardTTL = d.RewardTTL
	}
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("journey: reading random decision id: " + err.Error())
	}
	return "dec_" + hex.EncodeToString(b[:])
}

// Request is the body of a decision: the unit and what the caller knows of it.
type Request struct {
	Unit    string  `json:"unit" required:"true" doc:"the unit (user) to decide for"`
	Context Context `json:"context"`
}

// Context is what the caller knows of the unit at decision time.
type Context struct {
	// RecentItems are the unit's recent items, most recent first; units the model
	// does not know are folded in from them, and they explain recommendations.
	RecentItems []string `json:"recent_items,omitempty" doc:"the unit's recent item ids, most recent first (at most 1000)"`
	// ConsentTier is the consent the unit granted, as the caller knows it: 1
	// functional, 2 personalization, 3 enhanced; 0 or absent: not stated. The
	// unit's stored consent (PUT /v1/units/ID/consent) wins when it is stricter
	// or when the request states none; without either, the unit has no consent.
	ConsentTier int `json:"consent_tier" doc:"1 functional, 2 personalization, 3 enhanced; 0 or absent: not stated (the stored consent decides, none without it). The stored consent wins when stricter."`
}

// MaxRecentItems bounds Context.RecentItems.
const MaxRecentItems = 1000

// Item is one item of a decision.
type Item struct {
	ID     string  `json:"id"`
	Score  float64 `json:"score"`
	Reason string  `json:"reason"`
}

// Decision is the answer to a decision request.
type Decision struct {
	ID           string  `json:"decision_id"`
	Journey      string  `json:"journey"`
	Variant      *string `json:"variant"` // nil for holdout and ineligible units
	Policy       string  `json:"policy"`  // personalized, control, holdout, fallback or ineligible
	Items        []Item  `json:"items"`
	ModelVersion string  `json:"model_version,omitempty"` // set when the model ranked the items
	LatencyMS    float64 `json:"latency_ms"`              // time to decide, before logging
	// Why is set for fallback and ineligible decisions: timeout, overload (the
	// scorer's queue could not be served within the budget), error, no_history,
	// model_not_loaded; consent, not_in_experiment, experiment_not_running,
	// frequency_cap, quiet_hours (these two show no items).
	Why string `json:"why,omitempty"`
	// Consent is the consent the decision was made under.
	Consent DecisionConsent `json:"consent"`

	used      []string    // the session items the model used
	explore   explorePlan // the exploration applied
	thompson  bool        // slots were filled by Thompson sampling over items
	explored  int         // slots filled by exploration
	diversity diversityApplied
}

// Provenance is why a decision showed what it showed, stored with it and
// answered by GET /v1/journeys/KEY/decisions/ID (each item also carries its
// reason). It is cleared when the unit is erased.
type Provenance struct {
	Consent DecisionConsent `json:"consent"`
	// SessionItems are the request's recent items the model used (those in its
	// catalog); empty unless the consent allowed the session's items.
	SessionItems []string `json:"session_items"`
	Model        string   `json:"model,omitempty"` // set when the model ranked the items
	ModelVersion string   `json:"model_version,omitempty"`
	Exploration  struct {
		experiment.Exploration
		// Applied is the exploration this decision got: "none", "epsilon_greedy"
		// or "thompson" (slots filled by Thompson sampling over items).
		Applied string `json:"applied"`
		// Stage is, under thompson, the unit's lifecycle stage: "new" (fewer known
		// recent items than min_history: Thompson sampling) or "established"
		// (ε-greedy).
		Stage         string `json:"stage,omitempty"`
		Thompson      bool   `json:"thompson_applied"` // slots were filled by Thompson sampling over items
		ExploredSlots int    `json:"explored_slots"`   // slots filled by exploration (ε-greedy or Thompson)
	} `json:"exploration"`
	// Rules are the journey's rules in force at the decision.
	Rules struct {
		Experiment    string              `json:"experiment"`
		ConsentTier   int                 `json:"consent_tier"` // the tier the journey needs to personalize
		K             int                 `json:"k"`
		LatencyBudget experiment.Duration `json:"latency_budget"`
		ControlPolicy string              `json:"control_policy"`
		// FeatureSet is the journey's signals for the decision's consent tier.
		FeatureSet   []string                 `json:"feature_set"`
		Diversity    experiment.Diversity     `json:"diversity"`
		FrequencyCap *experiment.FrequencyCap `json:"frequency_cap,omitempty"`
		QuietHours   *experiment.QuietHours   `json:"quiet_hours,omitempty"`
	} `json:"rules"`
	// Diversity is what the diversity constraint did to the model's list.
	Diversity diversityApplied `json:"diversity"`
}

func provenanceOf(l *loaded, dec *Decision) *Provenance {
	p := &Provenance{Consent: dec.Consent, SessionItems: dec.used, ModelVersion: dec.ModelVersion}
	if p.SessionItems == nil {
		p.SessionItems = []string{}
	}
	if dec.ModelVersion != "" {
		p.Model = l.j.Model
	}
	p.Exploration.Exploration, p.Exploration.Thompson, p.Exploration.ExploredSlots = l.j.Exploration, dec.thompson, dec.explored
	p.Exploration.Applied, p.Exploration.Stage = dec.explore.applied, dec.explore.stage
	if p.Exploration.Applied == "" {
		p.Exploration.Applied = ExploredNone // not personalized
	}
	p.Rules.Experiment, p.Rules.ConsentTier, p.Rules.K = l.exp.Key, l.j.ConsentTier, l.j.K
	p.Rules.LatencyBudget, p.Rules.ControlPolicy = l.j.LatencyBudget, l.j.ControlPolicy.Kind
	p.Rules.FeatureSet, p.Rules.Diversity = featureSet(l.j, dec.Consent.Tier), diversityOf(l.j)
	p.Rules.FrequencyCap, p.Rules.QuietHours = l.j.FrequencyCap, l.j.QuietHours
	p.Diversity = dec.diversity
	return p
}

// DecisionConsent is the consent a decision used and what it let the model see.
type DecisionConsent struct {
	Tier          int    `json:"tier"`                     // the tier in force: the stricter of the request's and the stored one
	Source        string `json:"source"`                   // "stored", "request" or "none"
	PolicyID      string `json:"policy_id,omitempty"`      // of the stored consent
	PolicyVersion string `json:"policy_version,omitempty"` // of the stored consent
	StoredVersion int    `json:"stored_version,omitempty"` // version of the stored consent
	// OptOutCategories are the item categories of the stored consent: no item of
	// them is shown (for models that carry item categories).
	OptOutCategories []string `json:"opt_out_categories,omitempty"`
	// Signals are the inputs the model was allowed: "session_items" (the request's
	// recent items) from tier 1, "stored_history" (the unit's trained vector) from
	// tier 2 unless the unit reset its profile or was erased after the model was
	// trained. Empty when the decision was not personalized.
	Signals []string `json:"signals"`
}

// Signals a decision may use (see experiment.DefaultFeatureSets).
const (
	SignalSessionItems  = experiment.SignalSessionItems
	SignalStoredHistory = experiment.SignalStoredHistory
	SignalAttributes    = experiment.SignalAttributes
)

// consentOf resolves the consent of a decision from the request and the stored state.
func consentOf(req Request, st store.UnitState) DecisionConsent {
	c := DecisionConsent{Tier: req.Context.ConsentTier, Source: "request", Signals: []string{}}
	if s := st.Consent; s != nil && (c.Tier == 0 || s.Tier < c.Tier) {
		c.Tier, c.Source = s.Tier, "stored"
	}
	if c.Tier == 0 && st.Consent == nil {
		c.Source = "none"
	}
	if s := st.Consent; s != nil {
		c.PolicyID, c.PolicyVersion, c.StoredVersion = s.PolicyID, s.PolicyVersion, s.Version
		c.OptOutCategories = s.OptOutCategories
	}
	return c
}

// signals returns the inputs consent c allows for a model created at trained:
// those the journey's feature set of c's tier declares, less the stored history
// when the unit reset its profile or was erased after the model was trained.
func signals(j *experiment.Journey, c DecisionConsent, st store.UnitState, trained time.Time) []string {
	out := []string{}
	forgot := st.Erased && !trained.After(st.ErasedAt) || !st.ResetAt.IsZero() && !trained.After(st.ResetAt)
	for _, s := range featureSet(j, c.Tier) {
		if s == SignalStoredHistory && forgot {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Decider serves journeys: assignment → holdout/control/ineligible → the control
// journey; treatment → the model's ranking within the latency budget, else the
// control journey (fallback). Every decision is logged; units that entered the
// experiment also get an exposure. It is safe for concurrent use.
type Decider struct {
	db     *store.DB
	models *Models
	opt    Options
	log    *store.DecisionLog

	loadMu   sync.Mutex // one load of a journey or popular list at a time (no stampede on expiry)
	rewardMu sync.Mutex // one read of an item click record at a time
	mu       sync.RWMutex
	journeys map[string]*loaded
	popular  map[string]*popularList
	rewards  map[string]*itemRewards

	statsMu sync.Mutex
	stats   map[string]*liveStats

	bg sync.WaitGroup // background reads of item click records

	closed atomic.Bool
}

// loaded is a journey with its experiment's compiled plan.
type loaded struct {
	j      *experiment.Journey
	exp    *experiment.Experiment
	plan   *assign.Plan
	at     time.Time
	fixed  []Item
	treats map[string]bool // variants that get the model
}

type popularList struct {
	items []Item
	at    time.Time
}

// New returns a Decider over db serving models. Close it before closing db.
// Unless the models' LoadOptions.Audit is set, their reloads are audited in db
// from now on (StoreAudit).
func New(db *store.DB, models *Models, opt Options) *Decider {
	opt.fill()
	if models != nil && db != nil {
		models.auditDefault(StoreAudit(db))
	}
	return &Decider{
		db: db, models: models, opt: opt, log: db.NewDecisionLog(opt.DecisionLog),
		journeys: map[string]*loaded{}, popular: map[string]*popularList{}, rewards: map[string]*itemRewards{}, stats: map[string]*liveStats{},
	}
}

// Models returns the models the Decider serves (nil when none were given).
func (d *Decider) Models() *Models { return d.models }

// Flush returns once every decision made before the call is stored.
func (d *Decider) Flush(ctx context.Context) error { return d.log.Flush(ctx) }

// Close flushes the decision log. It does not close the models or the store.
func (d *Decider) Close() error {
	d.closed.Store(true)
	d.bg.Wait()
	return d.log.Close()
}

// Invalidate drops the cached journey key (after a change in the registry)
// and its cached item click record (read again at its next decision).
func (d *Decider) Invalidate(key string) {
	d.mu.Lock()
	delete(d.journeys, key)
	delete(d.rewards, key)
	d.mu.Unlock()
}

func (d *Decider) journey(ctx context.Context, key string) (*loaded, error) {
	d.mu.RLock()
	l := d.journeys[key]
	d.mu.RUnlock()
	if l != nil && time.Since(l.at) < d.opt.CacheTTL {
		return l, nil
	}
	if l != nil && !d.loadMu.TryLock() {
		return l, nil // another request is reloading it: use the previous one meanwhile
	} else if l == nil {
		d.loadMu.Lock()
	}
	defer d.loadMu.Unlock()
	d.mu.RLock()
	l = d.journeys[key]
	d.mu.RUnlock()
	if l != nil && time.Since(l.at) < d.opt.CacheTTL {
		return l, nil
	}
	j, err := d.db.GetJourney(ctx, key)
	if err != nil {
		return nil, err
	}
	e, err := d.db.GetExperiment(ctx, j.Experiment)
	if err != nil {
		return nil, err
	}
	var h *experiment.Holdout
	if e.Holdout != "" {
		if h, err = d.db.GetHoldout(ctx, e.Holdout); err != nil {
			return nil, err
		}
	}
	plan, err := assign.Compile(e, h)
	if err != nil {
		return nil, err
	}
	l = &loaded{j: j, exp: e, plan: plan, at: time.Now(), treats: map[string]bool{}}
	for _, v := range e.Variants {
		if v.Name != j.Control {
			l.treats[v.Name] = true
		}
	}
	if j.ControlPolicy.Kind == experiment.ControlFixed {
		for _, it := range j.ControlPolicy.Items[:min(j.K, len(j.ControlPolicy.Items))] {
			l.fixed = append(l.fixed, Item{ID: it, Reason: "selected for everyone"})
		}
	}
	d.mu.Lock()
	d.journeys[key] = l
	d.mu.Unlock()
	return l, nil
}

// controlItems returns the control journey of l.
func (d *Decider) controlItems(ctx context.Context, l *loaded) ([]Item, error) {
	c := l.j.ControlPolicy
	if c.Kind == experiment.ControlFixed {
		return l.fixed, nil
	}
	key := c.EventType + "/" + strconv.Itoa(c.Days) + "/" + strconv.Itoa(l.j.K)
	d.mu.RLock()
	p := d.popular[key]
	d.mu.RUnlock()
	if p != nil && time.Since(p.at) < d.opt.PopularTTL {
		return p.items, nil
	}
	if p != nil && !d.loadMu.TryLock() {
		return p.items, nil // another request is reloading it: use the previous one meanwhile
	} else if p == nil {
		d.loadMu.Lock()
	}
	defer d.loadMu.Unlock()
	d.mu.RLock()
	p = d.popular[key]
	d.mu.RUnlock()
	if p != nil && time.Since(p.at) < d.opt.PopularTTL {
		return p.items, nil
	}
	since := d.opt.Now().Add(-time.Duration(c.Days) * 24 * time.Hour)
	counts, err := d.db.PopularItems(ctx, c.EventType, since, l.j.K)
	if err != nil {
		return nil, err
	}
	reason := "popular in the last " + strconv.Itoa(c.Days) + " days"
	items := make([]Item, len(counts))
	for i, ct := range counts {
		items[i] = Item{ID: ct.Item, Score: float64(ct.Count), Reason: reason}
	}
	d.mu.Lock()
	d.popular[key] = &popularList{items: items, at: time.Now()}
	d.mu.Unlock()
	return items, nil
}

// Decide answers one decision request for journey key and logs it. Policies, in
// order: consent below the journey's tier, a stopped or draft experiment →
// ineligible (control journey, no exposure); the journey's quiet hours or the
// unit at its frequency cap → ineligible with no items (see fatigue); a unit
// outside the experiment → ineligible (control journey, no exposure); in
// the holdout → holdout (control journey, holdout exposure); control variant →
// control; a treatment variant → the model's top k within the latency budget
// (personalized), or the control journey when the scorer misses the budget,
// fails or cannot score the unit (fallback; the exposure keeps the assigned
// variant: intention to treat).
func (d *Decider) Decide(ctx context.Context, key string, req Request) (*Decision, error) {
	const op = "journey.Decide"
	if d.closed.Load() {
		return nil, experiment.E(op, experiment.Unavailable, experiment.Errorf("the decider is closed"))
	}
	start := time.Now()
	if len(req.Context.RecentItems) > MaxRecentItems {
		return nil, experiment.E(op, experiment.TooLarge, experiment.Field("context.recent_items"),
			experiment.Errorf("at most %d items, got %d", MaxRecentItems, len(req.Context.RecentItems)))
	}
	if p := experiment.IdentProblem(req.Unit); p != "" {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("unit"), experiment.Errorf("%s", p))
	}
	for i, it := range req.Context.RecentItems {
		if p := experiment.IdentProblem(it); p != "" {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("context.recent_items["+strconv.Itoa(i)+"]"), experiment.Errorf("%s", p))
		}
	}
	if req.Context.ConsentTier < 0 || req.Context.ConsentTier > experiment.ConsentEnhanced {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("context.consent_tier"),
			experiment.Errorf("must be 0 (not stated), 1 (functional), 2 (personalization) or 3 (enhanced), got %d", req.Context.ConsentTier))
	}
	l, err := d.journey(ctx, key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	st, err := d.db.UnitState(ctx, req.Unit)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	consent := consentOf(req, st)
	var a experiment.Assignment
	if err := l.plan.AssignTo(&a, req.Unit); err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("unit"), experiment.Errorf("must be a non-empty UTF-8 string"))
	}
	dec := &Decision{ID: d.opt.NewID(), Journey: key, Consent: consent}
	tired, err := d.fatigue(ctx, l, req.Unit)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	var x *experiment.Exposure // nil: the unit did not enter the experiment
	switch {
	case consent.Tier < l.j.ConsentTier:
		dec.Policy, dec.Why = experiment.PolicyIneligible, "consent"
	case l.exp.Status != experiment.Running:
		dec.Policy, dec.Why = experiment.PolicyIneligible, "experiment_not_running"
	case tired != "":
		dec.Policy, dec.Why = experiment.PolicyIneligible, tired
	case a.Holdout != nil && a.Holdout.InHoldout:
		dec.Policy = experiment.PolicyHoldout
		x = &experiment.Exposure{InHoldout: true, HoldoutVersion: a.Holdout.Version}
	case !a.InExperiment:
		dec.Policy, dec.Why = experiment.PolicyIneligible, "not_in_experiment"
	default:
		v := *a.Variant
		dec.Variant = &v
		x = &experiment.Exposure{Variant: v}
		if a.Holdout != nil {
			x.HoldoutVersion = a.Holdout.Version
		}
		if !l.treats[v] {
			dec.Policy = experiment.PolicyControl
			break
		}
		items, version, why := d.personalize(ctx, l, dec, req, st, start)
		if why != "" {
			dec.Policy, dec.Why = experiment.PolicyFallback, why
			break
		}
		dec.Policy, dec.Items, dec.ModelVersion = experiment.PolicyPersonalized, items, version
	}
	if dec.Policy != experiment.PolicyPersonalized && !isFatigue(dec.Why) {
		if dec.Items, err = d.controlItems(ctx, l); err != nil {
			return nil, experiment.E(op, err)
		}
		dec.Items = d.withoutOptedOut(l, dec.Items, consent.OptOutCategories)
	}
	if dec.Items == nil {
		dec.Items = []Item{}
	}
	dec.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	if err := d.record(ctx, l, req.Unit, dec, x); err != nil {
		return nil, experiment.E(op, err)
	}
	d.observe(key, dec)
	return dec, nil
}

// withoutOptedOut drops the items of the opted-out categories (as the journey's
// model categorizes them) from a control list.
func (d *Decider) withoutOptedOut(l *loaded, items []Item, cats []string) []Item {
	if len(cats) == 0 {
		return items
	}
	if d.models == nil {
		return items
	}
	m, ok := d.models.Get(l.j.Model)
	if !ok {
		return items
	}
	out := make([]Item, 0, len(items))
	for _, it := range items {
		if c := m.Model.CategoryOf(it.ID); c == "" || !slices.Contains(cats, c) {
			out = append(out, it)
		}
	}
	return out
}

// personalize ranks the model's items for the unit; why is non-empty when it
// could not (the caller falls back to the control journey).
func (d *Decider) personalize(ctx context.Context, l *loaded, dec *Decision, req Request, st store.UnitState, start time.Time) (items []Item, version, why string) {
	id := dec.ID
	m, ok := d.models.Get(l.j.Model)
	if !ok {
		return nil, "", "model_not_loaded"
	}
	parent := ctx // the item click record is read without the scorer's deadline
	ctx, cancel := context.WithDeadline(ctx, start.Add(time.Duration(l.j.LatencyBudget)))
	defer cancel()
	sm := m.Model
	dec.Consent.Signals = signals(l.j, dec.Consent, st, sm.Meta.Created)
	unit, recent := req.Unit, req.Context.RecentItems
	if !slices.Contains(dec.Consent.Signals, SignalStoredHistory) {
		unit = "" // the session's items only: folded in, as for a unit the model does not know
	}
	if !slices.Contains(dec.Consent.Signals, SignalSessionItems) {
		recent = nil // neither used, nor excluded, nor explaining
	}
	q, _, err := sm.Query(unit, recent)
	if err != nil {
		if experiment.KindOf(err) == experiment.InsufficientData {
			return nil, "", "no_history"
		}
		d.opt.Logger.Warn("journey query vector", "journey", l.j.Key, "err", err)
		return nil, "", "error"
	}
	history := make([]int32, 0, len(recent))
	for _, it := range recent {
		if i, ok := sm.ItemIndex(it); ok {
			history = append(history, i)
			dec.used = append(dec.used, it)
		}
	}
	rng := mrand.New(mrand.NewPCG(d.opt.Seed, fnv64(id)))
	plan := planExploration(l.j.Exploration, l.j.K, len(history))
	var rewards map[string]bandit.ArmStats
	if plan.applied == ExploredThompson {
		if rewards, err = d.rewardsOf(parent, l); err != nil {
			d.opt.Logger.Warn("journey item rewards", "journey", l.j.Key, "err", err)
			plan.applied, plan.slots = ExploredNone, 0 // greedy: the provenance says so
		}
	}
	dec.explore = plan
	exclude := history // never recommended: the history and the opted-out categories
	for _, c := range dec.Consent.OptOutCategories {
		if in := sm.ItemsIn(c); len(in) > 0 {
			if len(exclude) == len(history) {
				exclude = slices.Clone(history)
			}
			exclude = append(exclude, in...)
		}
	}
	deadline, _ := ctx.Deadline()
	if !m.admit(time.Until(deadline)) {
		return nil, "", "overload"
	}
	t0 := time.Now()
	scored, err := m.batcher.Score(ctx, q, max(plan.candidates(l.j.K), candidates(l.j)), exclude)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	m.done(time.Since(t0), err == nil)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return nil, "", "timeout"
		}
		d.opt.Logger.Warn("journey scorer", "journey", l.j.Key, "model", m.Name, "err", err)
		return nil, "", "error"
	}
	div := diversify(sm, l.j, scored, &dec.diversity) // the diversity constraint chooses first; exploration acts on its list
	switch plan.applied {
	case ExploredEpsilon:
		scored = explore(sm, q, div, exclude, plan.eps, rng)
	case ExploredThompson:
		scored = thompsonItems(sm, withRest(div, scored), l.j.K, plan.slots, rewards, rng)
		dec.thompson = true
	default:
		scored = div
	}
	items = make([]Item, len(scored))
	for i, s := range scored {
		idx := s.Item
		r := reason(sm, s, history)
		if idx < 0 {
			idx = -idx - 1
			dec.explored++
			if dec.thompson {
				r = thompsonReason(rewards[sm.ItemIDs[idx]])
			}
		}
		items[i] = Item{ID: sm.ItemIDs[idx], Score: float64(s.Score), Reason: r}
	}
	return items, m.Version(), ""
}

// exploredReason explains a slot filled by exploration.
const exploredReason = "something new to explore"

// explore replaces each slot, with probability ε, by a uniformly drawn catalog
// item that is neither in the list nor in the history (ε-greedy exploration,
// Sutton & Barto 2018 §2.2), scored with the same s = q·y_i + b_i. An explored
// item i is returned as Item = −(i+1), so that the caller can tell it apart.
func explore(m *scorer.Model, q []float32, scored []scorer.Scored, history []int32, eps float64, rng *mrand.Rand) []scorer.Scored {
	n := m.NItems()
	taken := make(map[int32]bool, len(scored)+len(history))
	for _, s := range scored {
		taken[s.Item] = true
	}
	for _, h := range history {
		taken[h] = true
	}
	if len(taken) >= n {
		return scored
	}
	for i := range scored {
		if rng.Float64() >= eps {
			continue
		}
		var it int32
		for tries := 0; tries < 64; tries++ {
			it = int32(rng.IntN(n))
			if !taken[it] {
				break
			}
		}
		if taken[it] {
			continue
		}
		taken[it] = true
		scored[i] = scorer.Scored{Item: -(it + 1), Score: score(m, q, it)}
	}
	return scored
}

func score(m *scorer.Model, q []float32, it int32) float32 {
	y := m.Item(int(it))
	var s float32
	for j, v := range y {
		s += v * q[j]
	}
	if m.Bias != nil {
		s += m.Bias[it]
	}
	return s
}

// reason explains a recommendation: the history item most similar to it.
func reason(m *scorer.Model, s scorer.Scored, history []int32) string {
	if s.Item < 0 {
		return exploredReason
	}
	if best, _, ok := m.Nearest(s.Item, history); ok {
		return "because you viewed " + m.ItemIDs[best]
	}
	return "recommended for you"
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// record logs the exposure (when the unit entered the experiment) and the decision
// row, the two commits running side by side, and returns once both are committed:
// an answered decision is stored, across crashes too.
func (d *Decider) record(ctx context.Context, l *loaded, unit string, dec *Decision, x *experiment.Exposure) error {
	now := d.opt.Now().UTC()
	var xerr error
	var wg sync.WaitGroup
	if x != nil {
		x.Experiment, x.Unit, x.TS, x.Source = l.exp.Key, unit, now, "journey"
		wg.Add(1)
		go func() {
			defer wg.Done()
			xerr = d.db.LogExposures(ctx, []experiment.Exposure{*x})
		}()
	}
	items, err := json.Marshal(dec.Items)
	if err != nil {
		return err
	}
	row := store.Decision{
		ID: dec.ID, TS: now, Journey: l.j.Key, Experiment: l.exp.Key, Unit: unit, Policy: dec.Policy,
		Reason: dec.Why, Items: items, ModelVersion: dec.ModelVersion, LatencyMS: dec.LatencyMS,
	}
	if dec.Variant != nil {
		row.Variant = *dec.Variant
	}
	if row.Provenance, err = json.Marshal(provenanceOf(l, dec)); err != nil {
		return err
	}
	if x != nil {
		row.InHoldout, row.HoldoutVersion = x.InHoldout, x.HoldoutVersion
	}
	derr := d.log.Log(ctx, row)
	wg.Wait()
	return errors.Join(xerr, derr)
}
