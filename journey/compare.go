package journey

import (
	"context"
	"errors"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
)

// Rollup computes the guardrails of journey key for each UTC day of [from, to)
// from the stored decisions, with the Gini coefficient of each day's item
// exposure counts (over the items shown that day; scorer.Gini), and stores them
// in journey_daily (replacing earlier roll-ups of the same days).
func Rollup(ctx context.Context, db *store.DB, key string, from, to time.Time) ([]store.JourneyDay, error) {
	const op = "journey.Rollup"
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
	Results      *store.Results `json:"results,omitempty"`
	ResultsError string         `json:"results_error,omitempty"`
	// HoldoutResults compare the holdout's current version with the exposed units.
	HoldoutResults *store.Results `json:"holdout_results,omitempty"`
	HoldoutError   string         `json:"holdout_error,omitempty"`

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

// Compare computes the comparison of journey key over [from, to): it rolls up
// (and stores) the window's daily guardrails, and computes the experiment's and
// the holdout's results with store.ExperimentResults and store.HoldoutResults.
// A results computation that fails on the data (for example no exposures yet) is
// reported in ResultsError / HoldoutError rather than failing the comparison.
func Compare(ctx context.Context, db *store.DB, key string, from, to time.Time) (*Comparison, error) {
	const op = "journey.Compare"
	if !to.After(from) {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("to"), experiment.Errorf("must be after from (%s), got %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	j, err := db.GetJourney(ctx, key)
	if err != nil {
		return nil, experiment.E(op, err)
	}
	c := &Comparison{Journey: j.Key, Experiment: j.Experiment, Holdout: j.Holdout, Control: j.Control, From: from.UTC(), To: to.UTC()}
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
	if r, err := db.ExperimentResults(ctx, j.Experiment, store.ResultsOptions{}); err != nil {
		if ctx.Err() != nil {
			return nil, experiment.E(op, ctx.Err())
		}
		c.ResultsError = errText(err)
	} else {
		c.Results = r
	}
	if j.Holdout != "" {
		if r, err := db.HoldoutResults(ctx, j.Holdout, 0, nil, store.ResultsOptions{}); err != nil {
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
