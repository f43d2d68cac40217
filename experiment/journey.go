package experiment

import (
	"math"
	"strconv"
	"time"
)

// The policies of a journey decision: which experience a unit got and why.
const (
	PolicyPersonalized = "personalized" // treatment arm, ranked by the model
	PolicyControl      = "control"      // control arm: the control journey
	PolicyHoldout      = "holdout"      // in the permanent holdout: the control journey
	PolicyFallback     = "fallback"     // treatment arm, but the scorer missed its budget or failed: the control journey
	PolicyIneligible   = "ineligible"   // consent below the journey's tier, or outside the experiment: the control journey, not entered
)

// The control policies of a journey.
const (
	ControlPopular = "popular" // the most frequent items of recent events of one type
	ControlFixed   = "fixed"   // a fixed list of items
)

// The exploration policies of a journey.
const (
	ExploreEpsilonGreedy = "epsilon_greedy"
	ExploreThompson      = "thompson"
	ExploreNone          = "none"
)

// Consent tiers a unit may have granted; personalization needs ConsentPersonalization
// unless a journey says otherwise.
const (
	ConsentNone            = 0
	ConsentFunctional      = 1
	ConsentPersonalization = 2
)

// ControlPolicy is the non-personalized journey: what control, holdout, fallback and
// ineligible units are shown.
type ControlPolicy struct {
	Kind      string   `json:"kind"`                 // "popular" or "fixed"
	EventType string   `json:"event_type,omitempty"` // popular: the event type counted, default "view"
	Days      int      `json:"days,omitempty"`       // popular: the window in days, default 7
	Items     []string `json:"items,omitempty"`      // fixed: the items, in order
}

// Exploration is how a personalized list leaves room for items the model would not
// pick, so that it keeps learning and does not narrow onto a few items.
type Exploration struct {
	Kind string `json:"kind"` // "epsilon_greedy" (default), "thompson" or "none"
	// Epsilon is the share of slots given to a random catalog item: with
	// epsilon_greedy for every unit (default 0.05), with thompson for
	// established units, those with at least MinHistory known recent items
	// (default 0: established units are ranked greedily).
	Epsilon float64 `json:"epsilon,omitempty"`
	// MinHistory: with thompson, units with fewer known recent items than this are
	// new: their exploration slots are filled by Thompson sampling over items;
	// the others are established and get ε-greedy exploration (default 5).
	MinHistory int `json:"min_history,omitempty"`
	// Budget is, with thompson, the share of a new unit's k slots that Thompson
	// sampling may fill: ⌊budget·k⌋ slots, at least one while budget > 0
	// (default 0.2). The other slots keep the model's greedy order.
	Budget float64 `json:"budget,omitempty"`
	// RewardEvent is, with thompson, the event type that counts as a click on an
	// item shown (its properties' "item"); default "click".
	RewardEvent string `json:"reward_event,omitempty"`
}

