package synth

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.10g, want %.10g ± %g", what, got, want, tol)
	}
}

// TestSimplexLSByHand checks problems whose answer follows from geometry.
func TestSimplexLSByHand(t *testing.T) {
	for _, c := range []struct {
		name string
		a    []float64 // rows × donors
		b    []float64
		w    []float64
		ssr  float64
	}{
		// Two donors (1,0) and (0,1), target the origin: the nearest point of
		// the segment is its midpoint, at squared distance 1/2.
		{"midpoint", []float64{1, 0, 0, 1}, []float64{0, 0}, []float64{0.5, 0.5}, 0.5},
		// Target inside the triangle (0,0),(3,0),(0,3): it is matched exactly
		// with its barycentric coordinates (1,1) = 1/3·each vertex.
		{"inside", []float64{0, 3, 0, 0, 0, 3}, []float64{1, 1}, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, 0},
		// Target (5,5) beyond the vertex (3,3) of the square's hull: the
		// vertex alone, squared distance 8.
		{"vertex", []float64{0, 3, 0, 3, 0, 0, 3, 3}, []float64{5, 5}, []float64{0, 0, 0, 1}, 8},
		// One row: the donors are the numbers 2, 4, 10; target 5 lies between
		// 4 and 10 (many weightings fit exactly; any has ssr 0).
		{"one row", []float64{2, 4, 10}, []float64{5}, nil, 0},
		// Target (2, 0) nearest the edge between (1,1) and (1,−1): weights ½, ½,
		// distance 1; the third donor (−1, 0) gets none.
		{"edge", []float64{1, 1, -1, 1, -1, 0}, []float64{2, 0}, []float64{0.5, 0.5, 0}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, ssr, err := SimplexLS(c.a, c.b)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "ssr", ssr, c.ssr, 1e-12)
			sum := 0.0
			for j, v := range w {
				sum += v
				if v < 0 {
					t.Errorf("w[%d] = %g < 0", j, v)
				}
				if c.w != nil {
					near(t, "w", v, c.w[j], 1e-12)
				}
			}
			near(t, "Σw", sum, 1, 1e-12)
			near(t, "ssr recomputed", residual(c.a, c.b, w), c.ssr, 1e-12)
		})
	}
}

func residual(a, b, w []float64) float64 {
	J := len(w)
	s := 0.0
	for t := range b {
		r := -b[t]
		for j := range w {
			r += a[t*J+j] * w[j]
		}
		s += r * r
	}
	return s
}

// bruteForce solves the same program by enumerating every support S: the
// equality-constrained least squares on S (KKT system by gonum), kept when
// every weight is non-negative; the best of them is the optimum. Exponential,
// for small J only: an independent check of the active-set path.
func bruteForce(a, b []float64, J int) float64 {
	best := math.Inf(1)
	T := len(b)
	for mask := 1; mask < 1<<J; mask++ {
		var S []int
		for j := range J {
			if mask&(1<<j) != 0 {
				S = append(S, j)
			}
		}
		m := len(S)
		k := mat.NewDense(m+1, m+1, nil)
		rhs := mat.NewVecDense(m+1, nil)
		for r, i := range S {
			for c, j := range S {
				s := 0.0
				for t := range T {
					s += a[t*J+i] * a[t*J+j]
				}
				k.Set(r, c, 2*s)
			}
			s := 0.0
			for t := range T {
				s += a[t*J+i] * b[t]
			}
			rhs.SetVec(r, 2*s)
			k.Set(r, m, 1)
			k.Set(m, r, 1)
		}
		rhs.SetVec(m, 1)
		var x mat.VecDense
		if err := x.SolveVec(k, rhs); err != nil {
			continue
		}
		w := make([]float64, J)
		ok := true
		for r, i := range S {
			w[i] = x.AtVec(r)
			ok = ok && w[i] >= -1e-12
		}
		if ok {
			best = math.Min(best, residual(a, b, w))
		}
	}
	return best
}

