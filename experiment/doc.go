// Package experiment is Lift's vocabulary: the types every other package speaks
// (experiments, variants, layers, holdouts, assignments, exposures, events, metrics,
// API keys, audit entries) and the error kinds that the API maps to HTTP statuses.
//
// It imports the standard library only, so that it can sit at the bottom of the
// dependency graph: assignment, analysis, storage and transport all agree on these
// definitions and none of them depends on another's implementation.
package experiment
