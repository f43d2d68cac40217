package journey

import (
	"context"
	"time"

	"github.com/liftlab/lift/experiment"
)

// The reasons of fatigue: an ineligible decision that shows nothing.
const (
	WhyFrequencyCap = "frequency_cap"
	WhyQuietHours   = "quiet_hours"
)

func isFatigue(why string) bool { return why == WhyFrequencyCap || why == WhyQuietHours }

// fatigue returns why the unit gets nothing from journey l now, or "":
// WhyQuietHours when the clock (Options.Now) is within the journey's quiet hours
// (local time of their time zone, start inclusive, end exclusive), WhyFrequencyCap
// when the stored decisions of the unit in this journey that showed items
// (those not held back by fatigue themselves), over (now − window, now], number
// the cap's max or more. The count reads the decision log, which commits before a
// decision is answered, so a burst of requests is capped exactly only when they
// arrive one after another; concurrent requests of one unit may pass together.
func (d *Decider) fatigue(ctx context.Context, l *loaded, unit string) (string, error) {
	now := d.opt.Now().UTC()
	if q := l.j.QuietHours; q != nil && q.Contains(now) {
		return WhyQuietHours, nil
	}
	c := l.j.FrequencyCap
	if c == nil {
		return "", nil
	}
	n, err := d.db.CountDecisions(ctx, l.j.Key, unit, now.Add(-time.Duration(c.Window)), now, []string{WhyFrequencyCap, WhyQuietHours})
	if err != nil {
		return "", experiment.E("journey.fatigue", err)
	}
	if n >= int64(c.Max) {
		return WhyFrequencyCap, nil
	}
	return "", nil
}