// Journey is a personalized journey served under an experiment: control-arm,
// holdout and ineligible units get the control policy; treatment units get the
// model's ranking. A journey orders content only: it has no price field, and
// none may be added (personalized prices are unfair to the units charged more and
// legally risky; see docs/journeys.md).
type Journey struct {
	Key           string        `json:"key"`
	Name          string        `json:"name,omitempty"`
	Description   string        `json:"description,omitempty"`
	Experiment    string        `json:"experiment"`        // the experiment that randomizes units (must exist)
	Control       string        `json:"control,omitempty"` // the control variant, default the experiment's first
	Holdout       string        `json:"holdout,omitempty"` // the experiment's permanent holdout, or empty
	K             int           `json:"k"`                 // items per decision, default 10
	ControlPolicy ControlPolicy `json:"control_policy"`
	Model         string        `json:"model"`          // the personalization model's name
	LatencyBudget Duration      `json:"latency_budget"` // scorer deadline, default 120ms
	Exploration   Exploration   `json:"exploration"`
	ConsentTier   int           `json:"consent_tier"` // tier personalization needs, default 2
	// Diversity constrains the personalized list (default none).
	Diversity Diversity `json:"diversity"`
	// FrequencyCap and QuietHours make a unit ineligible for a while (nil: none).
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	QuietHours   *QuietHours   `json:"quiet_hours,omitempty"`
	// FeatureSets are the signals the model may use at each consent tier (1, 2,
	// 3); a tier left out gets DefaultFeatureSets' list.
	FeatureSets map[int][]string `json:"feature_sets"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

// Journey defaults.
const (
	DefaultJourneyK        = 10
	DefaultLatencyBudget   = 120 * time.Millisecond
	DefaultEpsilon         = 0.05
	DefaultMinHistory      = 5
	DefaultExploreBudget   = 0.2
	DefaultRewardEvent     = "click"
	DefaultPopularDays     = 7
	DefaultPopularEvent    = "view"
	MaxJourneyK            = 1000
	MaxFixedControlItems   = 10000
	MaxLatencyBudget       = 10 * time.Second
	DefaultJourneyConsent  = ConsentPersonalization
	maxJourneyConsentLevel = 9
)

// ApplyDefaults fills the documented defaults (the control variant is filled by
// the registry, which knows the experiment).
func (j *Journey) ApplyDefaults() {
	if j.K == 0 {
		j.K = DefaultJourneyK
	}
	if j.LatencyBudget == 0 {
		j.LatencyBudget = Duration(DefaultLatencyBudget)
	}
	if j.Exploration.Kind == "" {
		j.Exploration.Kind = ExploreEpsilonGreedy
	}
	if x := &j.Exploration; x.Kind == ExploreEpsilonGreedy && x.Epsilon == 0 {
		x.Epsilon = DefaultEpsilon
	}
	if x := &j.Exploration; x.Kind == ExploreThompson {
		if x.MinHistory == 0 {
			x.MinHistory = DefaultMinHistory
		}
		if x.Budget == 0 {
			x.Budget = DefaultExploreBudget
		}
		if x.RewardEvent == "" {
			x.RewardEvent = DefaultRewardEvent
		}
	}
	if j.ConsentTier == 0 {
		j.ConsentTier = DefaultJourneyConsent
	}
	j.applyServingDefaults()
	if j.ControlPolicy.Kind == ControlPopular {
		if j.ControlPolicy.EventType == "" {
			j.ControlPolicy.EventType = DefaultPopularEvent
		}
		if j.ControlPolicy.Days == 0 {
			j.ControlPolicy.Days = DefaultPopularDays
		}
	}
}

// Validate checks a journey after ApplyDefaults and returns an Invalid error naming
// the first offending field. Whether the experiment, holdout and control variant
// exist is checked by the registry.
func (j *Journey) Validate() error {
	const op = "journey.Validate"
	if !ValidKey(j.Key) {
		return invalid(op, "key", "must be 1-128 letters, digits, '_', '.' or '-', got %q", j.Key)
	}
	if !ValidKey(j.Experiment) {
		return invalid(op, "experiment", "must name a registered experiment, got %q", j.Experiment)
	}
	if j.Holdout != "" && !ValidKey(j.Holdout) {
		return invalid(op, "holdout", "invalid holdout name %q", j.Holdout)
	}
	if j.K < 1 || j.K > MaxJourneyK {
		return invalid(op, "k", "must be in [1, %d], got %d", MaxJourneyK, j.K)
	}
	if !ValidKey(j.Model) {
		return invalid(op, "model", "must name a model (1-128 letters, digits, '_', '.' or '-'), got %q", j.Model)
	}
	if b := time.Duration(j.LatencyBudget); b <= 0 || b > MaxLatencyBudget {
		return invalid(op, "latency_budget", "must be in (0, %s], got %s", MaxLatencyBudget, b)
	}
	switch c := j.ControlPolicy; c.Kind {
	case ControlPopular:
		if !ValidKey(c.EventType) {
			return invalid(op, "control_policy.event_type", "invalid event type %q", c.EventType)
		}
		if c.Days < 1 || c.Days > 3660 {
			return invalid(op, "control_policy.days", "must be in [1, 3660], got %d", c.Days)
		}
		if len(c.Items) > 0 {
			return invalid(op, "control_policy.items", `only a "fixed" control policy lists items`)
		}
	case ControlFixed:
		if len(c.Items) == 0 {
			return invalid(op, "control_policy.items", `a "fixed" control policy needs at least one item`)
		}
		if len(c.Items) > MaxFixedControlItems {
			return invalid(op, "control_policy.items", "at most %d items, got %d", MaxFixedControlItems, len(c.Items))
		}
		seen := make(map[string]bool, len(c.Items))
		for i, it := range c.Items {
			f := "control_policy.items[" + strconv.Itoa(i) + "]"
			if it == "" {
				return invalid(op, f, "must not be empty")
			}
			if p := IdentProblem(it); p != "" {
				return invalid(op, f, "%s", p)
			}
			if seen[it] {
				return invalid(op, f, "duplicate item %q", it)
			}
			seen[it] = true
		}
		if c.EventType != "" || c.Days != 0 {
			return invalid(op, "control_policy", `event_type and days belong to a "popular" control policy`)
		}
	case "":
		return invalid(op, "control_policy.kind", `required: "popular" or "fixed"`)
	default:
		return invalid(op, "control_policy.kind", `must be "popular" or "fixed", got %q`, c.Kind)
	}
	switch x := j.Exploration; x.Kind {
	case ExploreEpsilonGreedy:
		if math.IsNaN(x.Epsilon) || x.Epsilon < 0 || x.Epsilon > 1 {
			return invalid(op, "exploration.epsilon", "must be in [0, 1], got %g", x.Epsilon)
		}
		if x.Budget != 0 || x.RewardEvent != "" {
			return invalid(op, "exploration.budget", "budget and reward_event belong to thompson exploration")
		}
	case ExploreThompson:
		if x.MinHistory < 1 {
			return invalid(op, "exploration.min_history", "must be at least 1, got %d", x.MinHistory)
		}
		if math.IsNaN(x.Epsilon) || x.Epsilon < 0 || x.Epsilon > 1 {
			return invalid(op, "exploration.epsilon", "must be in [0, 1], got %g", x.Epsilon)
		}
		if math.IsNaN(x.Budget) || x.Budget < 0 || x.Budget > 1 {
			return invalid(op, "exploration.budget", "must be in [0, 1], got %g", x.Budget)
		}
		if p := IdentProblem(x.RewardEvent); p != "" {
			return invalid(op, "exploration.reward_event", "%s", p)
		}
	case ExploreNone:
	default:
		return invalid(op, "exploration.kind", `must be "epsilon_greedy", "thompson" or "none", got %q`, x.Kind)
	}
	if j.ConsentTier < 1 || j.ConsentTier > maxJourneyConsentLevel {
		return invalid(op, "consent_tier", "must be in [1, %d], got %d", maxJourneyConsentLevel, j.ConsentTier)
	}
	return j.validateServing(op)
}
