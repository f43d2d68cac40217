package experiment

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// PrivacyBudget is the differential-privacy budget of a scope ("experiment:KEY" or
// "holdout:NAME"): the total (ε, δ) that all its releases together may spend, and
// what one results release spends. Package privacy enforces it; package store keeps it.
type PrivacyBudget struct {
	Epsilon        float64 `json:"epsilon"`
	Delta          float64 `json:"delta"`
	ReleaseEpsilon float64 `json:"release_epsilon"`
	// ReleaseDelta is the δ of one release; 0 means Delta·ReleaseEpsilon/Epsilon,
	// spreading δ evenly over the releases the ε budget allows.
	ReleaseDelta float64 `json:"release_delta,omitempty"`
	// ReleasePeriod is the schedule of the scope's releases: at most one per period
	// (periods are aligned to the Unix epoch, so "24h" is the UTC day), served to
	// every reader of that period. 0 means DefaultReleasePeriod.
	ReleasePeriod Duration `json:"release_period,omitempty"`
}

// DefaultReleasePeriod is the release period of a budget that names none: one
// release a day (the UTC day).
const DefaultReleasePeriod = Duration(24 * time.Hour)

// The limits of a budget's parameters: a release below MinReleaseEpsilon would be
// noise of scale beyond any use (and, split over its queries, below what the noise
// library accepts, 2⁻⁵⁰); periods run from a minute to a year.
const (
	MinReleaseEpsilon = 1e-6
	MinReleasePeriod  = Duration(time.Minute)
	MaxReleasePeriod  = Duration(366 * 24 * time.Hour)
)

// Period returns the release period, DefaultReleasePeriod when b names none.
func (b PrivacyBudget) Period() time.Duration {
	if b.ReleasePeriod == 0 {
		return time.Duration(DefaultReleasePeriod)
	}
	return time.Duration(b.ReleasePeriod)
}

// PrivacyEntry is one spend in the privacy ledger: who released what, when, at what cost.
type PrivacyEntry struct {
	Scope   string    `json:"scope"`
	Who     string    `json:"who"`
	When    time.Time `json:"when"`
	What    string    `json:"what"`
	Epsilon float64   `json:"epsilon"`
	Delta   float64   `json:"delta"`
}

// PrivacyAccount is a scope's budget, what is spent and left, and ledger entries
// (newest first).
type PrivacyAccount struct {
	Scope        string         `json:"scope"`
	Budget       PrivacyBudget  `json:"budget"`
	EpsilonSpent float64        `json:"epsilon_spent"`
	DeltaSpent   float64        `json:"delta_spent"`
	EpsilonLeft  float64        `json:"epsilon_left"`
	DeltaLeft    float64        `json:"delta_left"`
	Entries      []PrivacyEntry `json:"entries"`
}

// Validate checks b and returns an Invalid error naming the field.
func (b PrivacyBudget) Validate() error {
	const op = "privacy.Budget"
	switch {
	case !(b.Epsilon >= MinReleaseEpsilon) || math.IsInf(b.Epsilon, 0):
		return invalid(op, "epsilon", "must be finite and at least %g, got %g", MinReleaseEpsilon, b.Epsilon)
	case !(b.Delta >= 0 && b.Delta < 1):
		return invalid(op, "delta", "must be in [0, 1), got %g", b.Delta)
	case !(b.ReleaseEpsilon >= MinReleaseEpsilon):
		return invalid(op, "release_epsilon", "must be at least %g (a smaller release is noise of no use), got %g", MinReleaseEpsilon, b.ReleaseEpsilon)
	case b.ReleaseEpsilon > b.Epsilon:
		return invalid(op, "release_epsilon", "must not exceed epsilon %g, got %g", b.Epsilon, b.ReleaseEpsilon)
	case !(b.ReleaseDelta >= 0) || b.ReleaseDelta > b.Delta:
		return invalid(op, "release_delta", "must be in [0, delta = %g], got %g", b.Delta, b.ReleaseDelta)
	case b.ReleasePeriod != 0 && (b.ReleasePeriod < MinReleasePeriod || b.ReleasePeriod > MaxReleasePeriod):
		return invalid(op, "release_period", "must be from 1m to 366d, got %s", time.Duration(b.ReleasePeriod))
	}
	return nil
}

// privacySlack absorbs floating-point error when spends are compared with a budget:
// ten spends of ε = 0.1 exactly fill a budget of 1.
const privacySlack = 1e-9

// Refuse returns nil when spending (eps, delta) on top of what scope has spent
// stays within b, and otherwise the BudgetExceeded error of the refusal, e.g.
// "privacy budget of experiment checkout exhausted: ε spent 0.9 of 1, this release
// needs 0.2".
func (b PrivacyBudget) Refuse(scope string, epsSpent, deltaSpent, eps, delta float64) error {
	label := strings.Replace(scope, ":", " ", 1)
	switch {
	case epsSpent+eps > b.Epsilon*(1+privacySlack):
		return E("privacy.Spend", BudgetExceeded, Errorf("privacy budget of %s exhausted: ε spent %.4g of %.4g, this release needs %.4g", label, epsSpent, b.Epsilon, eps))
	case deltaSpent+delta > b.Delta*(1+privacySlack):
		return E("privacy.Spend", BudgetExceeded, Errorf("privacy budget of %s exhausted: δ spent %.4g of %.4g, this release needs %.4g", label, deltaSpent, b.Delta, delta))
	}
	return nil
}

// String formats b for logs.
func (b PrivacyBudget) String() string {
	return fmt.Sprintf("ε=%g δ=%g per release ε=%g every %s", b.Epsilon, b.Delta, b.ReleaseEpsilon, b.Period())
}

// PrivacyRelease is the differentially private release of one period of a scope's
// schedule, as the ledger stores it (package privacy makes it, package store keeps it).
type PrivacyRelease struct {
	Scope       string    `json:"scope"`
	Subject     string    `json:"subject"` // what was released: "results", "holdout results v2"
	PeriodStart time.Time `json:"period_start"`
	ReleasedAt  time.Time `json:"released_at"` // when it was made; it covers the data until then
	Doc         []byte    `json:"-"`           // the release as JSON
}
