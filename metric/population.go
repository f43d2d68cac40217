package metric

import (
	"time"

	"github.com/liftlab/lift/experiment"
)

// Holdout arms.
const (
	HoldoutArm = "holdout" // units kept out of everything the holdout protects
	ExposedArm = "exposed" // the other units exposed under the same holdout version
)

// Population is the set of units a computation analyzes and the arm each is in,
// as data: either an experiment's exposures (Experiment set) or one holdout
// version's (Holdout set). Exactly one of the two.
type Population struct {
	// Experiment selects the exposures of this experiment key with a variant (not
	// NULL); a unit's arm is its variant.
	Experiment string
	// Holdout selects the exposures logged under one holdout version.
	Holdout *HoldoutSelection
	// Arms are the arm names in order, the control first, with their weights.
	Arms    []string
	Weights []float64
	// Until, when not zero, ignores exposures and events at or after it.
	Until time.Time
	// AsOf is the analysis time for matured-only windows (retention): a unit
	// counts when its window ends by AsOf, or by Until when that is earlier (or
	// AsOf is zero). Compiling such a metric needs one of the two.
	AsOf time.Time
}

// HoldoutSelection selects the exposures whose experiment is one of Experiments
// (resolved by the caller: the experiments naming the holdout) and whose
// holdout_version is Version; a unit's arm is HoldoutArm when in_holdout, else
// ExposedArm.
type HoldoutSelection struct {
	Experiments []string
	Version     int
}

// ExperimentPopulation is the exposed units of an experiment, by variant; holdout
// units (no variant) are left out.
func ExperimentPopulation(e *experiment.Experiment) Population {
	p := Population{Experiment: e.Key}
	for _, v := range e.Variants {
		p.Arms = append(p.Arms, v.Name)
		p.Weights = append(p.Weights, v.Weight)
	}
	return p
}

// HoldoutPopulation is, for one version of a holdout, the units kept in the
// holdout (arm "holdout", the control) and the units exposed to the experiments
// naming it, experiments (arm "exposed"), by the exposures logged under that
// version. The expected shares are the holdout's fraction and its complement.
func HoldoutPopulation(h *experiment.Holdout, version int, experiments []string) Population {
	return Population{
		Holdout: &HoldoutSelection{Experiments: experiments, Version: version},
		Arms:    []string{HoldoutArm, ExposedArm},
		Weights: []float64{h.Fraction, 1 - h.Fraction},
	}
}

// Select reports whether exposure x belongs to the population (ignoring Until)
// and in which arm.
func (p Population) Select(x *experiment.Exposure) (arm string, ok bool) {
	if p.Holdout == nil {
		return x.Variant, x.Experiment == p.Experiment && x.Variant != ""
	}
	if x.HoldoutVersion != p.Holdout.Version {
		return "", false
	}
	for _, e := range p.Holdout.Experiments {
		if e == x.Experiment {
			if x.InHoldout {
				return HoldoutArm, true
			}
			return ExposedArm, true
		}
	}
	return "", false
}

// Before reports whether t is before the cut-off (always, without one).
func (p Population) Before(t time.Time) bool { return p.Until.IsZero() || t.Before(p.Until) }
