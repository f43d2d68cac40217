package journey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
)

// Rollup computes the guardrails of journey key for each UTC day of [from, to)
// from the stored decisions, with the Gini coefficient of each day's item
// exposure counts (over the items shown that day; scorer.Gini), and stores them
// in journey_daily (replacing earlier roll-ups of the same days).
//
// The window is widened to whole UTC days (from down to its midnight, to up to
// the next one), so a stored day always counts all of its decisions so far: a
// window that starts or ends within a day never replaces that day's roll-up with
// part of it.
func Rollup(ctx context.Context, db *store.DB, key string, from, to time.Time) ([]store.JourneyDay, error) {
	const op = "journey.Rollup"
	from, to = wholeDays(from, to)
	if _, err := db.GetJourney(ctx, key); err != nil {
		return nil, experiment.E(op, err)
	}
	days, err := db.JourneyDays(ctx, key, from, to)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	for i := range days {
		x := make([]float64, len(days[i].ItemCounts))
		for j, n := range days[i].ItemCounts {
			x[j] = float64(n)
		}
		days[i].Gini = scorer.Gini(x)
	}
	if err := db.SaveJourneyDays(ctx, days); err != nil {
		return nil, experiment.E(op, err)
	}
	return days, nil
}

// Comparison is the scheduled journey comparison: the journey's experiment
// results (treatment = personalized journey, analysed by assigned arm, so
// fallbacks count in their arm), the permanent holdout against the units exposed
// to the experiments naming it, and the guardrails of each day of the window.
type Comparison struct {
	Journey    string    `json:"journey"`
	Experiment string    `json:"experiment"`
	Holdout    string    `json:"holdout,omitempty"`
	Control    string    `json:"control_variant"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`

	// Results of the experiment (every metric; all exposures, not only the window).
	Results      *results.Results `json:"results,omitempty"`
	ResultsError string           `json:"results_error,omitempty"`
	// HoldoutResults compare the holdout's current version with the exposed units.
	HoldoutResults *results.Results `json:"holdout_results,omitempty"`
	HoldoutError   string           `json:"holdout_error,omitempty"`

	Days    []store.JourneyDay `json:"days"`
	Summary Summary            `json:"summary"`
}

// Summary sums the guardrails of the window's days.
type Summary struct {
	Decisions       int64   `json:"decisions"`
	Personalized    int64   `json:"personalized"`
	Control         int64   `json:"control"`
	Holdout         int64   `json:"holdout"`
	Fallback        int64   `json:"fallback"`
	Ineligible      int64   `json:"ineligible"`
	FallbackRate    float64 `json:"fallback_rate"`
	IneligibleShare float64 `json:"ineligible_share"`
	// MaxLatencyP99 is the worst daily p99 (quantiles of days cannot be merged).
	MaxLatencyP99 float64 `json:"max_latency_p99_ms"`
	// GiniFirst and GiniLast are the Gini of the window's first and last days: a
	// rising Gini means recommendations are narrowing.
	GiniFirst float64 `json:"gini_first"`
	GiniLast  float64 `json:"gini_last"`
}

// Results computes the experiment's and the holdout's results of a
// comparison: *results.Service, or a cache in front of it (the console's).
type Results interface {
	ExperimentResults(ctx context.Context, key string, opt results.Options) (*results.Results, error)
	HoldoutResults(ctx context.Context, name string, version int, metrics []string, opt results.Options) (*results.Results, error)
}

