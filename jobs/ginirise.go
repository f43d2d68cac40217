package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// GiniRiseParams are the settings of a journey_gini_rise job (its params JSON).
type GiniRiseParams struct {
	// Days is N: the alert is raised when the item-exposure Gini of each of the
	// last N complete UTC days is above the day's before (N + 1 consecutive days
	// with decisions, none missing). Default 3, at most 60.
	Days    int    `json:"days,omitempty"`
	Webhook string `json:"webhook,omitempty"` // alerts are POSTed here, as a monitor's are
}

const maxGiniRiseDays = 60

func (d Deps) checkGiniRise(ctx context.Context, j *experiment.Job) error {
	const op = "jobs.journey_gini_rise"
	var p GiniRiseParams
	if err := decodeParams(j, &p); err != nil {
		return err
	}
	if p.Days < 0 || p.Days > maxGiniRiseDays {
		return experiment.E(op, experiment.Invalid, experiment.Field("params.days"), experiment.Errorf("must be in [1, %d] (0 or absent: %d), got %d", maxGiniRiseDays, experiment.DefaultGiniRiseDays, p.Days))
	}
	if p.Webhook != "" {
		if err := d.Webhooks.CheckURL(p.Webhook); err != nil {
			return experiment.E(op, experiment.Invalid, experiment.Field("params.webhook"), err)
		}
	}
	if j.Target == "" {
		return nil
	}
	return targetExists(ctx, "journey", j.Target, func(ctx context.Context, k string) error {
		_, err := d.Store.GetJourney(ctx, k)
		return err
	})
}

// giniRise is the journey_gini_rise job kind: for the target journey (or every
// journey), the daily roll-up of the N + 1 complete UTC days before the
// period's day; when the item-exposure Gini rose on each of the last N, a
// "gini_rise" warning goes to the alert log (once per job, period and journey)
// and to the webhook. A rising Gini means the journey's recommendations are
// narrowing onto fewer items (docs/journeys.md: diversity).
func (d Deps) giniRise(ctx context.Context, j *experiment.Job, period time.Time) (any, error) {
	var p GiniRiseParams
	if err := decodeParams(j, &p); err != nil {
		return nil, err
	}
	if p.Days == 0 {
		p.Days = experiment.DefaultGiniRiseDays
	}
	var keys []string
	if j.Target != "" {
		keys = []string{j.Target}
	} else {
		js, err := d.Store.ListJourneys(ctx)
		if err != nil {
			return nil, err
		}
		for _, jr := range js {
			keys = append(keys, jr.Key)
		}
	}
	to := period.UTC().Truncate(24 * time.Hour)
	from := to.AddDate(0, 0, -(p.Days + 1))
	ids := []int64{}
	for _, k := range keys {
		days, err := d.JourneyDays(ctx, k, from, to)
		if err != nil {
			return nil, fmt.Errorf("roll-up of journey %s: %w", k, err)
		}
		if !RisingGini(days, from, p.Days) {
			continue
		}
		var trail []string
		for _, dd := range days {
			trail = append(trail, fmt.Sprintf("%s %.3f", dd.Day.Format(time.DateOnly), dd.Gini))
		}
		a := &experiment.Alert{At: d.Now().UTC(), Job: j.Name, Period: period.UTC(), Kind: "gini_rise", Target: k, Severity: "warning",
			Message: fmt.Sprintf("Journey %s: its item-exposure Gini rose %d days in a row (%s): its recommendations are narrowing onto fewer items; consider a diversity constraint or more exploration.",
				k, p.Days, strings.Join(trail, ", "))}
		if _, err := d.Store.AddAlert(ctx, a); err != nil {
			return nil, err
		}
		ids = append(ids, a.ID)
	}
	out := map[string]any{"checked": keys, "alerts": ids, "from": from, "to": to}
	if err := d.deliver(ctx, j, period, p.Webhook); err != nil {
		return out, err
	}
	return out, nil
}

// RisingGini reports whether days (a journey's daily roll-up, in order) are the
// n + 1 consecutive days from "from" and each day's Gini is strictly above the
// day's before.
func RisingGini(days []store.JourneyDay, from time.Time, n int) bool {
	if len(days) != n+1 {
		return false
	}
	for i, dd := range days {
		if !dd.Day.Equal(from.AddDate(0, 0, i)) {
			return false
		}
		if i > 0 && !(dd.Gini > days[i-1].Gini) {
			return false
		}
	}
	return true
}
