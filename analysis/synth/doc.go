// Package synth estimates the effect of an intervention on one or a few
// units of a panel (test markets in a geo experiment, a state that passes a
// law) by synthetic control: a weighted average of untreated donor units that
// tracks the treated unit before the intervention stands in for it after.
//
// Estimators (Run, Options.Method):
//
//	SCM        w = argmin ‖Y₁ − Y₀w‖²  s.t. w ≥ 0, Σw = 1  over the pre-period
//	           (or over predictors X with a diagonal V: Σₖ Vₖ(x₁ₖ − X₀ₖw)²),
//	           solved exactly as the quadratic program it is (SimplexLS:
//	           Wolfe's minimum-norm-point active-set algorithm).
//	Augmented  w_aug = w + Ãᵀ(ÃÃᵀ + λI)⁻¹(Y₁ − Y₀w), Ã the donors' pre-period
//	           outcomes centred across donors, λ by leave-one-period-out
//	           cross-validation with the one-standard-error rule (augsynth).
//
// With Options.Intercept each unit's pre-period mean is removed first (the
// demeaned, "fixed effects" variant GeoLift uses by default). With several
// treated units the average of their series is the treated series (GeoLift's
// aggregation of test markets); PerMarket adds one fit per market.
//
// Inference: conformal (Chernozhukov, Wüthrich & Zhu 2021; GeoLift's
// default) for the average effect and for each post period, with moving-block
// permutations of the residuals refitted under the null and intervals by test
// inversion; and the in-space placebo test of Abadie, Diamond & Hainmueller
// (2010) on the post/pre RMSPE ratio, with its interval for a constant effect.
//
// Diagnostics: pre-period RMSPE, the share of pre-period variance the
// synthetic explains, the weights, the λ cross-validation curve, and a
// warning when the treated series leaves the donors' range (hence their
// convex hull) in some pre-period.
//
// The package is pure math over slices: no I/O, no state. Caller bugs (a
// ragged panel, an index out of range) panic with a "synth:" prefix; data
// conditions are errors wrapping ErrInsufficient or ErrSolver.
//
// References: Abadie, Diamond & Hainmueller (2010), JASA 105(490):493–505;
// Ben-Michael, Feller & Rothstein (2021), JASA 116(536):1789–1803;
// Chernozhukov, Wüthrich & Zhu (2021), JASA 116(536):1849–1864; Wolfe (1976),
// Mathematical Programming 11:128–149.
package synth
