package assign

import (
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/liftlab/lift/experiment"
)

// Plan is an experiment compiled for assignment: its ranges, seeds and slices
// computed once, so that each assignment is a few hashes and comparisons. A Plan
// is immutable and safe for concurrent use.
//
// A Plan assigns whatever the experiment's status: whether a draft or stopped
// experiment should be answered at all is the caller's decision (the API answers
// only running experiments).
type Plan struct {
	key         string
	hashVersion int
	seedState   uint32 // fnv state after the seed: version 2 hashes seed+unit
	ranges      []experiment.Range
	names       []string // variant names; answers point into this slice

	layered     bool
	layerSuffix []uint16 // UTF-16 code units of "__" + layer
	seedSuffix  []uint16 // UTF-16 code units of the seed, for version 1
	slice       experiment.Range

	holdout     bool
	holdoutCut  float64 // a unit is held out when its holdout hash < holdoutCut
	holdoutSeed uint32  // fnv state after the holdout salt
	holdoutIn   *experiment.HoldoutAssignment
	holdoutOut  *experiment.HoldoutAssignment
}

// Compile checks the parts of e that decide assignment and precomputes them.
// h is the holdout e names (e.Holdout), or nil when it names none. Defaults are
// those of the registry: seed = key, coverage 1, hash version 2; a holdout with
// no salt hashes on HoldoutSalt(name, version).
//
// Unlike BucketRanges, Compile never falls back to equal weights: weights that
// are negative, non-finite or do not sum to 1 (within GrowthBook's [0.99, 1.01])
// are an Invalid error naming the field, as are fewer than two variants, a
// coverage outside [0, 1], an unknown hash version, a layer without a slice (or
// a slice outside [0, 1]), and a holdout that does not match e.Holdout.
func Compile(e *experiment.Experiment, h *experiment.Holdout) (*Plan, error) {
	const op = "assign.Compile"
	bad := func(field, format string, args ...any) error {
		return experiment.E(op, experiment.Invalid, experiment.Field(field), experiment.Errorf(format, args...))
	}
	if e == nil {
		return nil, bad("experiment", "no experiment given")
	}
	if e.Key == "" {
		return nil, bad("key", "must not be empty")
	}
	if len(e.Variants) < 2 {
		return nil, bad("variants", "need at least 2 variants, got %d", len(e.Variants))
	}
	p := &Plan{key: e.Key, hashVersion: e.HashVersion}
	seed := e.Seed
	if seed == "" {
		seed = e.Key
	}
	switch p.hashVersion {
	case 0:
		p.hashVersion = 2
	case 1, 2:
	default:
		return nil, bad("hash_version", "must be 1 or 2, got %d", e.HashVersion)
	}
	p.seedState = fnvString(fnvOffset, seed)
	p.seedSuffix = utf16.Encode([]rune(seed))

	weights := make([]float64, len(e.Variants))
	p.names = make([]string, len(e.Variants))
	sum := 0.0
	for i, v := range e.Variants {
		if math.IsNaN(v.Weight) || math.IsInf(v.Weight, 0) || v.Weight < 0 {
			return nil, bad("variants["+strconv.Itoa(i)+"].weight", "must be a finite number >= 0, got %g", v.Weight)
		}
		weights[i] = v.Weight
		p.names[i] = v.Name
		sum += v.Weight
	}
	if !usableWeights(len(weights), weights) {
		return nil, bad("variants", "weights must sum to 1, got %g", sum)
	}
	coverage := e.CoverageOr1()
	if !(coverage >= 0 && coverage <= 1) {
		return nil, bad("coverage", "must be in [0, 1], got %g", coverage)
	}
	p.ranges = BucketRanges(len(weights), coverage, weights)

	switch {
	case e.Layer != "" && e.LayerRange == nil:
		return nil, bad("layer_range", "required when layer is set: the experiment's slice {start, end} of layer %q", e.Layer)
	case e.Layer == "" && e.LayerRange != nil:
		return nil, bad("layer", "layer_range given without a layer")
	case e.Layer != "":
		r := *e.LayerRange
		if !(r.Start >= 0 && r.End <= 1 && r.Start < r.End) {
			return nil, bad("layer_range", "must satisfy 0 <= start < end <= 1, got [%g, %g)", r.Start, r.End)
		}
		p.layered, p.slice = true, r
		p.layerSuffix = utf16.Encode([]rune("__" + e.Layer))
	}

	switch {
	case e.Holdout == "" && h != nil:
		return nil, bad("holdout", "holdout %q given but the experiment names none", h.Name)
	case e.Holdout != "" && h == nil:
		return nil, bad("holdout", "the experiment names holdout %q but it was not given", e.Holdout)
	case h != nil:
		if h.Name != e.Holdout {
			return nil, bad("holdout", "the experiment names holdout %q, got %q", e.Holdout, h.Name)
		}
		if !(h.Fraction >= 0 && h.Fraction < 1) {
			return nil, bad("holdout.fraction", "must be in [0, 1), got %g", h.Fraction)
		}
		if h.Version < 1 {
			return nil, bad("holdout.version", "must be 1 or more, got %d", h.Version)
		}
		salt := h.Salt
		if salt == "" {
			salt = HoldoutSalt(h.Name, h.Version)
		}
		p.holdout = true
		p.holdoutCut = h.Fraction
		p.holdoutSeed = fnvString(fnvOffset, salt)
		p.holdoutIn = &experiment.HoldoutAssignment{Name: h.Name, Version: h.Version, InHoldout: true}
		p.holdoutOut = &experiment.HoldoutAssignment{Name: h.Name, Version: h.Version}
	}
	return p, nil
}

