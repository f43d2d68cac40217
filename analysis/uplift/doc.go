// Package uplift estimates who benefits from a treatment: conditional average
// treatment effects τ(x) = E[Y(1) − Y(0) | X = x] learned by the T-, S- and
// X-learners (Künzel, Sekhon, Bickel & Yu 2019, PNAS 116:4156–4165) over base
// learners written in Go — ridge and logistic regression and histogram-based
// gradient-boosted regression trees — and the evaluation of a learned uplift
// ranking on held-out randomized data: cumulative gain (uplift) and Qini
// curves, the Qini coefficient and AUUC with causalml's definitions, uplift by
// decile, and the value of targeting the top k% with a bootstrap interval.
//
// The package is pure math: no I/O, no clock, and randomness only from a
// rand.Source the caller passes. Every learner is deterministic: the same data
// and options give the same model, bit for bit. Caller bugs (slices of
// different lengths) panic with an "uplift:" prefix; data conditions (an empty
// arm, a constant outcome) are returned as errors.
package uplift
