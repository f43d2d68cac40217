package did

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// GroupTime is one group-time average treatment effect ATT(g,t) of
// Callaway & Sant'Anna (2021): the effect in period t on the units first
// treated in period g.
type GroupTime struct {
	Group, Time int
	Coef
	Base     int // the base period the change is measured from
	NTreated int // units in cohort g
	NControl int // not-yet-treated comparison units
}

// Post reports whether t ≥ g (a treated period, not a pre-period placebo).
func (g GroupTime) Post() bool { return g.Time >= g.Group }

// Staggered is the result of CallawaySantAnna.
type Staggered struct {
	ATT     []GroupTime // by group, then time
	Simple  Coef        // Σ_{t≥g} w_g ATT(g,t), w_g ∝ cohort size
	Dynamic []EventCoef // θ(e) = Σ_g w_g ATT(g, g+e), by event time e
	Overall Coef        // mean of θ(e) over e ≥ 0
	Group   []GroupCoef // θ(g): mean of ATT(g,t) over t ≥ g, by cohort g
	// GroupOverall is Σ_g θ(g)·P(G = g | treated): did::aggte's "group"
	// overall ATT.
	GroupOverall Coef
	NUnits       int // units used
	Dropped      int // units dropped because treated in the first period
}

// GroupCoef is the average effect on cohort Group over its treated periods.
type GroupCoef struct {
	Group int
	Coef
}

