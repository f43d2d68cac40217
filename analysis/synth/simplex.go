package synth

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// ErrSolver is returned (wrapped) when the simplex solver does not converge
// or meets a singular affine system; it signals a numerically degenerate
// panel (for instance donors that repeat one another exactly).
var ErrSolver = errors.New("synth: simplex solver failed")

// SimplexLS solves the synthetic-control quadratic program
//
//	minimize ‖A·w − b‖²  subject to  w ≥ 0,  Σⱼ wⱼ = 1
//
// for A with rows periods (or predictors) and columns donors, stored row-major
// in a (len(b) × J). Because Σw = 1, A·w − b = (A − b·1ᵀ)·w = D·w, so the
// problem is the minimum-norm point of the convex hull of the columns dⱼ of D,
// which SimplexLS finds exactly with Wolfe's (1976) active-set algorithm: it
// keeps a corral (an affinely independent set S of columns), moves to the
// point of S's affine hull nearest the origin, drops the columns whose weight
// that makes negative, and adds the column j minimizing xᵀdⱼ until
// xᵀdⱼ ≥ xᵀx for every j (the KKT conditions: the gradient 2Dᵀx is at least
// its multiplier 2xᵀx everywhere and equal to it on the support). It returns
// the weights and the minimum ‖A·w − b‖².
//
// Reference: Wolfe, P. (1976), "Finding the nearest point in a polytope",
// Mathematical Programming 11:128–149.
func SimplexLS(a []float64, b []float64) (w []float64, ssr float64, err error) {
	T := len(b)
	if T == 0 || len(a)%T != 0 || len(a) == 0 {
		panic(fmt.Sprintf("synth: SimplexLS: %d coefficients for %d rows", len(a), T))
	}
	J := len(a) / T
	return simplexGram(gramD(a, b, J), J)
}

// gramD returns G = DᵀD, D = A − b·1ᵀ, J×J row-major.
func gramD(a, b []float64, J int) []float64 {
	g := make([]float64, J*J)
	d := make([]float64, J)
	for t := range b {
		row := a[t*J : (t+1)*J]
		for j := range d {
			d[j] = row[j] - b[t]
		}
		addOuter(g, d, 1)
	}
	return g
}

// addOuter adds s·d·dᵀ to the J×J matrix g (upper and lower halves).
func addOuter(g, d []float64, s float64) {
	J := len(d)
	for j, dj := range d {
		if dj == 0 {
			continue
		}
		dj *= s
		row := g[j*J : (j+1)*J]
		for k, dk := range d {
			row[k] += dj * dk
		}
	}
}

// simplexGram runs Wolfe's algorithm on the Gram matrix G = DᵀD alone:
// x = Dλ is never formed, since xᵀdⱼ = (Gλ)ⱼ and xᵀx = λᵀGλ.
func simplexGram(g []float64, J int) ([]float64, float64, error) {
	scale := 0.0
	j0 := 0
	for j := range J {
		if v := g[j*J+j]; v > scale {
			scale = v
		}
		if g[j*J+j] < g[j0*J+j0] {
			j0 = j
		}
	}
	w := make([]float64, J)
	if scale == 0 { // every donor equals the treated unit
		w[j0] = 1
		return w, 0, nil
	}
	const (
		tolStop = 1e-12 // Wolfe's Z1: relative to max ‖dⱼ‖²
		tolZero = 1e-12 // Wolfe's Z3: a weight below it is zero
	)
	S := []int{j0}
	lam := []float64{1}
	gx := make([]float64, J)
	maxIter := 50*J + 1000
	for iter := 0; ; iter++ {
		if iter > maxIter {
			return nil, 0, fmt.Errorf("%w: no convergence after %d iterations", ErrSolver, iter)
		}
		for j := range gx {
			gx[j] = 0
		}
		for s, i := range S {
			row := g[i*J : (i+1)*J]
			l := lam[s]
			for j := range gx {
				gx[j] += l * row[j]
			}
		}
		xx := 0.0
		for s, i := range S {
			xx += lam[s] * gx[i]
		}
		if xx <= tolStop*scale {
			break // the origin is in the hull: an exact fit
		}
		j := 0
		for k := range gx {
			if gx[k] < gx[j] {
				j = k
			}
		}
		if gx[j] >= xx-tolStop*scale {
			break // KKT: no column improves on x
		}
		in := false
		for _, i := range S {
			in = in || i == j
		}
		if in {
			break // rounding: x is optimal to working precision
		}
		S = append(S, j)
		lam = append(lam, 0)
		for minor := 0; ; minor++ {
			if minor > len(S)+1 {
				return nil, 0, fmt.Errorf("%w: minor cycle did not end", ErrSolver)
			}
			mu, err := affineMin(g, J, S)
			if err != nil {
				return nil, 0, err
			}
			pos := true
			for _, m := range mu {
				pos = pos && m > tolZero
			}
			if pos {
				lam = mu
				break
			}
			theta := 1.0
			for s, m := range mu {
				if m <= tolZero {
					if t := lam[s] / (lam[s] - m); t < theta {
						theta = t
					}
				}
			}
			for s := range lam {
				lam[s] = (1-theta)*lam[s] + theta*mu[s]
			}
			// Drop the columns whose weight reached zero (at least one did).
			k, sum := 0, 0.0
			drop, dropAt := math.Inf(1), -1
			for s := range lam {
				if lam[s] < drop {
					drop, dropAt = lam[s], s
				}
			}
			for s := range lam {
				if lam[s] > tolZero && s != dropAt {
					S[k], lam[k] = S[s], lam[s]
					sum += lam[k]
					k++
				}
			}
			S, lam = S[:k], lam[:k]
			for s := range lam {
				lam[s] /= sum
			}
		}
	}
	ssr := 0.0
	for s, i := range S {
		w[i] = lam[s]
		for r, k := range S {
			ssr += lam[s] * lam[r] * g[i*J+k]
		}
	}
	return w, math.Max(ssr, 0), nil
}

// affineMin returns the weights μ (Σμ = 1) of the point of the affine hull
// of the columns S nearest the origin: [G_SS 1; 1ᵀ 0][μ; ν] = [0; 1]. G_SS is
// scaled by its largest diagonal entry first, which leaves μ unchanged (ν
// scales with it): far from the origin (a treated series shifted by a large
// trial effect, as the conformal interval's search does) G's entries are
// ~10⁸ against the border's ones, and the unscaled system's condition number
// passes 10¹⁶ while the scaled one's stays that of the columns' geometry.
func affineMin(g []float64, J int, S []int) ([]float64, error) {
	m := len(S)
	if m == 1 {
		return []float64{1}, nil
	}
	scale := 0.0
	for _, i := range S {
		scale = math.Max(scale, g[i*J+i])
	}
	if scale == 0 {
		scale = 1
	}
	k := mat.NewDense(m+1, m+1, nil)
	for r, i := range S {
		for c, j := range S {
			k.Set(r, c, g[i*J+j]/scale)
		}
		k.Set(r, m, 1)
		k.Set(m, r, 1)
	}
	rhs := mat.NewVecDense(m+1, nil)
	rhs.SetVec(m, 1)
	var x mat.VecDense
	if err := x.SolveVec(k, rhs); err != nil {
		var c mat.Condition
		if !errors.As(err, &c) || float64(c) > 1e14 {
			return nil, fmt.Errorf("%w: affine system of %d donors is singular: %v", ErrSolver, m, err)
		}
	}
	mu := make([]float64, m)
	for i := range mu {
		mu[i] = x.AtVec(i)
	}
	return mu, nil
}
