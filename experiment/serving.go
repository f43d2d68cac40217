package experiment

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// The diversity constraints of a journey's ranking.
const (
	DiversityNone          = "none"           // the model's order (default)
	DiversityCategoryQuota = "category_quota" // at most MaxPerCategory items of one category
	DiversityMMR           = "mmr"            // maximal marginal relevance with trade-off Lambda
)

// Diversity defaults and bounds.
const (
	DefaultMMRLambda        = 0.7
	DefaultCandidatesPerK   = 4 // candidates ranked before re-ranking: 4·k by default
	MaxDiversityCandidates  = 5000
	DefaultGiniRiseDays     = 3
	MaxFrequencyCapDecision = 100000
)

// Diversity is a constraint on the personalized list so that it does not narrow
// onto a few items or one category: the model ranks Candidates items, and the
// list is chosen among them.
type Diversity struct {
	Kind string `json:"kind"` // "none" (default), "category_quota" or "mmr"
	// MaxPerCategory: category_quota (and mmr, when set) keeps at most this many
	// items of one category (as the model's item_categories name them; items
	// without a category are not limited).
	MaxPerCategory int `json:"max_per_category,omitempty"`
	// Lambda: mmr's trade-off between relevance and novelty, in (0, 1]; 1 is the
	// model's order. Default 0.7.
	Lambda float64 `json:"lambda,omitempty"`
	// Candidates is how many of the model's top items the list is chosen from,
	// in [k, 5000]; default 4·k.
	Candidates int `json:"candidates,omitempty"`
}

// FrequencyCap limits how many decisions that show items one unit gets from a
// journey over a sliding window: with Max decisions in (now − Window, now], the
// next is ineligible ("frequency_cap").
type FrequencyCap struct {
	Max    int      `json:"max"`
	Window Duration `json:"window"`
}

// QuietHours is a daily span of local time during which a journey decides
// nothing for anyone ("quiet_hours"): [Start, End) in TimeZone, wrapping past
// midnight when End is before Start ("22:00" to "07:00").
type QuietHours struct {
	Start    string `json:"start"`               // "HH:MM"
	End      string `json:"end"`                 // "HH:MM", exclusive
	TimeZone string `json:"time_zone,omitempty"` // IANA name, default "UTC"
}

// Contains reports whether t falls in the quiet hours. q must be valid.
func (q *QuietHours) Contains(t time.Time) bool {
	loc, err := time.LoadLocation(q.tz())
	if err != nil {
		panic("experiment: QuietHours.Contains on an invalid time zone: " + err.Error())
	}
	s, _ := clockMinutes(q.Start)
	e, _ := clockMinutes(q.End)
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	if s <= e {
		return m >= s && m < e
	}
	return m >= s || m < e
}

func (q *QuietHours) tz() string {
	if q.TimeZone == "" {
		return "UTC"
	}
	return q.TimeZone
}