// CallawaySantAnna estimates the group-time average treatment effects of
// Callaway & Sant'Anna (2021, J. Econometrics 225:200–230) on a balanced
// panel without covariates, with not-yet-treated units as controls:
//
//	ATT(g,t) = E[Y_t − Y_b | G = g] − E[Y_t − Y_b | C_{g,t}],
//
// where b = g−1 (the last period before g) for t ≥ g and b = t−1 for the
// pre-period placebos t < g (the "varying" base period of the R package did),
// and C_{g,t} holds the never-treated units and those with G > max(t, b),
// G ≠ g. cohort[i] is the first treated period of row i's unit, NeverTreated
// when never treated; units treated in the first period have no pre-period and
// are dropped.
//
// Aggregations follow did::aggte: "simple" weights every post cell (t ≥ g) by
// its cohort's share of units; "dynamic" averages ATT(g, g+e) over cohorts
// with weights ∝ cohort size, and Overall averages θ(e) over e ≥ 0.
//
// The "group" aggregation θ(g) is the plain mean of ATT(g,t) over t ≥ g, and
// GroupOverall weights the θ(g) by cohort size (did::aggte, type = "group").
//
// Standard errors are analytic, from the influence functions of the cell
// means (and, for the aggregations, of the estimated cohort weights), with the
// unit as the cluster: se = √(Σᵢ ψᵢ²)/n. This equals did::att_gt and aggte with
// bstrap = FALSE; the package's default multiplier bootstrap and its uniform
// confidence bands are not provided. Intervals and p-values are normal.
func CallawaySantAnna(p Panel, cohort []int, alpha float64) (*Staggered, error) {
	p.check()
	if len(cohort) != len(p.Y) {
		panic(fmt.Sprintf("did: CallawaySantAnna: %d cohorts for %d rows", len(cohort), len(p.Y)))
	}
	if alpha == 0 {
		alpha = 0.05
	}
	times := uniqueSorted(p.Time)
	nt := len(times)
	if nt < 2 {
		return nil, errors.New("did: staggered adoption needs at least 2 periods")
	}
	tIndex := make(map[int]int, nt)
	for i, t := range times {
		tIndex[t] = i
	}
	uid, nu := denseCodes(p.Unit)
	if len(p.Y) != nu*nt {
		return nil, fmt.Errorf("did: staggered adoption needs a balanced panel: %d rows for %d units × %d periods", len(p.Y), nu, nt)
	}
	y := make([]float64, nu*nt)
	seen := make([]bool, nu*nt)
	ucohort := make([]int, nu)
	useen := make([]bool, nu)
	for i, u := range uid {
		k := u*nt + tIndex[p.Time[i]]
		if seen[k] {
			return nil, fmt.Errorf("did: unit %d has two rows in period %d (row %d)", p.Unit[i], p.Time[i], i)
		}
		seen[k], y[k] = true, p.Y[i]
		if !useen[u] {
			useen[u], ucohort[u] = true, cohort[i]
		} else if ucohort[u] != cohort[i] {
			return nil, fmt.Errorf("did: unit %d has cohorts %d and %d (row %d)", p.Unit[i], ucohort[u], cohort[i], i)
		}
	}
	// gi[u] is the index of the first period ≥ the unit's cohort; nt when never
	// treated within the panel.
	gi := make([]int, nu)
	keep := make([]bool, nu)
	res := &Staggered{}
	for u, g := range ucohort {
		gi[u] = nt
		if g != NeverTreated {
			gi[u] = sort.SearchInts(times, g)
		}
		keep[u] = gi[u] > 0
		if keep[u] {
			res.NUnits++
		} else {
			res.Dropped++
		}
	}
	n := float64(res.NUnits)
	groups := map[int]int{} // cohort index → units
	for u := range gi {
		if keep[u] && gi[u] < nt {
			groups[gi[u]]++
		}
	}
	if len(groups) == 0 {
		return nil, errors.New("did: staggered adoption needs a cohort treated after the first period")
	}
	gs := make([]int, 0, len(groups))
	for g := range groups {
		gs = append(gs, g)
	}
	sort.Ints(gs)

	var psis [][]float64 // influence function per cell, over units (dropped units stay 0)
	for _, g := range gs {
		for ti := 1; ti < nt; ti++ {
			b := ti - 1
			if ti >= g {
				b = g - 1
			}
			m := max(ti, b)
			var sg, sc float64
			var ng, nc int
			for u := range gi {
				if !keep[u] {
					continue
				}
				d := y[u*nt+ti] - y[u*nt+b]
				switch {
				case gi[u] == g:
					sg += d
					ng++
				case gi[u] > m:
					sc += d
					nc++
				}
			}
			if nc == 0 {
				continue // no comparison units left: ATT(g,t) is not identified
			}
			mg, mc := sg/float64(ng), sc/float64(nc)
			psi := make([]float64, nu)
			var ss float64
			// Changes constant within the cohort and within its controls (to
			// rounding of the outcomes) make ATT(g,t) exact: its influence
			// function is rounding noise and is set to 0, so the standard
			// error is 0 rather than ≈ 1e-16 (R's did::att_gt makes such a
			// standard error NA).
			first := [2]float64{math.NaN(), math.NaN()}
			var spread, size float64
			for u := range gi {
				if !keep[u] {
					continue
				}
				d := y[u*nt+ti] - y[u*nt+b]
				arm := -1
				switch {
				case gi[u] == g:
					psi[u] = n / float64(ng) * (d - mg)
					arm = 0
				case gi[u] > m:
					psi[u] = -n / float64(nc) * (d - mc)
					arm = 1
				}
				if arm >= 0 {
					if math.IsNaN(first[arm]) {
						first[arm] = d
					}
					spread = max(spread, math.Abs(d-first[arm]))
					size = max(size, math.Abs(y[u*nt+ti])+math.Abs(y[u*nt+b]))
				}
				ss += psi[u] * psi[u]
			}
			if spread <= robustTol*size {
				clear(psi)
				ss = 0
			}
			att := mg - mc
			name := "ATT(" + strconv.Itoa(times[g]) + "," + strconv.Itoa(times[ti]) + ")"
			res.ATT = append(res.ATT, GroupTime{
				Group: times[g], Time: times[ti], Base: times[b],
				Coef:     coef(name, att, math.Sqrt(ss)/n, math.Inf(1), alpha),
				NTreated: ng, NControl: nc,
			})
			psis = append(psis, psi)
		}
	}

	ag := aggregator{att: res.ATT, psis: psis, keep: keep, n: n, cohortOf: make([]int, nu), size: map[int]float64{}}
	for u := range gi {
		ag.cohortOf[u] = NeverTreated
		if gi[u] < nt {
			ag.cohortOf[u] = times[gi[u]]
		}
	}
	for g, k := range groups {
		ag.size[times[g]] = float64(k)
	}
	var post []int
	byE := map[int][]int{}
	for c, a := range res.ATT {
		if a.Post() {
			post = append(post, c)
		}
		e := sort.SearchInts(times, a.Time) - sort.SearchInts(times, a.Group)
		byE[e] = append(byE[e], c)
	}
	est, psi := ag.aggregate(post)
	res.Simple = coef("simple", est, math.Sqrt(dot(psi, psi))/n, math.Inf(1), alpha)
	es := make([]int, 0, len(byE))
	for e := range byE {
		es = append(es, e)
	}
	sort.Ints(es)
	overallPsi := make([]float64, nu)
	var overall, ne float64
	for _, e := range es {
		if e >= 0 {
			ne++
		}
	}
	for _, e := range es {
		est, psi := ag.aggregate(byE[e])
		res.Dynamic = append(res.Dynamic, EventCoef{RelTime: e, Coef: coef("e"+strconv.Itoa(e), est, math.Sqrt(dot(psi, psi))/n, math.Inf(1), alpha)})
		if e >= 0 {
			overall += est / ne
			for u := range psi {
				overallPsi[u] += psi[u] / ne
			}
		}
	}
	if ne > 0 {
		res.Overall = coef("dynamic", overall, math.Sqrt(dot(overallPsi, overallPsi))/n, math.Inf(1), alpha)
	}
	// By cohort: within a cohort the weights are equal (and their estimation
	// adds nothing); across cohorts they are the cohort shares, estimated.
	byG := ag
	byG.att, byG.psis = nil, nil
	for _, g := range gs {
		var cells []int
		for _, c := range post {
			if res.ATT[c].Group == times[g] {
				cells = append(cells, c)
			}
		}
		if len(cells) == 0 {
			continue
		}
		est, psi := ag.aggregate(cells)
		c := coef("g"+strconv.Itoa(times[g]), est, math.Sqrt(dot(psi, psi))/n, math.Inf(1), alpha)
		res.Group = append(res.Group, GroupCoef{Group: times[g], Coef: c})
		byG.att, byG.psis = append(byG.att, GroupTime{Group: times[g], Coef: c}), append(byG.psis, psi)
	}
	if len(byG.att) > 0 {
		all := make([]int, len(byG.att))
		for i := range all {
			all[i] = i
		}
		est, psi := byG.aggregate(all)
		res.GroupOverall = coef("group", est, math.Sqrt(dot(psi, psi))/n, math.Inf(1), alpha)
	}
	return res, nil
}

