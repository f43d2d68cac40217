// Package analysis is Lift's statistics core: pure functions over per-variant
// sufficient statistics (n, Σy, Σy², and for CUPED Σx, Σx², Σxy; for ratio
// metrics Σd, Σd², Σyd, …, each over values minus a shift that travels with the
// sums, so that they stay exact at any offset: see Arm), so that the same code
// serves sums computed by DuckDB on a laptop or by a distributed warehouse. It
// does no I/O and reads no clock or global randomness.
//
// The conventions follow GrowthBook's stats engine (gbstats 0.8.0) so that results
// can be compared one to one:
//
//   - Mean metrics use the sample variance Σ(y−ȳ)²/(n−1), from shifted sums;
//     proportion metrics use p(1−p). A constant arm is analysed with the other
//     arm's variance (Welch–Satterthwaite then gives that arm's n − 1).
//   - The absolute effect is ȳ_b − ȳ_a with variance v_b/n_b + v_a/n_a; the
//     relative effect (lift) is (ȳ_b − ȳ_a)/|ȳ_a| with its variance by the delta
//     method. Degrees of freedom are Welch–Satterthwaite on the per-arm variances;
//     intervals and p-values use Student's t.
//   - Ratio metrics (Σy/Σd) use the delta method for the per-arm variance.
//   - CUPED pools θ = Cov(y, x)/Var(x) over the two arms being compared.
//   - Sequential testing uses the asymptotic confidence sequences of
//     Waudby-Smith et al. (2023, arXiv:2103.06476).
//
// Analyze is the entry point for one metric (sums in, MetricResult out; the
// JSON of "lift analyze" and of the results API). Usable on their own: Welch and
// WelchFromSamples, TTest, Sequential, SRM, HolmAdjust, BHAdjust and Adjust,
// Power, SampleSize, MDE and Duration, and LinRegression (Lin 2013 regression
// adjustment with robust standard errors, the one row-level estimator here).
// Health checks (health.go): SequentialSRM (Lindon & Malek 2022, anytime-valid),
// PreExposureImbalance, ShareDriftTest and Interaction.
//
// Caller bugs (mismatched lengths) panic; bad input is an experiment.Invalid
// error naming the field; degenerate data (n < 2, zero variance, a zero control
// mean) flags the comparison (see the Flag constants) and never yields NaN.
package analysis
