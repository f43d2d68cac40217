package assign_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
)

func ptr[T any](v T) *T { return &v }

// fiftyFifty is a 2-variant 50/50 experiment; mutate the copy it returns.
func fiftyFifty(key string) *experiment.Experiment {
	return &experiment.Experiment{
		Key:      key,
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}},
	}
}

func longTerm(fraction float64) *experiment.Holdout {
	return &experiment.Holdout{Name: "long-term", Fraction: fraction, Version: 1, Salt: assign.HoldoutSalt("long-term", 1)}
}

func mustCompile(t testing.TB, e *experiment.Experiment, h *experiment.Holdout) *assign.Plan {
	t.Helper()
	p, err := assign.Compile(e, h)
	if err != nil {
		t.Fatalf("Compile(%s): %v", e.Key, err)
	}
	return p
}

// binomialOK reports whether count successes of n trials are within 4.5
// standard deviations of n·p (two-sided tail probability below 1e-5).
func binomialOK(count, n int, p float64) bool {
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return math.Abs(float64(count)-float64(n)*p) <= 4.5*sd
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(e *experiment.Experiment) *experiment.Holdout
		field string
	}{
		{"no key", func(e *experiment.Experiment) *experiment.Holdout { e.Key = ""; return nil }, "key"},
		{"one variant", func(e *experiment.Experiment) *experiment.Holdout {
			e.Variants = e.Variants[:1]
			return nil
		}, "variants"},
		{"negative weight", func(e *experiment.Experiment) *experiment.Holdout {
			e.Variants[1].Weight = -0.5
			return nil
		}, "variants[1].weight"},
		{"NaN weight", func(e *experiment.Experiment) *experiment.Holdout {
			e.Variants[0].Weight = math.NaN()
			return nil
		}, "variants[0].weight"},
		{"weights sum to 0.9", func(e *experiment.Experiment) *experiment.Holdout {
			e.Variants[1].Weight = 0.4
			return nil
		}, "variants"},
		{"coverage above 1", func(e *experiment.Experiment) *experiment.Holdout { e.Coverage = ptr(1.5); return nil }, "coverage"},
		{"coverage NaN", func(e *experiment.Experiment) *experiment.Holdout { e.Coverage = ptr(math.NaN()); return nil }, "coverage"},
		{"hash version 3", func(e *experiment.Experiment) *experiment.Holdout { e.HashVersion = 3; return nil }, "hash_version"},
		{"layer without slice", func(e *experiment.Experiment) *experiment.Holdout { e.Layer = "checkout"; return nil }, "layer_range"},
		{"slice without layer", func(e *experiment.Experiment) *experiment.Holdout {
			e.LayerRange = &experiment.Range{Start: 0, End: 0.5}
			return nil
		}, "layer"},
		{"empty slice", func(e *experiment.Experiment) *experiment.Holdout {
			e.Layer, e.LayerRange = "checkout", &experiment.Range{Start: 0.5, End: 0.5}
			return nil
		}, "layer_range"},
		{"slice past 1", func(e *experiment.Experiment) *experiment.Holdout {
			e.Layer, e.LayerRange = "checkout", &experiment.Range{Start: 0.5, End: 1.2}
			return nil
		}, "layer_range"},
		{"holdout not given", func(e *experiment.Experiment) *experiment.Holdout { e.Holdout = "long-term"; return nil }, "holdout"},
		{"holdout not named", func(e *experiment.Experiment) *experiment.Holdout { return longTerm(0.05) }, "holdout"},
		{"other holdout", func(e *experiment.Experiment) *experiment.Holdout {
			e.Holdout = "other"
			return longTerm(0.05)
		}, "holdout"},
		{"holdout fraction 1", func(e *experiment.Experiment) *experiment.Holdout {
			e.Holdout = "long-term"
			return longTerm(1)
		}, "holdout.fraction"},
		{"holdout version 0", func(e *experiment.Experiment) *experiment.Holdout {
			e.Holdout = "long-term"
			h := longTerm(0.05)
			h.Version = 0
			return h
		}, "holdout.version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fiftyFifty("exp")
			h := tt.edit(e)
			p, err := assign.Compile(e, h)
			if err == nil {
				t.Fatalf("Compile accepted it: %+v", p)
			}
			var le *experiment.Error
			if !experiment.Is(err, experiment.Invalid) || !asError(err, &le) || le.Field != tt.field {
				t.Errorf("error %v: want kind invalid on field %q", err, tt.field)
			}
		})
	}
	if _, err := assign.Compile(nil, nil); !experiment.Is(err, experiment.Invalid) {
		t.Errorf("Compile(nil) = %v, want an invalid error", err)
	}
}

