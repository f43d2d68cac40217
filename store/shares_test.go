package store

import (
	"context"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestShareLinkLifetime checks that a link works until it expires (and not at
// its expiry instant), that only the token's hash is stored, and that a reopened
// file still knows the link.
func TestShareLinkLifetime(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	db, path := openTest(t, c)
	if _, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "checkout",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	for _, life := range []time.Duration{0, -time.Hour, MaxShareLifetime + time.Second} {
		if _, _, err := db.CreateShareLink(ctx, "ana", "checkout", life); experiment.KindOf(err) != experiment.Invalid {
			t.Errorf("lifetime %s: %v, want Invalid", life, err)
		}
	}
	if _, _, err := db.CreateShareLink(ctx, "ana", "nope", time.Hour); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("unknown experiment: %v, want NotFound", err)
	}
	l, token, err := db.CreateShareLink(ctx, "ana", "checkout", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM share_links WHERE hash = ?`, token); n != 0 {
		t.Errorf("the token itself is stored")
	}
	c.Advance(time.Hour - time.Microsecond)
	if got, err := db.ShareLinkByToken(ctx, token); err != nil || got.ID != l.ID || got.Experiment != "checkout" {
		t.Fatalf("just before expiry: %+v %v", got, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	opt := DefaultOptions()
	opt.Now = c.Now
	if db, err = Open(ctx, path, opt); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ShareLinkByToken(ctx, token); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	c.Advance(time.Microsecond)
	if _, err := db.ShareLinkByToken(ctx, token); experiment.KindOf(err) != experiment.NotFound {
		t.Errorf("at expiry: %v, want NotFound", err)
	}
}
