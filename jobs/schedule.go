package jobs

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/liftlab/lift/experiment"
)

// MinInterval is the shortest time between two scheduled runs of a job, whatever
// form its schedule takes (cron fields, descriptors, every).
const MinInterval = time.Minute

// schedule is a job's parsed timing.
type schedule struct {
	cron  cron.Schedule // nil for interval jobs
	every time.Duration
	loc   *time.Location
}

// parse validates a job's timing and returns it, or an Invalid error naming the field.
func parse(j *experiment.Job) (*schedule, error) {
	const op = "jobs.parse"
	tz := j.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("time_zone"), experiment.Errorf("unknown time zone %q", tz))
	}
	switch {
	case j.Cron != "" && j.Every != 0:
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("cron"), experiment.Errorf("give either cron or every, not both"))
	case j.Cron != "":
		if strings.HasPrefix(j.Cron, "TZ=") || strings.HasPrefix(j.Cron, "CRON_TZ=") {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("cron"), experiment.Errorf("put the time zone in time_zone, not in the expression"))
		}
		if strings.HasPrefix(strings.TrimSpace(j.Cron), "@every") {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("cron"),
				experiment.Errorf("%q: give an interval in the every field instead (\"every\": \"6h\"), at least %s", j.Cron, experiment.Duration(MinInterval)))
		}
		s, err := cron.ParseStandard("CRON_TZ=" + loc.String() + " " + j.Cron)
		if err != nil {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("cron"), experiment.Errorf("invalid cron expression %q: %v", j.Cron, err))
		}
		// robfig/cron gives the zero time for an expression without a fire time
		// within five years ("0 0 30 2 *", February 30th); prev would loop on it.
		if s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("cron"), experiment.Errorf("cron expression %q never fires (no fire time within five years)", j.Cron))
		}
		// Five-field expressions and the descriptors (@hourly, @daily, ...) fire at
		// most once a minute; check anyway, so that no form the parser may accept
		// now or later runs a job more often than MinInterval.
		sc := &schedule{cron: s, loc: loc}
		if gap := sc.shortestGap(); gap < MinInterval {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("cron"),
				experiment.Errorf("%q fires every %s; jobs run at most every %s", j.Cron, experiment.Duration(gap), experiment.Duration(MinInterval)))
		}
		return sc, nil
	case j.Every != 0:
		d := time.Duration(j.Every)
		if d < MinInterval {
			return nil, experiment.E(op, experiment.Invalid, experiment.Field("every"), experiment.Errorf("must be at least %s, got %s", experiment.Duration(MinInterval), j.Every))
		}
		return &schedule{every: d, loc: loc}, nil
	default:
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("cron"), experiment.Errorf("give a cron expression or an interval (every)"))
	}
}

// next returns the first fire time strictly after t.
func (s *schedule) next(t time.Time) time.Time {
	if s.cron != nil {
		return s.cron.Next(t.In(s.loc))
	}
	p := s.prev(t)
	return p.Add(s.every)
}

// prev returns the latest fire time at or before t: the period a run at t stands for.
// Interval jobs fire at whole multiples of the interval since the Unix epoch, so their
// periods do not depend on when the server started.
func (s *schedule) prev(t time.Time) time.Time {
	if s.cron == nil {
		n := t.UnixNano() / int64(s.every)
		return time.Unix(0, n*int64(s.every)).In(s.loc)
	}
	// cron has only Next: widen a window backwards until it holds a fire time, then
	// walk forward to the last one at or before t.
	for w := time.Minute; w <= 800*24*time.Hour; w *= 2 {
		f := s.cron.Next(t.Add(-w).In(s.loc))
		if f.IsZero() {
			return time.Time{} // never fires (parse refuses such expressions)
		}
		if f.After(t) {
			continue
		}
		for {
			g := s.cron.Next(f)
			if g.IsZero() || g.After(t) {
				return f
			}
			f = g
		}
	}
	return time.Time{}
}

// shortestGap returns the shortest time between consecutive fire times of a cron
// schedule over its next 64 fires from a fixed instant.
func (s *schedule) shortestGap() time.Duration {
	gap := time.Duration(1<<63 - 1)
	t := s.cron.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, s.loc))
	for range 64 {
		n := s.cron.Next(t)
		if n.IsZero() {
			break
		}
		gap = min(gap, n.Sub(t))
		t = n
	}
	return gap
}