func asError(err error, target **experiment.Error) bool {
	e, ok := err.(*experiment.Error)
	*target = e
	return ok
}

func TestCompileDefaults(t *testing.T) {
	// Seed defaults to the key and the hash version to 2: the plan must agree
	// with an explicit seed/version.
	implicit := mustCompile(t, fiftyFifty("checkout-button"), nil)
	e := fiftyFifty("checkout-button")
	e.Seed, e.HashVersion, e.Coverage = "checkout-button", 2, ptr(1.0)
	explicit := mustCompile(t, e, nil)
	for i := range 1000 {
		u := "user-" + strconv.Itoa(i)
		a, b := implicit.Assign(u), explicit.Assign(u)
		if a.Bucket != b.Bucket || a.VariantIndex != b.VariantIndex || a.HashVersion != 2 {
			t.Fatalf("unit %s: defaults give %+v, explicit %+v", u, a, b)
		}
	}
}

func TestAssignEmptyAndInvalidUnit(t *testing.T) {
	e := fiftyFifty("exp")
	e.Holdout = "long-term"
	p := mustCompile(t, e, longTerm(0.05))
	for _, unit := range []string{"", "bad\xff"} {
		a, err := p.AssignChecked(unit)
		if !experiment.Is(err, experiment.Invalid) || !strings.Contains(err.Error(), "unit") {
			t.Errorf("AssignChecked(%q) error = %v, want invalid naming unit", unit, err)
		}
		if a.InExperiment || a.Variant != nil || a.VariantIndex != -1 || a.Bucket != 0 ||
			a.Holdout == nil || a.Holdout.InHoldout || a.Experiment != "exp" {
			t.Errorf("AssignChecked(%q) = %+v, want not in experiment nor holdout", unit, a)
		}
		if b := p.Assign(unit); b.InExperiment {
			t.Errorf("Assign(%q) put the unit in the experiment", unit)
		}
	}
}

