package experiment

import "time"

// ShareLink is a secret link to an experiment's report for people without an API
// key. Whoever holds the link sees differentially private numbers only. The token
// is shown once, when the link is created; only its hash is stored.
type ShareLink struct {
	ID         string     `json:"id"`
	Experiment string     `json:"experiment"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Live reports whether the link may be used at t.
func (l *ShareLink) Live(t time.Time) bool { return l.RevokedAt == nil && t.Before(l.ExpiresAt) }