// TestSimplexLSRandom checks random problems against the brute-force optimum
// and the KKT conditions: with g = Aᵀ(Aw − b) and ν = min g, every donor with
// weight has gⱼ = ν and every donor without has gⱼ ≥ ν.
func TestSimplexLSRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 1))
	for trial := range 300 {
		J := 2 + rng.IntN(7)
		T := 1 + rng.IntN(10)
		a := make([]float64, T*J)
		b := make([]float64, T)
		for i := range a {
			a[i] = rng.NormFloat64() * 10
		}
		for i := range b {
			b[i] = rng.NormFloat64()*10 + 3*float64(trial%3)
		}
		w, ssr, err := SimplexLS(a, b)
		if err != nil {
			t.Fatal(err)
		}
		want := bruteForce(a, b, J)
		if math.Abs(ssr-want) > 1e-8*(1+want) {
			t.Fatalf("trial %d (T %d, J %d): ssr %.12g, brute force %.12g", trial, T, J, ssr, want)
		}
		g := make([]float64, J)
		scale := 0.0
		for tt := range T {
			r := -b[tt]
			for j := range J {
				r += a[tt*J+j] * w[j]
			}
			for j := range J {
				g[j] += a[tt*J+j] * r
				scale = math.Max(scale, math.Abs(a[tt*J+j]*b[tt]))
			}
		}
		nu := math.Inf(1)
		for _, v := range g {
			nu = math.Min(nu, v)
		}
		sum := 0.0
		for j := range J {
			sum += w[j]
			if w[j] < 0 || (w[j] > 1e-9 && g[j]-nu > 1e-7*(1+scale)) {
				t.Fatalf("trial %d: KKT fails at donor %d: w %g, g %g, ν %g", trial, j, w[j], g[j], nu)
			}
		}
		near(t, "Σw", sum, 1, 1e-12)
	}
}

// TestAffineMinFar: the Gram matrix of two donors far from a target (what
// the conformal interval's search makes of a treated series by subtracting a
// large trial effect): entries ~2·10⁸ that differ by ~10⁴. The solver used to
// stop there ("affine system of 2 donors is singular", condition number
// 9·10¹⁶, on a panel of daily market sales); the nearest point of the line
// through two points has μ₀ = (G₁₁ − G₀₁)/(G₀₀ − 2G₀₁ + G₁₁), here, by
// /usr/bin/python3 on the same three numbers:
//
//	a, b, c = 2.1620109279721427e+08, 2.1618894168597168e+08, 2.162204215747291e+08
//	(c - b) / (a - 2*b + c)   # 0.7215028020768711
func TestAffineMinFar(t *testing.T) {
	a, b, c := 2.1620109279721427e+08, 2.1618894168597168e+08, 2.162204215747291e+08
	mu, err := affineMin([]float64{a, b, b, c}, 2, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	// The denominator, 4.43e4, carries the inputs' rounding (~3e-8 each) to
	// about 1e-12 relative.
	near(t, "μ₀", mu[0], 0.7215028020768711, 1e-9)
	near(t, "μ₁", mu[1], 1-0.7215028020768711, 1e-9)
}

// TestSimplexLSFarFromTheDonors: targets 10⁴–10⁶ outside the donors' hull
// still reach the brute-force optimum.
func TestSimplexLSFarFromTheDonors(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 4))
	for trial := range 200 {
		J := 2 + rng.IntN(5)
		T := 5 + rng.IntN(11)
		a := make([]float64, T*J)
		b := make([]float64, T)
		for i := range a {
			a[i] = 50 + rng.NormFloat64()*5
		}
		shift := math.Pow(10, 4+float64(trial%3))
		for i := range b {
			b[i] = 50 + shift + rng.NormFloat64()
		}
		_, ssr, err := SimplexLS(a, b)
		if err != nil {
			t.Fatalf("trial %d (T %d, J %d, shift %g): %v", trial, T, J, shift, err)
		}
		if want := bruteForce(a, b, J); math.Abs(ssr-want) > 1e-9*want {
			t.Fatalf("trial %d: ssr %.15g, brute force %.15g", trial, ssr, want)
		}
	}
}
