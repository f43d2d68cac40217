package journey_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
)

// movable returns a Decider over f's store and models whose clock is *at.
func movable(t *testing.T, f *fixture) (*journey.Decider, *atomic.Pointer[time.Time]) {
	t.Helper()
	var at atomic.Pointer[time.Time]
	at.Store(&f.now)
	d := journey.New(f.db, f.dec.Models(), journey.Options{Now: func() time.Time { return *at.Load() }})
	t.Cleanup(func() { d.Close() })
	return d, &at
}

// TestFrequencyCap: with max 2 decisions in a 1 h window, the third within the
// hour is held back; a decision exactly one window old no longer counts (the
// window is (now − 1h, now]); held-back decisions do not count; other units
// are not affected.
func TestFrequencyCap(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{K: 3, FrequencyCap: &experiment.FrequencyCap{Max: 2, Window: experiment.Duration(time.Hour)}})
	d, at := movable(t, f)
	ctx := context.Background()
	unit, other := f.unitWhere(t, inVariant("control")), "someone-else"
	t0 := f.now
	for i, step := range []struct {
		unit   string
		at     time.Duration // after t0
		capped bool
	}{
		{unit, 0, false},
		{unit, 10 * time.Minute, false},
		{unit, 20 * time.Minute, true},   // t0 and t0+10m in the window: 2 = max
		{other, 20 * time.Minute, false}, // per unit
		{unit, 59*time.Minute + 59*time.Second, true},
		{unit, time.Hour, false},                   // t0 is exactly one window old: out; t0+10m in: 1 < 2
		{unit, time.Hour, true},                    // t0+10m and t0+60m: 2
		{unit, 70 * time.Minute, false},            // t0+10m out (exactly one window old), t0+60m in
		{unit, 70*time.Minute + time.Second, true}, // t0+60m, t0+70m
	} {
		now := t0.Add(step.at)
		at.Store(&now)
		dec, err := d.Decide(ctx, "home", journey.Request{Unit: step.unit, Context: journey.Context{ConsentTier: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if step.capped {
			if dec.Policy != experiment.PolicyIneligible || dec.Why != journey.WhyFrequencyCap || len(dec.Items) != 0 {
				t.Errorf("step %d (%s at t0+%s): %s/%s with %d items, want ineligible/frequency_cap with none", i, step.unit, step.at, dec.Policy, dec.Why, len(dec.Items))
			}
		} else if dec.Why == journey.WhyFrequencyCap || len(dec.Items) == 0 {
			t.Errorf("step %d (%s at t0+%s): %s/%s with %d items, want it shown", i, step.unit, step.at, dec.Policy, dec.Why, len(dec.Items))
		}
	}
	// A capped decision is logged, without an exposure.
	n, err := f.db.CountDecisions(ctx, "home", unit, t0.Add(-time.Hour), t0.Add(2*time.Hour), nil)
	if err != nil || n != 8 {
		t.Errorf("stored decisions of %s: %d (%v), want 8", unit, n, err)
	}
}

// TestQuietHours: 22:00-07:00 in Paris, across the change from summer time
// (UTC+2) to winter time (UTC+1): the start is inclusive, the end exclusive.
func TestQuietHours(t *testing.T) {
	f := newFixture(t, nil, experiment.Journey{K: 3, QuietHours: &experiment.QuietHours{Start: "22:00", End: "07:00", TimeZone: "Europe/Paris"}})
	d, at := movable(t, f)
	ctx := context.Background()
	unit := f.unitWhere(t, inVariant("control"))
	for _, tc := range []struct {
		utc   string
		quiet bool
	}{
		{"2026-11-20T20:59:59Z", false}, // 21:59:59 CET
		{"2026-11-20T21:00:00Z", true},  // 22:00 CET
		{"2026-11-21T05:59:59Z", true},  // 06:59:59 CET
		{"2026-11-21T06:00:00Z", false}, // 07:00 CET
		{"2026-07-01T19:59:59Z", false}, // 21:59:59 CEST
		{"2026-07-01T20:00:00Z", true},  // 22:00 CEST
		{"2026-07-02T04:59:59Z", true},  // 06:59:59 CEST
		{"2026-07-02T05:00:00Z", false}, // 07:00 CEST
		{"2026-11-20T12:00:00Z", false},
	} {
		now, _ := time.Parse(time.RFC3339, tc.utc)
		at.Store(&now)
		dec, err := d.Decide(ctx, "home", journey.Request{Unit: unit, Context: journey.Context{ConsentTier: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if got := dec.Why == journey.WhyQuietHours && dec.Policy == experiment.PolicyIneligible && len(dec.Items) == 0; got != tc.quiet {
			t.Errorf("%s: %s/%s with %d items, quiet %v", tc.utc, dec.Policy, dec.Why, len(dec.Items), tc.quiet)
		}
	}
}
