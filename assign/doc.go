// Package assign decides which variant a unit gets, deterministically and without
// state, so that any client holding the experiment's definition can recompute the
// answer and the platform can audit exposure logs against the hash.
//
// Hashing is compatible with the GrowthBook SDK family (hash versions 1 and 2,
// FNV-1a 32-bit over UTF-16 code units, GrowthBook's bucket ranges and namespaces),
// and adds two things of Lift's own on top of the same primitives: mutually
// exclusive layers (a GrowthBook namespace per layer) and permanent, versioned
// holdouts. The hashing contract, which strings are hashed for an experiment, a
// layer and a holdout, is written out in docs/assign.md.
//
// A Plan is compiled once per experiment (Compile) and then answers assignments
// without allocating (Plan.AssignTo), in well under a microsecond.
package assign
