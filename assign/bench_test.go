package assign_test

import (
	"context"
	"strconv"
	"testing"

	growthbook "github.com/growthbook/growthbook-golang"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
)

// The benchmark experiments: "plain" is a 2-variant 50/50 experiment; "holdout+layer"
// adds a 5% permanent holdout (long-term, version 1) and the slice [0, 0.5) of
// layer "checkout".
func benchExperiment(layered bool) (*experiment.Experiment, *experiment.Holdout) {
	e := fiftyFifty("checkout-button")
	if !layered {
		return e, nil
	}
	e.Holdout = "long-term"
	e.Layer, e.LayerRange = "checkout", &experiment.Range{Start: 0, End: 0.5}
	return e, longTerm(0.05)
}

// growthBookExperiment expresses the same experiment for GrowthBook's SDKs. The
// holdout and the layer become two hash filters, which is exactly Lift's
// contract: a unit passes the holdout when Hash(salt, unit, 2) is in [fraction, 1)
// and the layer when Hash("__"+layer, unit, 1) is in the slice. (A GrowthBook
// namespace is the same hash as the layer filter, but GrowthBook ignores the
// namespace of an experiment that has filters.)
func growthBookExperiment(e *experiment.Experiment, h *experiment.Holdout) *growthbook.Experiment {
	g := &growthbook.Experiment{
		Key:         e.Key,
		Variations:  []growthbook.FeatureValue{0, 1},
		Weights:     e.Weights(),
		Coverage:    e.Coverage,
		HashVersion: 2,
		Seed:        e.Key,
	}
	if h != nil {
		g.Filters = append(g.Filters, growthbook.Filter{
			Seed: h.Salt, HashVersion: 2,
			Ranges: []growthbook.BucketRange{{Min: h.Fraction, Max: 1}},
		})
	}
	if e.Layer != "" {
		g.Filters = append(g.Filters, growthbook.Filter{
			Seed: "__" + e.Layer, HashVersion: 1,
			Ranges: []growthbook.BucketRange{{Min: e.LayerRange.Start, Max: e.LayerRange.End}},
		})
	}
	return g
}

const benchUnits = 4096 // a power of two: units[i&(benchUnits-1)]

func unitIDs() []string {
	u := make([]string, benchUnits)
	for i := range u {
		u[i] = "user-" + strconv.Itoa(100000+i*7919)
	}
	return u
}

// growthBookClients returns one client per unit with {"id": unit} as attributes:
// the client is built outside the timed loop, so the SDK is timed on evaluation
// alone.
func growthBookClients(tb testing.TB, units []string) []*growthbook.Client {
	root, err := growthbook.NewClient(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	clients := make([]*growthbook.Client, len(units))
	for i, u := range units {
		if clients[i], err = root.WithAttributes(growthbook.Attributes{"id": u}); err != nil {
			tb.Fatal(err)
		}
	}
	return clients
}

// TestGrowthBookGoAgrees runs both benchmark experiments through Lift and
// through growthbook-golang for 20,000 units: every unit must get the same
// variant (or none) and, when in, the same bucket.
func TestGrowthBookGoAgrees(t *testing.T) {
	units := make([]string, 20000)
	for i := range units {
		units[i] = "u-" + strconv.Itoa(i)
	}
	units = append(units, "josé", "用户123", "😀", "expérience")
	clients := growthBookClients(t, units)
	for _, layered := range []bool{false, true} {
		e, h := benchExperiment(layered)
		p := mustCompile(t, e, h)
		g := growthBookExperiment(e, h)
		in := 0
		for i, u := range units {
			a := p.Assign(u)
			r := clients[i].RunExperiment(context.Background(), g)
			if a.InExperiment != r.InExperiment || (a.InExperiment && (a.VariantIndex != r.VariationId || a.Bucket != *r.Bucket)) {
				t.Fatalf("layered=%v unit %q: Lift %+v, growthbook-golang in=%v variation=%d bucket=%v",
					layered, u, a, r.InExperiment, r.VariationId, r.Bucket)
			}
			if a.InExperiment {
				in++
			}
		}
		// Plain: everyone. Holdout+layer: 95% · 50%.
		want := 1.0
		if layered {
			want = 0.95 * 0.5
		}
		if !binomialOK(in, len(units), want) {
			t.Errorf("layered=%v: %d of %d units in, want about %v", layered, in, len(units), want)
		}
	}
}

// BenchmarkAssign times one assignment (Plan.AssignTo into a reused struct, and
// Plan.Assign returning a value) over 4,096 distinct units.
func BenchmarkAssign(b *testing.B) {
	units := unitIDs()
	for _, layered := range []bool{false, true} {
		e, h := benchExperiment(layered)
		p := mustCompile(b, e, h)
		name := "plain"
		if layered {
			name = "holdout+layer"
		}
		b.Run(name+"/AssignTo", func(b *testing.B) {
			defer cpuPerOp(b)()
			b.ReportAllocs()
			var a experiment.Assignment
			i := 0
			for b.Loop() {
				p.AssignTo(&a, units[i&(benchUnits-1)])
				i++
			}
		})
		b.Run(name+"/Assign", func(b *testing.B) {
			defer cpuPerOp(b)()
			b.ReportAllocs()
			i := 0
			var sink int
			for b.Loop() {
				sink += p.Assign(units[i&(benchUnits-1)]).VariantIndex
				i++
			}
			_ = sink
		})
	}
}

// BenchmarkGrowthBookGo times growthbook-golang (v0.7.0) on the same experiments
// and units: RunExperiment on a per-unit client built beforehand, and, closer to
// per-request use, WithAttributes + RunExperiment.
func BenchmarkGrowthBookGo(b *testing.B) {
	units := unitIDs()
	clients := growthBookClients(b, units)
	root, err := growthbook.NewClient(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, layered := range []bool{false, true} {
		e, h := benchExperiment(layered)
		g := growthBookExperiment(e, h)
		name := "plain"
		if layered {
			name = "holdout+layer"
		}
		b.Run(name+"/RunExperiment", func(b *testing.B) {
			defer cpuPerOp(b)()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				clients[i&(benchUnits-1)].RunExperiment(ctx, g)
				i++
			}
		})
		b.Run(name+"/WithAttributes+RunExperiment", func(b *testing.B) {
			defer cpuPerOp(b)()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c, _ := root.WithAttributes(growthbook.Attributes{"id": units[i&(benchUnits-1)]})
				c.RunExperiment(ctx, g)
				i++
			}
		})
	}
}

// BenchmarkHash times the hash alone on a 10-character unit.
func BenchmarkHash(b *testing.B) {
	for _, v := range []int{1, 2} {
		b.Run("v"+strconv.Itoa(v), func(b *testing.B) {
			defer cpuPerOp(b)()
			b.ReportAllocs()
			for b.Loop() {
				assign.Hash("checkout-button", "user-12345", v)
			}
		})
	}
}
