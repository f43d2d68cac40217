package jobs

import (
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// FuzzSchedule parses arbitrary job timings (cron expression, interval, time
// zone): no panic, errors are Invalid, and an accepted schedule's next fire
// time is after the time asked and its period start at or before it. "make
// fuzz" runs it for FUZZTIME; without -fuzz it runs over its seeds.
func FuzzSchedule(f *testing.F) {
	for _, c := range []struct {
		cron, tz string
		every    int64
	}{
		{"0 9 * * 1", "Europe/Berlin", 0},
		{"*/15 * * * *", "", 0},
		{"@daily", "America/New_York", 0},
		{"", "", int64(6 * time.Hour)},
		{"0 0 30 2 *", "UTC", 0},
		{"@every 1s", "", 0},
		{"", "../../etc/passwd", int64(time.Hour)},
	} {
		f.Add(c.cron, c.tz, c.every)
	}
	t0 := time.Date(2026, 3, 1, 10, 17, 23, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cron, tz string, every int64) {
		j := &experiment.Job{Cron: cron, TimeZone: tz, Every: experiment.Duration(every)}
		s, err := parse(j)
		if err != nil {
			if experiment.KindOf(err) != experiment.Invalid {
				t.Fatalf("parse(%q, %q, %d): error of kind %v: %v", cron, tz, every, experiment.KindOf(err), err)
			}
			return
		}
		if n := s.next(t0); !n.IsZero() && !n.After(t0) {
			t.Fatalf("parse(%q, %q, %d): next(%v) = %v, not after", cron, tz, every, t0, n)
		}
		if p := s.prev(t0); p.After(t0) {
			t.Fatalf("parse(%q, %q, %d): prev(%v) = %v, after it", cron, tz, every, t0, p)
		}
	})
}
