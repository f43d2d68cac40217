package experiment

import (
	"fmt"
	"time"
)

// ConsentEnhanced is the tier that lets a journey use a unit's attributes
// (location, plan, …) besides its history.
const ConsentEnhanced = 3

// Consent purposes a unit may grant.
const (
	PurposePersonalization = "personalization"
	PurposeAnalytics       = "analytics"
	PurposeAds             = "ads"
)

// Limits of a consent record.
const (
	MaxConsentCategories = 100
	MaxConsentChannels   = 20
)

// Consent is one version of a unit's consent, as PUT /v1/units/ID/consent records
// it. Every change is a new version; none is overwritten.
//
// Tiers: 0 none, 1 functional (a journey may use the session's recent items only),
// 2 personalization (also the unit's stored history: its trained vector), 3
// enhanced (also its attributes). Tier 2 or 3 needs the purpose
// "personalization".
type Consent struct {
	Unit             string    `json:"unit"`
	Version          int       `json:"version" doc:"1 for the first record of the unit, then one more per change"`
	Tier             int       `json:"tier" doc:"0 none, 1 functional, 2 personalization, 3 enhanced"`
	Purposes         []string  `json:"purposes" doc:"what the unit agreed to: personalization, analytics, ads"`
	OptOutCategories []string  `json:"opt_out_categories" doc:"item categories never to be recommended to the unit (e.g. health)"`
	Channels         []string  `json:"channels" doc:"channels the consent covers (web, app, email, …)"`
	PolicyID         string    `json:"policy_id" doc:"the privacy policy the unit agreed to"`
	PolicyVersion    string    `json:"policy_version" doc:"its version"`
	GrantedAt        time.Time `json:"granted_at" doc:"when the unit agreed (RFC 3339); default the time it is recorded"`
	RecordedAt       time.Time `json:"recorded_at"`
}

// Allows reports whether c grants purpose p.
func (c *Consent) Allows(p string) bool {
	for _, q := range c.Purposes {
		if q == p {
			return true
		}
	}
	return false
}

// Validate checks a consent record as sent (Version and RecordedAt are the
// store's): Invalid naming the field.
func (c *Consent) Validate() error {
	const op = "experiment.Consent"
	bad := func(f string, format string, a ...any) error {
		return E(op, Invalid, Field(f), Errorf(format, a...))
	}
	if c.Unit == "" {
		return bad("unit", "is required")
	}
	if p := IdentProblem(c.Unit); p != "" {
		return bad("unit", "%s", p)
	}
	if c.Tier < ConsentNone || c.Tier > ConsentEnhanced {
		return bad("tier", "must be 0 (none), 1 (functional), 2 (personalization) or 3 (enhanced), got %d", c.Tier)
	}
	seen := map[string]bool{}
	for i, p := range c.Purposes {
		switch p {
		case PurposePersonalization, PurposeAnalytics, PurposeAds:
		default:
			return bad(fmt.Sprintf("purposes[%d]", i), "must be personalization, analytics or ads, got %q", p)
		}
		if seen[p] {
			return bad(fmt.Sprintf("purposes[%d]", i), "%q is listed twice", p)
		}
		seen[p] = true
	}
	if c.Tier >= ConsentPersonalization && !seen[PurposePersonalization] {
		return bad("purposes", "tier %d needs the purpose \"personalization\"", c.Tier)
	}
	if err := identList("opt_out_categories", c.OptOutCategories, MaxConsentCategories); err != nil {
		return err
	}
	if err := identList("channels", c.Channels, MaxConsentChannels); err != nil {
		return err
	}
	if c.PolicyID == "" {
		return bad("policy_id", "is required: the policy the unit agreed to")
	}
	if p := IdentProblem(c.PolicyID); p != "" {
		return bad("policy_id", "%s", p)
	}
	if c.PolicyVersion == "" {
		return bad("policy_version", "is required")
	}
	if p := IdentProblem(c.PolicyVersion); p != "" {
		return bad("policy_version", "%s", p)
	}
	return nil
}

func identList(field string, xs []string, max int) error {
	if len(xs) > max {
		return E("experiment.Consent", Invalid, Field(field), Errorf("at most %d, got %d", max, len(xs)))
	}
	for i, x := range xs {
		if x == "" {
			return E("experiment.Consent", Invalid, Field(fmt.Sprintf("%s[%d]", field, i)), Errorf("must not be empty"))
		}
		if p := IdentProblem(x); p != "" {
			return E("experiment.Consent", Invalid, Field(fmt.Sprintf("%s[%d]", field, i)), Errorf("%s", p))
		}
	}
	return nil
}

// PendingErasure is a unit's erasure that a forwarder still has to apply to
// its warehouse: the raw id, which the warehouse's rows still carry, the
// pseudonym that replaced it in the store, and when it was requested.
type PendingErasure struct {
	Pseudonym   string
	Unit        string
	RequestedAt time.Time
}
