package experiment

import (
	"errors"
	"testing"
)

func banditExperiment(a *Allocation) *Experiment {
	e := &Experiment{
		Key:        "bandit-checkout",
		Variants:   []Variant{{Name: "a", Weight: 1.0 / 3}, {Name: "b", Weight: 1.0 / 3}, {Name: "c", Weight: 1.0 / 3}},
		Metrics:    []MetricRef{{Name: "purchase"}},
		Allocation: a,
	}
	e.ApplyDefaults()
	return e
}

func TestAllocationValidate(t *testing.T) {
	tests := []struct {
		name  string
		a     Allocation
		field string // "" when valid
	}{
		{"fixed", Allocation{Kind: "fixed"}, ""},
		{"bandit with defaults", Allocation{Kind: "bandit", Reward: "purchase", MinShare: 0.05, BurnIn: 100}, ""},
		{"top two", Allocation{Kind: "bandit", Reward: "purchase", TopTwo: true, RewardKind: "continuous", Period: "30m"}, ""},
		{"floor at 1/K", Allocation{Kind: "bandit", Reward: "purchase", MinShare: 1.0 / 3}, ""},
		{"unknown kind", Allocation{Kind: "epsilon-greedy"}, "allocation.kind"},
		{"no reward", Allocation{Kind: "bandit"}, "allocation.reward"},
		{"reward not a metric", Allocation{Kind: "bandit", Reward: "revenue"}, "allocation.reward"},
		{"reward kind", Allocation{Kind: "bandit", Reward: "purchase", RewardKind: "count"}, "allocation.reward_kind"},
		{"period", Allocation{Kind: "bandit", Reward: "purchase", Period: "hourly"}, "allocation.period"},
		{"short period", Allocation{Kind: "bandit", Reward: "purchase", Period: "10s"}, "allocation.period"},
		{"floor too high", Allocation{Kind: "bandit", Reward: "purchase", MinShare: 0.4}, "allocation.min_share"},
		{"negative floor", Allocation{Kind: "bandit", Reward: "purchase", MinShare: -0.1}, "allocation.min_share"},
		{"burn-in", Allocation{Kind: "bandit", Reward: "purchase", BurnIn: -5}, "allocation.burn_in"},
		{"beta", Allocation{Kind: "bandit", Reward: "purchase", TopTwo: true, Beta: 2}, "allocation.beta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a
			err := banditExperiment(&a).Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != Invalid || e.Field != tt.field {
				t.Fatalf("got %v, want an invalid error on %q", err, tt.field)
			}
		})
	}
}

func TestAllocationDefaultsAndDesign(t *testing.T) {
	e := banditExperiment(&Allocation{Kind: "bandit", Reward: "purchase", TopTwo: true})
	if a := e.Allocation; a.RewardKind != "binary" || a.Period != "1h" || a.Beta != 0.5 || !e.IsBandit() {
		t.Errorf("defaults: %+v", *a)
	}
	f := banditExperiment(&Allocation{Kind: "bandit", Reward: "purchase", TopTwo: true, MinShare: 0.1})
	if SameDesign(e, f) {
		t.Error("a changed floor is a changed design (locked once started)")
	}
}