// TestAssignFollowsContract recomputes every answer from the public primitives,
// in the documented order: holdout, layer, then variant.
func TestAssignFollowsContract(t *testing.T) {
	e := fiftyFifty("checkout-button")
	e.Coverage = ptr(0.8)
	e.Layer, e.LayerRange = "checkout", &experiment.Range{Start: 0.2, End: 0.7}
	e.Holdout = "long-term"
	h := longTerm(0.1)
	p := mustCompile(t, e, h)
	ranges := assign.BucketRanges(2, 0.8, []float64{0.5, 0.5})
	var held, outOfLayer, uncovered, in int
	for i := range 20000 {
		u := "u" + strconv.Itoa(i)
		a, err := p.AssignChecked(u)
		if err != nil {
			t.Fatal(err)
		}
		bucket, _ := assign.Hash("checkout-button", u, 2)
		if a.Experiment != "checkout-button" || a.Unit != u || a.HashVersion != 2 || a.Bucket != bucket {
			t.Fatalf("%s: %+v: wrong experiment, unit, hash version or bucket (want %v)", u, a, bucket)
		}
		if a.Holdout == nil || a.Holdout.Name != "long-term" || a.Holdout.Version != 1 {
			t.Fatalf("%s: holdout %+v, want long-term v1", u, a.Holdout)
		}
		hv, _ := assign.Hash("long-term/v1", u, 2)
		want := -1
		switch {
		case hv < 0.1:
			held++
			if !a.Holdout.InHoldout {
				t.Fatalf("%s: holdout hash %v < 0.1 but not in holdout", u, hv)
			}
		case !assign.InNamespace(u, assign.Namespace{Name: "checkout", Range: *e.LayerRange}):
			outOfLayer++
		default:
			want = assign.ChooseVariation(bucket, ranges)
			if want < 0 {
				uncovered++
			}
		}
		if hv >= 0.1 && a.Holdout.InHoldout {
			t.Fatalf("%s: holdout hash %v >= 0.1 but in holdout", u, hv)
		}
		if a.VariantIndex != want || a.InExperiment != (want >= 0) || (a.Variant != nil) != (want >= 0) {
			t.Fatalf("%s: %+v, want variant index %d", u, a, want)
		}
		if want >= 0 {
			in++
			if *a.Variant != e.Variants[want].Name {
				t.Fatalf("%s: variant %q, want %q", u, *a.Variant, e.Variants[want].Name)
			}
		}
	}
	// Every path must have been taken, in about the expected shares:
	// in = 0.9 (not held) · 0.5 (slice) · 0.8 (coverage).
	if held == 0 || outOfLayer == 0 || uncovered == 0 || !binomialOK(in, 20000, 0.9*0.5*0.8) {
		t.Errorf("held %d, out of layer %d, uncovered %d, in %d of 20000", held, outOfLayer, uncovered, in)
	}
}

func TestAssignNoHoldout(t *testing.T) {
	a := mustCompile(t, fiftyFifty("plain"), nil).Assign("user-1")
	if a.Holdout != nil {
		t.Errorf("holdout = %+v, want nil for an experiment without one", a.Holdout)
	}
}

func TestAssignToDoesNotAllocate(t *testing.T) {
	e := fiftyFifty("exp")
	e.Holdout, e.Layer, e.LayerRange = "long-term", "checkout", &experiment.Range{Start: 0, End: 0.5}
	p := mustCompile(t, e, longTerm(0.05))
	var a experiment.Assignment
	allocs := testing.AllocsPerRun(200, func() { p.AssignTo(&a, "user-123456") })
	if allocs != 0 {
		t.Errorf("AssignTo allocates %v times per call", allocs)
	}
}

func TestHoldoutFraction(t *testing.T) {
	const n = 100000
	for _, f := range []float64{0.01, 0.05, 0.2} {
		e := fiftyFifty("exp")
		e.Holdout = "long-term"
		h := longTerm(f)
		p := mustCompile(t, e, h)
		held := 0
		for i := range n {
			u := "user-" + strconv.Itoa(i)
			a := p.Assign(u)
			if a.Holdout.InHoldout {
				held++
				if a.InExperiment || a.Variant != nil || a.VariantIndex != -1 {
					t.Fatalf("%s is held out but in the experiment: %+v", u, a)
				}
			}
			if a.Holdout.InHoldout != assign.InHoldout(u, h) {
				t.Fatalf("%s: Plan and InHoldout disagree", u)
			}
		}
		if !binomialOK(held, n, f) {
			t.Errorf("fraction %v: %d of %d units held out, want %v ± 4.5 sd", f, held, n, f*n)
		}
	}
}