// aggregator forms weighted averages of group-time effects with weights
// proportional to cohort size, as did::aggte does.
type aggregator struct {
	att      []GroupTime
	psis     [][]float64
	keep     []bool
	n        float64
	cohortOf []int           // cohort of each unit (NeverTreated if none)
	size     map[int]float64 // units per cohort
}

// aggregate returns θ = Σ_k w_k ATT_k with w_k = p_k/Σp, p_k the share of
// units in cell k's cohort, and θ's influence function
//
//	ψ_i = Σ_k w_k ψ_k,i + Σ_k wif_k,i ATT_k,
//	wif_k,i = (1{G_i=g_k} − p_k)/Σp − Σ_j (1{G_i=g_j} − p_j)·p_k/(Σp)²,
//
// which accounts for the estimation of the weights (did::aggte's wif).
func (a *aggregator) aggregate(cells []int) (float64, []float64) {
	p := make([]float64, len(cells))
	var sumP float64
	for j, c := range cells {
		p[j] = a.size[a.att[c].Group] / a.n
		sumP += p[j]
	}
	var est float64
	psi := make([]float64, len(a.keep))
	for j, c := range cells {
		w := p[j] / sumP
		est += w * a.att[c].Estimate
		for u, v := range a.psis[c] {
			psi[u] += w * v
		}
	}
	for u, kept := range a.keep {
		if !kept {
			continue
		}
		var sumD float64
		for j, c := range cells {
			sumD += indicator(a.cohortOf[u] == a.att[c].Group) - p[j]
		}
		for j, c := range cells {
			wif := (indicator(a.cohortOf[u] == a.att[c].Group)-p[j])/sumP - sumD*p[j]/(sumP*sumP)
			psi[u] += wif * a.att[c].Estimate
		}
	}
	return est, psi
}

func indicator(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func uniqueSorted(v []int) []int {
	m := make(map[int]struct{})
	for _, x := range v {
		m[x] = struct{}{}
	}
	out := make([]int, 0, len(m))
	for x := range m {
		out = append(out, x)
	}
	sort.Ints(out)
	return out
}
