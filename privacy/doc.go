// Package privacy releases experiment results under differential privacy and keeps
// the privacy budget that every release spends.
//
// A release noises, per variant, the number of units and, per metric, the sums Σ(y−c)
// and Σ(y−c)² of the per-unit values y clamped to the metric's declared bounds
// [L, U] (experiment.Metric.Bounds), centred at c = (L+U)/2. Each unit is in exactly
// one variant and contributes one value per metric after per-unit aggregation, so a
// unit added to or removed from the data changes one partition of each query by at
// most h = (U−L)/2 (h²/2 for the centred squares, 1 for counts): the L0 sensitivity
// is 1 and the L∞ sensitivities are those. The release ε (and δ for Gaussian noise)
// is split equally over the queries (sequential composition), and across variants
// and segments parallel composition applies because the partitions are disjoint.
// Noise comes from github.com/google/differential-privacy (Laplace by default,
// Gaussian as an option) through the noise.Noise interface, which tests replace by a
// zero-noise or a seeded implementation.
//
// From the noised sufficient statistics it derives means, variances (upper
// confidence bounds, never 0 under noise) and the lift of each variant over control
// with a confidence interval whose variance is the sampling variance plus the known
// variance of the added noise and whose critical value is that of the
// normal-Laplace error (mixQuantile); relative lifts use Fieller's interval,
// clipped to what the bounds allow, and comparisons say "not enough signal" when
// the noise dominates (see Compare). SRMTest checks the noised counts with their
// noise in the null distribution.
//
// Segment breakdowns (ReleaseSegments) keep a segment only when its noised unit
// count passes the threshold of the noise's partition-selection rule
// (noise.Noise.Threshold), so small segments are suppressed rather than leaked.
//
// The Ledger enforces per-experiment and per-holdout (ε, δ) budgets over a small
// storage contract (LedgerStore) whose Spend is atomic: a release that would
// overspend is refused with an experiment.BudgetExceeded error and spends nothing.
// Releases follow a schedule (Ledger.Release): one per release period per scope and
// subject, made by the period's first reader, spent and saved in one transaction,
// and served unchanged to every later reader of the period, so that reuse depends on
// the clock and never on the data.
// MemoryLedger is the in-process implementation; package store persists the ledger
// in DuckDB.
//
// References: Dwork and Roth (2014), The Algorithmic Foundations of Differential
// Privacy, §3.3 (Laplace mechanism), §3.5 (composition), App. A (Gaussian mechanism);
// Balle and Wang (2018), Improving the Gaussian Mechanism for Differential Privacy,
// ICML; Wilson et al. (2020), Differentially Private SQL with Bounded User
// Contribution, PoPETs 2020(2) (contribution bounding, partition selection).
package privacy
