package jobs

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis/bandit"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestBanditAllocationKind: the job adds a version to a running bandit once
// its period has passed since the last one, and leaves fixed experiments and
// drafts alone; the weights of a version are a function of stored state.
func TestBanditAllocationKind(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sopt := store.DefaultOptions()
	sopt.Now = clock
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", sopt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateMetric(ctx, "alice", &experiment.Metric{Name: "clicked", EventType: "click", Aggregation: "binary"}); err != nil {
		t.Fatal(err)
	}
	mk := func(key string, alloc *experiment.Allocation, start bool) {
		e := &experiment.Experiment{Key: key, Variants: []experiment.Variant{{Name: "a", Weight: 0.5}, {Name: "b", Weight: 0.5}},
			Metrics: []experiment.MetricRef{{Name: "clicked"}}, Allocation: alloc}
		if _, err := db.CreateExperiment(ctx, "alice", e); err != nil {
			t.Fatal(err)
		}
		if start {
			if _, err := db.StartExperiment(ctx, "alice", key); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("hourly", &experiment.Allocation{Kind: "bandit", Reward: "clicked", Period: "1h"}, true)
	mk("draft", &experiment.Allocation{Kind: "bandit", Reward: "clicked"}, false)
	mk("fixed", nil, true)
	run := Kinds(Deps{Store: db, Now: clock})[experiment.JobBanditAllocation]
	job := &experiment.Job{Name: "bandits", Kind: experiment.JobBanditAllocation}
	versions := func() any {
		out, err := run(ctx, job, now)
		if err != nil {
			t.Fatal(err)
		}
		return out.(map[string]any)["versions"]
	}
	steps := []struct {
		advance time.Duration
		want    map[string]int
	}{
		{0, map[string]int{"hourly": 1}},                // version 0 only: the first recomputation is due
		{30 * time.Minute, map[string]int{}},            // half a period later: nothing
		{30 * time.Minute, map[string]int{"hourly": 2}}, // a period after version 1
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		got := versions().(map[string]int)
		if len(got) != len(s.want) || got["hourly"] != s.want["hourly"] {
			t.Fatalf("step %d: versions %v, want %v", i, got, s.want)
		}
	}
	vs, err := db.BanditVersions(ctx, "hourly")
	if err != nil {
		t.Fatal(err)
	}
	// Without data both arms are equally likely best; the draws of version v
	// are seeded by (key, v), so a stored version is recomputed exactly.
	again, err := bandit.Weights(bandit.Config{Reward: bandit.Binary}, make([]bandit.ArmStats, 2), banditSeed("hourly", 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || !slices.Equal(vs[2].Weights, again.Weights) || vs[2].Weights[0] == 0.5 {
		t.Fatalf("version 2 = %+v, recomputed %v", vs[len(vs)-1], again.Weights)
	}
}