func TestRotationChangesMembership(t *testing.T) {
	const n = 100000
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := longTerm(0.05)
	h.RotatedAt = start
	before := make([]bool, n)
	for i := range n {
		before[i] = assign.InHoldout("user-"+strconv.Itoa(i), h)
	}
	now := start.Add(90 * 24 * time.Hour)
	assign.Rotate(h, now)
	if h.Version != 2 || h.Salt != "long-term/v2" || !h.RotatedAt.Equal(now) || len(h.Versions) != 2 ||
		h.Versions[0].End == nil || !h.Versions[0].End.Equal(now) || h.Versions[0].Salt != "long-term/v1" ||
		h.Versions[1].Version != 2 || h.Versions[1].End != nil {
		t.Fatalf("after Rotate: %+v", h)
	}
	after, both := 0, 0
	for i := range n {
		in := assign.InHoldout("user-"+strconv.Itoa(i), h)
		if in {
			after++
			if before[i] {
				both++
			}
		}
	}
	// The new cohort is a fresh 5% draw, independent of the old one, so about
	// 5% · 5% of units are in both.
	if !binomialOK(after, n, 0.05) || !binomialOK(both, n, 0.05*0.05) {
		t.Errorf("after rotation %d held out, %d in both cohorts, of %d", after, both, n)
	}
}

