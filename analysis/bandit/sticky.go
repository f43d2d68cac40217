package bandit

import (
	"context"
	"fmt"

	"github.com/liftlab/lift/assign"
	"github.com/liftlab/lift/experiment"
)

// Version is one period's weights: the version number (0, 1, 2, …, in order)
// and the weights served while it is current.
type Version struct {
	Version int       `json:"version"`
	Weights []float64 `json:"weights"`
}

// Sticky stores the version at which each unit was first assigned. Enter
// records current as the unit's first version unless one is stored already,
// and returns the stored one; it must be atomic (insert if absent), so two
// concurrent first calls agree.
type Sticky interface {
	Enter(ctx context.Context, unit string, current int) (first int, err error)
}

// Arm returns the arm of a unit under the given weights: GrowthBook's hash
// (version 2) of seed and unit, placed on the weights' bucket ranges.
func Arm(seed, unit string, weights []float64) int {
	h, _ := assign.Hash(seed, unit, 2)
	return assign.ChooseVariation(h, assign.BucketRanges(len(weights), 1, weights))
}

// Assignment is a unit's arm and the version whose weights placed it.
type Assignment struct {
	Arm     int `json:"arm"`
	Version int `json:"version"`
}

// Assign returns the unit's arm: the arm under the weights of the version at
// which the unit first entered (recorded now if this is its first call). The
// current version is history's last; history holds every version in order.
func Assign(ctx context.Context, seed, unit string, history []Version, s Sticky) (Assignment, error) {
	const op = "bandit.Assign"
	if len(history) == 0 {
		return Assignment{}, experiment.E(op, experiment.Invalid, experiment.Field("versions"), fmt.Errorf("a bandit needs at least one weight version"))
	}
	cur := history[len(history)-1].Version
	first, err := s.Enter(ctx, unit, cur)
	if err != nil {
		return Assignment{}, fmt.Errorf("%s: %w", op, err)
	}
	if first < 0 || first >= len(history) || history[first].Version != first {
		return Assignment{}, experiment.E(op, experiment.Internal, experiment.Field("versions"), fmt.Errorf("unit %q entered at version %d, which the history lacks", unit, first))
	}
	return Assignment{Arm: Arm(seed, unit, history[first].Weights), Version: first}, nil
}
