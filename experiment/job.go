package experiment

import (
	"encoding/json"
	"time"
)

// JobKind is what a scheduled job does.
type JobKind string

// The job kinds.
const (
	JobResultsRefresh    JobKind = "results_refresh"    // recompute and snapshot results of running experiments
	JobJourneyComparison JobKind = "journey_comparison" // personalized vs control vs holdout, per journey
	JobMonitor           JobKind = "monitor"            // SRM, guardrail breaches, stale data → alerts
	JobDigest            JobKind = "digest"             // DP-noised executive summary (HTML, PDF, JSON)
	JobBanditAllocation  JobKind = "bandit_allocation"  // recompute the weights of running bandit experiments
	JobJourneyGiniRise   JobKind = "journey_gini_rise"  // alert when a journey's item-exposure Gini rises N days in a row
)

// Job is a persisted schedule: a cron expression or an interval, in a time zone.
type Job struct {
	Name     string          `json:"name"`
	Kind     JobKind         `json:"kind"`
	Cron     string          `json:"cron,omitempty"`      // 5-field cron, e.g. "0 9 * * 1" (Mondays 09:00)
	Every    Duration        `json:"every,omitempty"`     // or an interval, e.g. "6h"
	TimeZone string          `json:"time_zone,omitempty"` // IANA name, default "UTC"
	Target   string          `json:"target,omitempty"`    // experiment, holdout or journey key; "" = all that apply
	Params   json.RawMessage `json:"params,omitempty"`    // kind-specific settings (webhook URL, thresholds)
	Paused   bool            `json:"paused,omitempty"`
	Created  time.Time       `json:"created_at"`
}

// Run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// JobRun records one attempt of a job for one period (the scheduled time it stands for).
type JobRun struct {
	ID      int64           `json:"id"`
	Job     string          `json:"job"`
	Period  time.Time       `json:"period"`
	Attempt int             `json:"attempt"`
	Trigger string          `json:"trigger"` // "schedule", "manual" or "catchup"
	Start   time.Time       `json:"start"`
	End     *time.Time      `json:"end,omitempty"`
	Status  string          `json:"status"`
	Error   string          `json:"error,omitempty"`
	Output  json.RawMessage `json:"output,omitempty"` // what it produced: snapshot ids, digest ids, alerts
}

// Alert is a monitor's finding, sent to a webhook and kept in the alert log.
type Alert struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Job       string    `json:"job"`
	Period    time.Time `json:"period"`
	Kind      string    `json:"kind"` // "srm", "guardrail", "stale_data", "gini_rise"
	Target    string    `json:"target"`
	Severity  string    `json:"severity"` // "warning" or "critical"
	Message   string    `json:"message"`
	Delivered bool      `json:"delivered"`
	Attempts  int       `json:"delivery_attempts"` // webhook deliveries tried (at least once until one answers 2xx)
}

// Digest is a published executive summary: DP-noised numbers only.
type Digest struct {
	ID      string          `json:"id"` // job + period, stable: publishing is idempotent per period
	Job     string          `json:"job"`
	Period  time.Time       `json:"period"`
	Target  string          `json:"target"`
	Title   string          `json:"title"`
	Verdict string          `json:"verdict"`
	At      time.Time       `json:"published_at"`
	JSON    json.RawMessage `json:"summary"`
	HTML    []byte          `json:"-"`
	PDF     []byte          `json:"-"`
}