func TestDueForRotation(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	period := experiment.Duration(90 * 24 * time.Hour)
	tests := []struct {
		name   string
		period experiment.Duration
		now    time.Time
		want   bool
	}{
		{"manual only", 0, start.Add(1000 * 24 * time.Hour), false},
		{"before the period", period, start.Add(89 * 24 * time.Hour), false},
		{"at the period", period, start.Add(90 * 24 * time.Hour), true},
		{"after the period", period, start.Add(91 * 24 * time.Hour), true},
	}
	for _, tt := range tests {
		h := longTerm(0.05)
		h.RotatedAt, h.RotationPeriod = start, tt.period
		if got := assign.DueForRotation(h, tt.now); got != tt.want {
			t.Errorf("%s: DueForRotation = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestCoverageNeverMovesUnits: raising coverage (same weights) keeps every unit
// that was in a variant in that same variant.
func TestCoverageNeverMovesUnits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		k := 2 + rng.IntN(4)
		weights := make([]float64, k)
		sum := 0.0
		for i := range weights {
			weights[i] = rng.Float64() + 0.01
			sum += weights[i]
		}
		e := &experiment.Experiment{Key: "prop-" + strconv.Itoa(trial), HashVersion: 1 + rng.IntN(2)}
		for i, w := range weights {
			e.Variants = append(e.Variants, experiment.Variant{Name: "v" + strconv.Itoa(i), Weight: w / sum})
		}
		lo, hi := rng.Float64(), rng.Float64()
		if lo > hi {
			lo, hi = hi, lo
		}
		e.Coverage = ptr(lo)
		small := mustCompile(t, e, nil)
		e.Coverage = ptr(hi)
		large := mustCompile(t, e, nil)
		for range 500 {
			u := strconv.FormatUint(rng.Uint64(), 36)
			a, b := small.Assign(u), large.Assign(u)
			if a.InExperiment && b.VariantIndex != a.VariantIndex {
				t.Fatalf("%s: unit %s moved from variant %d at coverage %v to %d at %v",
					e.Key, u, a.VariantIndex, lo, b.VariantIndex, hi)
			}
		}
	}
}

func TestLayerMutualExclusion(t *testing.T) {
	slices := []experiment.Range{{Start: 0, End: 0.3}, {Start: 0.3, End: 0.6}, {Start: 0.6, End: 1}}
	var plans []*assign.Plan
	var exps []*experiment.Experiment
	for i, r := range slices {
		e := fiftyFifty("layered-" + strconv.Itoa(i))
		e.Layer, e.LayerRange = "checkout", &r
		if err := assign.CheckLayerSlice(e, exps); err != nil {
			t.Fatalf("disjoint slices rejected: %v", err)
		}
		exps = append(exps, e)
		plans = append(plans, mustCompile(t, e, nil))
	}
	const n = 100000
	counts := make([]int, len(plans))
	for i := range n {
		u := "user-" + strconv.Itoa(i)
		in := 0
		for j, p := range plans {
			if p.Assign(u).InExperiment {
				in++
				counts[j]++
			}
		}
		// The slices tile [0, 1) at full coverage: exactly one experiment each.
		if in != 1 {
			t.Fatalf("unit %s is in %d experiments of the layer, want exactly 1", u, in)
		}
	}
	for j, r := range slices {
		if !binomialOK(counts[j], n, r.End-r.Start) {
			t.Errorf("slice %v got %d of %d units", r, counts[j], n)
		}
	}
}

func TestCheckLayerSlice(t *testing.T) {
	mk := func(key, layer string, start, end float64, status experiment.Status) *experiment.Experiment {
		e := fiftyFifty(key)
		e.Layer, e.LayerRange, e.Status = layer, &experiment.Range{Start: start, End: end}, status
		return e
	}
	others := []*experiment.Experiment{
		mk("a", "checkout", 0, 0.3, experiment.Running),
		mk("b", "checkout", 0.3, 0.5, experiment.Draft),
		mk("old", "checkout", 0.5, 1, experiment.Stopped),
		mk("elsewhere", "search", 0, 1, experiment.Running),
		fiftyFifty("unlayered"),
	}
	tests := []struct {
		name      string
		candidate *experiment.Experiment
		overlaps  string // key named in the error, "" for no error
	}{
		{"adjacent to b, stopped experiment ignored", mk("c", "checkout", 0.5, 1, experiment.Draft), ""},
		{"starts where b starts", mk("c", "checkout", 0.3, 0.3001, experiment.Draft), "b"},
		{"overlaps a", mk("c", "checkout", 0.2, 0.4, experiment.Draft), "a"},
		{"overlaps a draft", mk("c", "checkout", 0.45, 0.6, experiment.Draft), "b"},
		{"itself", mk("a", "checkout", 0, 0.3, experiment.Running), ""},
		{"other layer", mk("c", "search2", 0, 1, experiment.Draft), ""},
		{"no layer", fiftyFifty("c"), ""},
	}
	for _, tt := range tests {
		err := assign.CheckLayerSlice(tt.candidate, others)
		if tt.overlaps == "" {
			if err != nil {
				t.Errorf("%s: %v, want no error", tt.name, err)
			}
			continue
		}
		var le *experiment.Error
		if err == nil || !experiment.Is(err, experiment.Invalid) || !asError(err, &le) || le.Field != "layer_range" ||
			!strings.Contains(err.Error(), strconv.Quote(tt.overlaps)) {
			t.Errorf("%s: error %v, want invalid layer_range naming %q", tt.name, err, tt.overlaps)
		}
	}
}

// TestAssignNonASCII: a plan with a non-ASCII seed and layer, and non-ASCII
// units, agrees with the primitives (which FuzzHash checks against the
// JavaScript port).
func TestAssignNonASCII(t *testing.T) {
	for _, version := range []int{1, 2} {
		e := fiftyFifty("exp")
		e.Seed, e.HashVersion = "expérience", version
		e.Layer, e.LayerRange = "café😀", &experiment.Range{Start: 0.25, End: 1}
		e.Holdout = "long-term"
		h := longTerm(0.3)
		p := mustCompile(t, e, h)
		for i, u := range []string{"josé", "用户123", "😀", "user-1", "ü", "a😀b", "ASCII-only"} {
			for _, unit := range []string{u, u + strconv.Itoa(i)} {
				a := p.Assign(unit)
				bucket, _ := assign.Hash("expérience", unit, version)
				in := !assign.InHoldout(unit, h) && assign.InNamespace(unit, assign.Namespace{Name: "café😀", Range: *e.LayerRange}) &&
					assign.ChooseVariation(bucket, p.Ranges()) >= 0
				if a.Bucket != bucket || a.InExperiment != in || a.Holdout.InHoldout != assign.InHoldout(unit, h) {
					t.Errorf("v%d %q: %+v; want bucket %v, in %v", version, unit, a, bucket, in)
				}
			}
		}
	}
}