// Key returns the experiment's key.
func (p *Plan) Key() string { return p.key }

// Ranges returns a copy of the variants' bucket ranges.
func (p *Plan) Ranges() []experiment.Range { return append([]experiment.Range(nil), p.ranges...) }

// Assign returns the assignment of unit; see AssignTo for the rules. An empty
// (or invalid UTF-8) unit is answered "not in the experiment", as GrowthBook's
// SDKs answer a missing hash attribute; callers that must reject it use
// AssignChecked.
func (p *Plan) Assign(unit string) experiment.Assignment {
	var a experiment.Assignment
	p.AssignTo(&a, unit)
	return a
}

// AssignChecked is Assign that returns an Invalid error naming the field "unit"
// when unit is empty or not valid UTF-8, for callers at a boundary (the API)
// that must reject such a unit.
func (p *Plan) AssignChecked(unit string) (experiment.Assignment, error) {
	var a experiment.Assignment
	err := p.AssignTo(&a, unit)
	return a, err
}

// AssignTo writes the assignment of unit into *a without allocating. The rules,
// in order:
//
//  1. An empty unit, or one that is not valid UTF-8 (it has no JavaScript
//     form, so no SDK could recompute its hash), is in nothing (Variant nil,
//     VariantIndex -1, Bucket 0) and AssignTo returns an Invalid error; *a is
//     still fully written.
//  2. Holdout: when the experiment names one, the unit is held out when
//     Hash(salt, unit, 2) < fraction. A held-out unit is not in the experiment
//     and a.Holdout.InHoldout is true.
//  3. Layer: when the experiment is in a layer, the unit must fall in its slice,
//     InNamespace(unit, Namespace{layer, layer_range}); otherwise it is not in
//     the experiment.
//  4. Variant: ChooseVariation(Hash(seed, unit, hash_version), ranges); -1 (the
//     unit is outside coverage) means not in the experiment.
//
// a.Bucket is Hash(seed, unit, hash_version) for every non-empty unit, also
// when rule 2 or 3 kept the unit out, so that any answer can be audited
// against the hash. a.Holdout is nil when the experiment names no holdout.
// a.Variant and a.Holdout point into the Plan and are shared by all answers:
// read them, never write through them.
func (p *Plan) AssignTo(a *experiment.Assignment, unit string) error {
	*a = experiment.Assignment{
		Experiment:   p.key,
		Unit:         unit,
		VariantIndex: -1,
		HashVersion:  p.hashVersion,
		Holdout:      p.holdoutOut,
	}
	if unit == "" {
		return experiment.E("assign.Assign", experiment.Invalid, experiment.Field("unit"),
			experiment.Errorf("must not be empty (experiment %q)", p.key))
	}
	// Fold the unit into the hash states it continues: plain = fnv(unit) (the
	// layer point and a version-1 bucket continue from it), seeded =
	// fnv(seed+unit) (a version-2 bucket) and held = fnv(salt+unit) (the
	// holdout). The chains are independent, so the CPU overlaps them; a plain
	// version-2 experiment needs only the second.
	plain, seeded, held := fnvOffset, p.seedState, p.holdoutSeed
	ascii := true
	if p.holdout || p.layered || p.hashVersion == 1 {
		for i := 0; i < len(unit); i++ {
			c := unit[i]
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
			x := uint32(c)
			plain = (plain ^ x) * fnvPrime
			seeded = (seeded ^ x) * fnvPrime
			held = (held ^ x) * fnvPrime
		}
	} else {
		for i := 0; i < len(unit); i++ {
			c := unit[i]
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
			seeded = (seeded ^ uint32(c)) * fnvPrime
		}
	}
	if !ascii {
		if !utf8.ValidString(unit) {
			return experiment.E("assign.Assign", experiment.Invalid, experiment.Field("unit"),
				experiment.Errorf("must be valid UTF-8, got %q (experiment %q)", unit, p.key))
		}
		plain = fnvString(fnvOffset, unit)
		seeded = fnvString(p.seedState, unit)
		held = fnvString(p.holdoutSeed, unit)
	}
	if p.hashVersion == 2 {
		a.Bucket = float64(fnvDecimal(fnvOffset, seeded)%10000) / 10000
	} else {
		a.Bucket = float64(fnvUnits(plain, p.seedSuffix)%1000) / 1000
	}
	if p.holdout && float64(fnvDecimal(fnvOffset, held)%10000)/10000 < p.holdoutCut {
		a.Holdout = p.holdoutIn
		return nil
	}
	if p.layered && !p.slice.Contains(float64(fnvUnits(plain, p.layerSuffix)%1000)/1000) {
		return nil
	}
	if i := ChooseVariation(a.Bucket, p.ranges); i >= 0 {
		a.VariantIndex = i
		a.Variant = &p.names[i]
		a.InExperiment = true
	}
	return nil
}
