package experiment_test

import (
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

func TestQuietHoursContains(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		q    experiment.QuietHours
		t    string
		want bool
	}{
		{experiment.QuietHours{Start: "12:00", End: "14:00"}, "2026-11-20T11:59:00Z", false},
		{experiment.QuietHours{Start: "12:00", End: "14:00"}, "2026-11-20T12:00:00Z", true},
		{experiment.QuietHours{Start: "12:00", End: "14:00"}, "2026-11-20T13:59:59Z", true},
		{experiment.QuietHours{Start: "12:00", End: "14:00"}, "2026-11-20T14:00:00Z", false},
		{experiment.QuietHours{Start: "23:00", End: "01:00"}, "2026-11-20T23:30:00Z", true},
		{experiment.QuietHours{Start: "23:00", End: "01:00"}, "2026-11-21T00:30:00Z", true},
		{experiment.QuietHours{Start: "23:00", End: "01:00"}, "2026-11-21T01:00:00Z", false},
		// New York, UTC−5 in November: 22:00 there is 03:00 UTC.
		{experiment.QuietHours{Start: "22:00", End: "06:00", TimeZone: "America/New_York"}, "2026-11-21T02:59:00Z", false},
		{experiment.QuietHours{Start: "22:00", End: "06:00", TimeZone: "America/New_York"}, "2026-11-21T03:00:00Z", true},
		// Kolkata, UTC+5:30: 22:00 there is 16:30 UTC.
		{experiment.QuietHours{Start: "22:00", End: "06:00", TimeZone: "Asia/Kolkata"}, "2026-11-20T16:29:00Z", false},
		{experiment.QuietHours{Start: "22:00", End: "06:00", TimeZone: "Asia/Kolkata"}, "2026-11-20T16:30:00Z", true},
	} {
		if got := tc.q.Contains(at(tc.t)); got != tc.want {
			t.Errorf("%+v at %s: %v, want %v", tc.q, tc.t, got, tc.want)
		}
	}
}