// clockMinutes parses "HH:MM" into minutes after midnight.
func clockMinutes(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// The signals a journey may give its model, and the lowest consent tier that
// may allow each: a journey's feature sets can narrow consent, never widen it.
const (
	SignalSessionItems  = "session_items"  // the request's recent items (tier 1)
	SignalStoredHistory = "stored_history" // the unit's stored history: its trained vector (tier 2)
	SignalAttributes    = "attributes"     // the unit's stored attributes, such as location (tier 3)
)

var signalTier = map[string]int{SignalSessionItems: ConsentFunctional, SignalStoredHistory: ConsentPersonalization, SignalAttributes: ConsentEnhanced}

// DefaultFeatureSets is the mapping of consent tiers to signals journeys get
// unless they declare their own: tier 1 the session's items, tiers 2 and 3 the
// stored history too.
func DefaultFeatureSets() map[int][]string {
	return map[int][]string{
		ConsentFunctional:      {SignalSessionItems},
		ConsentPersonalization: {SignalSessionItems, SignalStoredHistory},
		ConsentEnhanced:        {SignalSessionItems, SignalStoredHistory},
	}
}

// validateServing checks the diversity, fatigue and feature-set fields of a journey.
func (j *Journey) validateServing(op string) error {
	switch x := j.Diversity; x.Kind {
	case DiversityNone:
		if x.MaxPerCategory != 0 || x.Lambda != 0 || x.Candidates != 0 {
			return invalid(op, "diversity", `max_per_category, lambda and candidates belong to "category_quota" or "mmr"`)
		}
	case DiversityCategoryQuota, DiversityMMR:
		if x.Kind == DiversityCategoryQuota && x.MaxPerCategory < 1 {
			return invalid(op, "diversity.max_per_category", "must be at least 1, got %d", x.MaxPerCategory)
		}
		if x.MaxPerCategory < 0 || x.MaxPerCategory > j.K {
			return invalid(op, "diversity.max_per_category", "must be in [0, k = %d], got %d", j.K, x.MaxPerCategory)
		}
		if x.Kind == DiversityCategoryQuota && x.Lambda != 0 {
			return invalid(op, "diversity.lambda", `belongs to "mmr"`)
		}
		if x.Kind == DiversityMMR && (math.IsNaN(x.Lambda) || x.Lambda <= 0 || x.Lambda > 1) {
			return invalid(op, "diversity.lambda", "must be in (0, 1], got %g", x.Lambda)
		}
		if x.Candidates < j.K || x.Candidates > MaxDiversityCandidates {
			return invalid(op, "diversity.candidates", "must be in [k = %d, %d], got %d", j.K, MaxDiversityCandidates, x.Candidates)
		}
	default:
		return invalid(op, "diversity.kind", `must be "none", "category_quota" or "mmr", got %q`, x.Kind)
	}
	if c := j.FrequencyCap; c != nil {
		if c.Max < 1 || c.Max > MaxFrequencyCapDecision {
			return invalid(op, "frequency_cap.max", "must be in [1, %d], got %d", MaxFrequencyCapDecision, c.Max)
		}
		if w := time.Duration(c.Window); w < time.Minute || w > 366*24*time.Hour {
			return invalid(op, "frequency_cap.window", "must be in [1m, 8784h], got %s", w)
		}
	}
	if q := j.QuietHours; q != nil {
		s, ok := clockMinutes(q.Start)
		if !ok {
			return invalid(op, "quiet_hours.start", `must be a time "HH:MM", got %q`, q.Start)
		}
		e, ok := clockMinutes(q.End)
		if !ok {
			return invalid(op, "quiet_hours.end", `must be a time "HH:MM", got %q`, q.End)
		}
		if s == e {
			return invalid(op, "quiet_hours.end", "must differ from start (%s)", q.Start)
		}
		if _, err := time.LoadLocation(q.tz()); err != nil || q.TimeZone == "Local" {
			return invalid(op, "quiet_hours.time_zone", "must be an IANA time zone name, got %q", q.TimeZone)
		}
	}
	for tier, sigs := range j.FeatureSets {
		f := "feature_sets." + strconv.Itoa(tier)
		if tier < ConsentFunctional || tier > ConsentEnhanced {
			return invalid(op, f, "tiers are 1, 2 and 3, got %d", tier)
		}
		for i, s := range sigs {
			fi := f + "[" + strconv.Itoa(i) + "]"
			min, ok := signalTier[s]
			if !ok {
				return invalid(op, fi, `must be "session_items", "stored_history" or "attributes", got %q`, s)
			}
			if tier < min {
				return invalid(op, fi, "%s needs consent tier %d or above, declared for tier %d", s, min, tier)
			}
			if slices.Contains(sigs[:i], s) {
				return invalid(op, fi, "duplicate signal %q", s)
			}
		}
	}
	return nil
}

// applyServingDefaults fills the defaults of the diversity and feature-set fields.
func (j *Journey) applyServingDefaults() {
	if j.Diversity.Kind == "" {
		j.Diversity.Kind = DiversityNone
	}
	if j.Diversity.Kind == DiversityMMR && j.Diversity.Lambda == 0 {
		j.Diversity.Lambda = DefaultMMRLambda
	}
	if j.Diversity.Kind != DiversityNone && j.Diversity.Candidates == 0 {
		j.Diversity.Candidates = min(DefaultCandidatesPerK*j.K, MaxDiversityCandidates)
	}
	fs := DefaultFeatureSets()
	for tier, sigs := range j.FeatureSets {
		fs[tier] = slices.Clone(sigs) // a declared tier replaces the default; the caller's map is not changed
	}
	j.FeatureSets = fs
}
