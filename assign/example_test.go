package assign_test

import (
	"fmt"
	"strconv"
	"time"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
)

// Version 2 of the hash, step by step, for unit "user-5" of experiment
// "checkout-button" (the seed defaults to the key).
func ExampleHash() {
	inner := assign.Fnv32a("checkout-button" + "user-5")
	outer := assign.Fnv32a(strconv.FormatUint(uint64(inner), 10))
	fmt.Println(inner, outer, outer%10000)
	v, ok := assign.Hash("checkout-button", "user-5", 2)
	fmt.Println(v, ok)
	// Output:
	// 1491476053 483409361 9361
	// 0.9361 true
}

// The worked example of docs/assign.md: a 50/50 experiment in the slice
// [0, 0.5) of layer "checkout", held out from the 5% holdout "long-term"
// (version 1, salt "long-term/v1").
func ExamplePlan_Assign() {
	e := &experiment.Experiment{
		Key:        "checkout-button",
		Variants:   []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}},
		Layer:      "checkout",
		LayerRange: &experiment.Range{Start: 0, End: 0.5},
		Holdout:    "long-term",
	}
	h := &experiment.Holdout{Name: "long-term", Fraction: 0.05, Version: 1, Salt: assign.HoldoutSalt("long-term", 1)}
	plan, err := assign.Compile(e, h)
	if err != nil {
		panic(err)
	}
	for _, unit := range []string{"user-25", "user-1", "user-4", "user-5"} {
		held, _ := assign.Hash("long-term/v1", unit, 2)
		point, _ := assign.Hash("__checkout", unit, 1)
		a := plan.Assign(unit)
		variant := "null"
		if a.Variant != nil {
			variant = *a.Variant
		}
		fmt.Printf("%s: holdout hash %.4f, layer point %.3f, bucket %.4f -> in_holdout %v, in_experiment %v, variant %s\n",
			unit, held, point, a.Bucket, a.Holdout.InHoldout, a.InExperiment, variant)
	}
	// Output:
	// user-25: holdout hash 0.0012, layer point 0.474, bucket 0.9018 -> in_holdout true, in_experiment false, variant null
	// user-1: holdout hash 0.0640, layer point 0.694, bucket 0.5603 -> in_holdout false, in_experiment false, variant null
	// user-4: holdout hash 0.2338, layer point 0.477, bucket 0.3409 -> in_holdout false, in_experiment true, variant control
	// user-5: holdout hash 0.7925, layer point 0.298, bucket 0.9361 -> in_holdout false, in_experiment true, variant treatment
}

// Raising coverage from 50% to 100% only lengthens each range from its start.
func ExampleBucketRanges() {
	fmt.Println(assign.BucketRanges(2, 0.5, []float64{0.4, 0.6}))
	fmt.Println(assign.BucketRanges(2, 1, []float64{0.4, 0.6}))
	// Output:
	// [{0 0.2} {0.4 0.7}]
	// [{0 0.4} {0.4 1}]
}

func ExampleCheckLayerSlice() {
	running := &experiment.Experiment{Key: "new-checkout", Layer: "checkout",
		LayerRange: &experiment.Range{Start: 0, End: 0.5}, Status: experiment.Running}
	candidate := &experiment.Experiment{Key: "express-pay", Layer: "checkout",
		LayerRange: &experiment.Range{Start: 0.4, End: 0.8}}
	fmt.Println(assign.CheckLayerSlice(candidate, []*experiment.Experiment{running}))
	candidate.LayerRange.Start = 0.5
	fmt.Println(assign.CheckLayerSlice(candidate, []*experiment.Experiment{running}))
	// Output:
	// assign.CheckLayerSlice: layer_range: [0.4, 0.8) of layer "checkout" overlaps experiment "new-checkout", which holds [0, 0.5)
	// <nil>
}

// A quarterly rotation: version 2 gets salt "long-term/v2" and a fresh draw.
func ExampleRotate() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &experiment.Holdout{Name: "long-term", Fraction: 0.05, Version: 1, Salt: assign.HoldoutSalt("long-term", 1),
		RotationPeriod: experiment.Duration(90 * 24 * time.Hour), RotatedAt: start}
	now := start.Add(91 * 24 * time.Hour)
	fmt.Println(assign.DueForRotation(h, now), assign.InHoldout("user-25", h))
	assign.Rotate(h, now)
	fmt.Println(h.Version, h.Salt, assign.DueForRotation(h, now), assign.InHoldout("user-25", h))
	// Output:
	// true true
	// 2 long-term/v2 false false
}
