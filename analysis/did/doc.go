// Package did estimates difference-in-differences effects: the 2×2 design from
// cell means and in regression form with classical, heteroskedasticity-robust
// (HC1) and cluster-robust (CR1) standard errors, two-way fixed effects on a
// panel with absorbed unit and period effects, event studies with a joint
// pre-trend test, and the group-time effects of Callaway & Sant'Anna (2021) for
// staggered adoption.
//
// The package is pure math over slices: it does no I/O and keeps no state.
// Caller bugs (slices of different lengths) panic with a "did:" prefix; data
// conditions (too few rows or clusters, a singular design, an unbalanced panel
// where a balanced one is needed) are returned as errors.
//
// Standard errors follow Stata's conventions so that results can be checked
// against published tables:
//
//	classical  V = s²(X'X)⁻¹,                         s² = e'e/(N−K), t on N−K dof
//	HC1        V = N/(N−K)·(X'X)⁻¹ Σᵢ eᵢ²xᵢxᵢ' (X'X)⁻¹,         t on N−K dof   (regress, vce(robust))
//	CR1        V = G/(G−1)·(N−1)/(N−K)·(X'X)⁻¹ Σ_g u_g u_g' (X'X)⁻¹,
//	           u_g = Σ_{i∈g} xᵢeᵢ,                               t on G−1 dof   (regress, vce(cluster))
//
// References: Card & Krueger (1994), AER 84(4):772–793; Cameron & Miller (2015),
// J. Human Resources 50(2):317–372; Callaway & Sant'Anna (2021), J. Econometrics
// 225(2):200–230; Guimarães & Portugal (2010), Stata Journal 10(4):628–649
// (alternating projections for high-dimensional fixed effects).
package did