// Compare computes the comparison of journey key over [from, to), widened to
// whole UTC days as Rollup does (From and To say which): it rolls up
// (and stores) the window's daily guardrails, and computes the experiment's and
// the holdout's results with the results service rs.
// A results computation that fails on the data (for example no exposures yet) is
// reported in ResultsError / HoldoutError rather than failing the comparison.
func Compare(ctx context.Context, db *store.DB, rs Results, key string, from, to time.Time) (*Comparison, error) {
	const op = "journey.Compare"
	if !to.After(from) {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("to"), experiment.Errorf("must be after from (%s), got %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	j, err := db.GetJourney(ctx, key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	from, to = wholeDays(from, to)
	c := &Comparison{Journey: j.Key, Experiment: j.Experiment, Holdout: j.Holdout, Control: j.Control, From: from, To: to}
	if c.Days, err = Rollup(ctx, db, key, from, to); err != nil {
		return nil, experiment.E(op, err)
	}
	if c.Days == nil {
		c.Days = []store.JourneyDay{}
	}
	s := &c.Summary
	for i, d := range c.Days {
		s.Decisions += d.Decisions
		s.Personalized += d.Personalized
		s.Control += d.Control
		s.Holdout += d.Holdout
		s.Fallback += d.Fallback
		s.Ineligible += d.Ineligible
		s.MaxLatencyP99 = max(s.MaxLatencyP99, d.LatencyP99)
		if i == 0 {
			s.GiniFirst = d.Gini
		}
		s.GiniLast = d.Gini
	}
	if n := s.Personalized + s.Fallback; n > 0 {
		s.FallbackRate = float64(s.Fallback) / float64(n)
	}
	if s.Decisions > 0 {
		s.IneligibleShare = float64(s.Ineligible) / float64(s.Decisions)
	}
	if r, err := rs.ExperimentResults(ctx, j.Experiment, results.Options{}); err != nil {
		if ctx.Err() != nil {
			return nil, experiment.E(op, ctx.Err())
		}
		c.ResultsError = errText(err)
	} else {
		c.Results = r
	}
	if j.Holdout != "" {
		if r, err := rs.HoldoutResults(ctx, j.Holdout, 0, nil, results.Options{}); err != nil {
			if ctx.Err() != nil {
				return nil, experiment.E(op, ctx.Err())
			}
			c.HoldoutError = errText(err)
		} else {
			c.HoldoutResults = r
		}
	}
	return c, nil
}

func errText(err error) string {
	var le *experiment.Error
	if errors.As(err, &le) {
		return le.Message()
	}
	return err.Error()
}

// ScheduledParams are the settings of a journey_comparison job (its params JSON).
type ScheduledParams struct {
	// Window is how far back from the period the guardrail days reach (default 7 days).
	Window experiment.Duration `json:"window,omitempty"`
	// NoTrend skips the cumulative daily trend of the journey's primary metric.
	NoTrend bool `json:"no_trend,omitempty"`
}

// Validate checks the params of a journey_comparison job.
func (p ScheduledParams) Validate() error {
	if p.Window < 0 || (p.Window > 0 && time.Duration(p.Window) < time.Hour) {
		return experiment.E("journey.ScheduledParams", experiment.Invalid, experiment.Field("params.window"),
			experiment.Errorf("must be at least 1h (default 7d), got %s", p.Window))
	}
	return nil
}

// ScheduledComparison is one journey's comparison as the scheduled job stores it:
// the Comparison over the window ending at the period, and the cumulative daily
// trend of the experiment's primary metric (the one marked primary, else the first).
type ScheduledComparison struct {
	*Comparison
	Trend      *results.Daily `json:"trend,omitempty"`
	TrendError string         `json:"trend_error,omitempty"`
}

// ScheduledCompare is the journey_comparison job kind (a jobs.Func): it compares
// the job's target journey, or every registered journey, over the window ending
// at period, and returns the comparisons. d, when not nil, is the server's
// Decider: its queued decisions are stored first, so that they count.
func ScheduledCompare(db *store.DB, rs *results.Service, d *Decider) func(ctx context.Context, j *experiment.Job, period time.Time) (any, error) {
	return func(ctx context.Context, j *experiment.Job, period time.Time) (any, error) {
		const op = "journey.ScheduledCompare"
		if d != nil {
			if err := d.Flush(ctx); err != nil {
				return nil, experiment.E(op, err)
			}
		}
		var p ScheduledParams
		if len(j.Params) > 0 {
			if err := json.Unmarshal(j.Params, &p); err != nil {
				return nil, experiment.E(op, experiment.Invalid, experiment.Field("params"), err)
			}
		}
		if p.Window <= 0 {
			p.Window = experiment.Duration(7 * 24 * time.Hour)
		}
		var keys []string
		if j.Target != "" {
			keys = []string{j.Target}
		} else {
			js, err := db.ListJourneys(ctx)
			if err != nil {
				return nil, experiment.E(op, err)
			}
			for _, x := range js {
				keys = append(keys, x.Key)
			}
		}
		to := period.UTC()
		from := to.Add(-time.Duration(p.Window))
		out := []ScheduledComparison{}
		for _, k := range keys {
			c, err := Compare(ctx, db, rs, k, from, to)
			if err != nil {
				return nil, fmt.Errorf("comparing journey %s: %w", k, err)
			}
			sc := ScheduledComparison{Comparison: c}
			if !p.NoTrend {
				e, err := db.GetExperiment(ctx, c.Experiment)
				if err != nil {
					return nil, experiment.E(op, err)
				}
				if m := e.Primary(); m != "" {
					if t, err := rs.DailyResults(ctx, e.Key, m); err != nil {
						if ctx.Err() != nil {
							return nil, experiment.E(op, ctx.Err())
						}
						sc.TrendError = errText(err)
					} else {
						sc.Trend = t
					}
				}
			}
			out = append(out, sc)
		}
		return map[string]any{"comparisons": out}, nil
	}
}

// wholeDays widens [from, to) to whole UTC days.
func wholeDays(from, to time.Time) (time.Time, time.Time) {
	const day = 24 * time.Hour
	from = from.UTC().Truncate(day)
	if t := to.UTC().Truncate(day); t.Equal(to) {
		to = t
	} else {
		to = t.Add(day)
	}
	return from, to.UTC()
}
