// Package bandit is the pure mathematics of adaptive (multi-armed bandit)
// experiments: how traffic moves to the better arms each period, how a unit
// keeps its arm while the weights move, and how effects are estimated so that
// adaptive allocation does not bias them. It does no I/O and reads no clock or
// global randomness (every simulation takes a *rand.Rand).
//
// # Allocation (Thompson sampling)
//
// Each period the weights are recomputed from the reward's posterior per arm
// (Weights). The probability that arm i is best, π_i = P(μ_i = max_j μ_j | data),
// is estimated by drawing every arm's mean from its posterior Draws times and
// counting which arm is largest (ProbBest; Thompson 1933, Russo et al. 2018,
// "A Tutorial on Thompson Sampling", §3):
//
//   - binary rewards: μ_i ~ Beta(1 + s_i, 1 + n_i − s_i) (uniform prior);
//   - continuous rewards: the normal model with unknown variance under the
//     reference prior p(μ, σ²) ∝ 1/σ², whose marginal posterior of the mean is
//     μ_i ~ ȳ_i + (s_i/√n_i)·t_{n_i−1} (Gelman et al., Bayesian Data Analysis,
//     3rd ed., §3.2); an arm needs n_i ≥ 2.
//
// Top-two Thompson sampling (Russo 2020, "Simple Bayesian algorithms for best
// arm identification", Operations Research 68(6)) plays the leader with
// probability β and otherwise the best arm of an independent redraw that is not
// the leader; with independent redraws its allocation is exactly
//
//	ψ_j = β·π_j + (1 − β)·π_j·Σ_{i≠j} π_i/(1 − π_i).
//
// The floor keeps every arm explorable and every period's comparison
// estimable: w_j = m + (1 − K·m)·ψ_j for K arms and minimum share m (K·m ≤ 1).
// Until every arm has BurnIn units the weights stay equal.
//
// # Sticky assignment
//
// Each recomputation is a weight version. A unit's arm is a function of stored
// state: the version at which it was first assigned (stored once, insert if
// absent, see Sticky) and the GrowthBook hash of the unit under that version's
// weights (Arm). Later versions never move it: the weights it is read with are
// those of its first version, whatever the current ones are.
//
// # Inference
//
// Units are grouped by the version at which they entered (their cohort). Within
// cohort k the arms were randomized with fixed, known probabilities w_k (chosen
// from earlier cohorts' data only), so the cohort's difference in means
// Δ_k = ȳ_{k,a} − ȳ_{k,c} is unbiased for the effect given the history. The naive
// difference of pooled means is not (Nie et al. 2018, "Why adaptively collected
// data have negative bias"; Hadad et al. 2021, "Confidence intervals for policy
// evaluation in adaptive experiments", PNAS 118(15)): arms that look bad early
// get less traffic, so their early bad luck is never averaged out, and a time
// trend weighs on the arms in proportion to when they got traffic. Estimate
// combines the cohorts with weights fixed by the traffic alone, c_k = N_k/ΣN
// (N_k the cohort's size over all arms, which does not depend on the outcomes):
//
//	Δ̂ = Σ_k c_k·Δ_k,  Var(Δ̂) = Σ_k c_k²·(v_{k,a}/n_{k,a} + v_{k,c}/n_{k,c}),
//
// with a normal 1 − α interval. Because the c_k do not depend on outcomes, Δ̂ is
// unbiased; its coverage at 95% is checked by simulation in the tests, under a
// true null and a true effect, with a time trend. This is the stratified
// (post-stratified by period) estimator GrowthBook uses for its bandits, with
// traffic weights in place of estimated-variance weights, which would depend on
// the outcomes. Cohorts where one of the two arms has fewer than 2 units are
// left out and counted (Effect.SkippedCohorts).
//
// Regret reports the estimated cumulative regret Σ_a n_a(μ̂* − μ̂_a) from the
// per-arm stratified means; ProbBest the chance each arm is best.
package bandit
