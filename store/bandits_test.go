package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/liftlab/lift/experiment"
)

func banditExp(key string) *experiment.Experiment {
	e := abExperiment(key)
	e.Variants = []experiment.Variant{{Name: "a", Weight: 0.5}, {Name: "b", Weight: 0.3}, {Name: "c", Weight: 0.2}}
	e.Allocation = &experiment.Allocation{Kind: experiment.AllocationBandit, Reward: "revenue", RewardKind: "continuous", MinShare: 0.05}
	return e
}

func TestBanditVersionsAndStickyUnits(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	db, path := openTest(t, c)
	if _, err := db.CreateExperiment(ctx, "alice", banditExp("bandit")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateExperiment(ctx, "alice", abExperiment("fixed")); err != nil {
		t.Fatal(err)
	}
	vs, err := db.BanditVersions(ctx, "bandit")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Version != 0 || !slices.Equal(vs[0].Weights, []float64{0.5, 0.3, 0.2}) {
		t.Fatalf("versions = %+v, want version 0 with the declared weights", vs)
	}
	first, err := db.EnterBandit(ctx, "bandit", []string{"u1", "u2"}, 0)
	if err != nil || !slices.Equal(first, []int{0, 0}) {
		t.Fatalf("EnterBandit = %v, %v", first, err)
	}
	c.Advance(3600e9)
	v1, err := db.AppendBanditVersion(ctx, "bandit", []float64{0.1, 0.8, 0.1}, []float64{0.05, 0.9, 0.05}, false)
	if err != nil || v1.Version != 1 {
		t.Fatalf("AppendBanditVersion = %+v, %v", v1, err)
	}
	// u1 entered at 0 and keeps it; u3 is new and enters at 1.
	first, err = db.EnterBandit(ctx, "bandit", []string{"u3", "u1"}, 1)
	if err != nil || !slices.Equal(first, []int{1, 0}) {
		t.Fatalf("EnterBandit after a new version = %v, %v; want [1 0]", first, err)
	}
	// A unit named twice in one batch enters once.
	if first, err := db.EnterBandit(ctx, "bandit", []string{"twice", "twice"}, 1); err != nil || !slices.Equal(first, []int{1, 1}) {
		t.Fatalf("a unit twice in a batch: %v, %v", first, err)
	}
	// Concurrent first entries of one unit agree (insert if absent).
	var wg sync.WaitGroup
	got := make([]int, 8)
	for i := range got {
		wg.Go(func() {
			v, err := db.EnterBandit(ctx, "bandit", []string{"racer"}, i)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = v[0]
		})
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] {
			t.Fatalf("concurrent entries disagree: %v", got)
		}
	}
	if _, err := db.AppendBanditVersion(ctx, "bandit", []float64{1}, []float64{1}, false); !isKind(err, experiment.Invalid, "weights") {
		t.Errorf("wrong number of weights: %v", err)
	}
	if _, err := db.BanditVersions(ctx, "fixed"); !isKind(err, experiment.Invalid, "experiment") {
		t.Errorf("versions of a fixed experiment: %v", err)
	}
	// Durable: the state survives a reopen.
	db.Close()
	db2, err := Open(ctx, path, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	vs, err = db2.BanditVersions(ctx, "bandit")
	if err != nil || len(vs) != 2 || !slices.Equal(vs[1].Weights, []float64{0.1, 0.8, 0.1}) || !vs[1].CreatedAt.Equal(c.Now()) {
		t.Fatalf("after reopen: %+v, %v", vs, err)
	}
	units, err := db2.BanditUnitVersions(ctx, "bandit")
	if err != nil || units["u1"] != 0 || units["u3"] != 1 || len(units) != 5 {
		t.Fatalf("unit versions = %v, %v", units, err)
	}
}

func isKind(err error, kind experiment.Kind, field string) bool {
	var e *experiment.Error
	return asError(err, &e) && e.Kind == kind && e.Field == field && fmt.Sprint(err) != ""
}
