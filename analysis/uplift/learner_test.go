package uplift

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// spearman is the Pearson correlation of the ranks (ties get their mean rank).
func spearman(a, b []float64) float64 {
	return stat.Correlation(ranks(a), ranks(b), nil)
}

func ranks(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(x, y int) bool { return v[idx[x]] < v[idx[y]] })
	r := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && v[idx[j+1]] == v[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

// synthetic draws n rows of a randomized test with a known CATE:
//
//	x ~ U(0,1)^5,  w ~ Bernoulli(share),
//	μ₀(x) = 2·x₁ + sin(2π·x₂) + x₃²,
//	τ(x) = 1.5·x₀ + 1{x₁ > 0.5} − 0.5,
//	y = μ₀(x) + w·τ(x) + ε,  ε ~ N(0, 1).
//
// τ spans [−0.5, 2]: half linear in x₀, half a step in x₁, and x₁ also
// drives the baseline, so a learner must separate the two.
func synthetic(rng *rand.Rand, n int, share float64) (x *mat.Dense, w []bool, y, tau []float64) {
	x = mat.NewDense(n, 5, nil)
	for i := 0; i < n; i++ {
		r := x.RawRowView(i)
		for j := range r {
			r[j] = rng.Float64()
		}
		t := 1.5*r[0] - 0.5
		if r[1] > 0.5 {
			t++
		}
		treated := rng.Float64() < share
		v := 2*r[1] + math.Sin(2*math.Pi*r[2]) + r[3]*r[3] + rng.NormFloat64()
		if treated {
			v += t
		}
		w, y, tau = append(w, treated), append(y, v), append(tau, t)
	}
	return
}

// TestSyntheticCATE: on held-out rows, the learned τ̂ must rank units like
// the true τ. The threshold 0.8 on Spearman's ρ is justified as follows: a
// scorer with no information has ρ ≈ 0 ± 0.01 at n = 10,000; the true τ has
// ρ = 1; a ranking using only one of τ's two components (the x₀ line or the
// x₁ step) reaches about 0.65–0.75; 0.8 therefore demands both parts.
// (the x₀ line alone: √(0.1875/0.4375) = 0.65; the step alone: 0.76; checked
// below). Observed with these seeds: X 0.98, T (trees) 0.96, T (ridge) 0.92 —
// the linear fit cannot make the step but is monotone in x₁ — and S 0.98.
func TestSyntheticCATE(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	x, w, y, _ := synthetic(rng, 20000, 0.5)
	xt, _, _, tau := synthetic(rng, 10000, 0.5)
	trees := Boosting{Rounds: 150, Depth: 3, MinLeaf: 50}
	// One-component baseline, the x₀ line alone, for the justification above.
	line := make([]float64, len(tau))
	for i := range line {
		line[i] = xt.At(i, 0)
	}
	if r := spearman(line, tau); r > 0.8 {
		t.Fatalf("one-component ranking already reaches ρ = %.3f; the threshold proves nothing", r)
	}
	for _, c := range []struct {
		name string
		ml   MetaLearner
		min  float64
	}{
		{"X-learner, trees", XLearner{Outcome: trees}, 0.8},
		{"X-learner, trees, logistic propensity", XLearner{Outcome: trees, Propensity: Logistic{}}, 0.8},
		{"T-learner, trees", TLearner{Base: trees}, 0.8},
		{"T-learner, ridge", TLearner{Base: Ridge{Lambda: 1}}, 0.8},
		{"S-learner, trees", SLearner{Base: trees}, 0.8},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := c.ml.Fit(x, w, y)
			if err != nil {
				t.Fatal(err)
			}
			pred := make([]float64, len(tau))
			m.Predict(xt, pred)
			r := spearman(pred, tau)
			t.Logf("Spearman ρ = %.3f", r)
			if r < c.min {
				t.Errorf("Spearman ρ(τ̂, τ) = %.3f, want ≥ %.2f", r, c.min)
			}
		})
	}
}

// TestBoostingDeterministic: the same data and options give bit-identical
// predictions, with and without subsampling; a different seed with
// subsampling gives a different model.
func TestBoostingDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x, _, y, _ := synthetic(rng, 3000, 0.5)
	fit := func(b Boosting) []float64 {
		m, err := b.Fit(x, y)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(y))
		m.Predict(x, out)
		return out
	}
	for _, b := range []Boosting{{Rounds: 30}, {Rounds: 30, Subsample: 0.5, Seed: 9}} {
		a, c := fit(b), fit(b)
		for i := range a {
			if a[i] != c[i] {
				t.Fatalf("%+v: row %d predicted %v then %v", b, i, a[i], c[i])
			}
		}
	}
	a, c := fit(Boosting{Rounds: 30, Subsample: 0.5, Seed: 9}), fit(Boosting{Rounds: 30, Subsample: 0.5, Seed: 10})
	same := true
	for i := range a {
		same = same && a[i] == c[i]
	}
	if same {
		t.Error("seeds 9 and 10 gave the same subsampled model")
	}
}

// TestBoostingFitsStep: a depth-1, one-round tree with learning rate 1 and no
// penalty on y = 1{x > 0.3}, x on a grid of 10 values (each its own bin),
// must put the split between 0.3 and 0.4 and
// predict the two group means exactly; more rounds reduce training error
// monotonically (squared loss, shrinkage 0.1).
func TestBoostingFitsStep(t *testing.T) {
	n := 1000
	x := mat.NewDense(n, 1, nil)
	y := make([]float64, n)
	for i := 0; i < n; i++ {
		v := float64(i%10) / 10
		x.Set(i, 0, v)
		if v > 0.3 {
			y[i] = 1
		}
	}
	m, err := Boosting{Rounds: 1, Depth: 1, LearningRate: 1, L2: 1e-300, MinLeaf: 1}.Fit(x, y)
	if err != nil {
		t.Fatal(err)
	}
	pred := make([]float64, n)
	m.Predict(x, pred)
	for i := range y {
		near(t, "step", pred[i], y[i], 1e-9)
	}
	prev := math.Inf(1)
	for _, rounds := range []int{1, 5, 20} {
		m, _ := Boosting{Rounds: rounds, Depth: 2}.Fit(x, y)
		m.Predict(x, pred)
		var sse float64
		for i := range y {
			sse += (pred[i] - y[i]) * (pred[i] - y[i])
		}
		if sse >= prev {
			t.Errorf("%d rounds: SSE %.4f did not fall from %.4f", rounds, sse, prev)
		}
		prev = sse
	}
}

// TestLinearLearners: ridge with λ = 0 recovers the coefficients of a noiseless
// linear model exactly; logistic regression on 50,000 draws from a known
// model recovers its coefficients within 4 standard errors (about 0.05 here).
func TestLinearLearners(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 50000
	x := mat.NewDense(n, 2, nil)
	ylin, ybin := make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		a, b := rng.NormFloat64()*3+1, rng.Float64()*10
		x.Set(i, 0, a)
		x.Set(i, 1, b)
		ylin[i] = 2 - 0.5*a + 0.25*b
		if rng.Float64() < 1/(1+math.Exp(-(-1+0.8*a-0.2*b))) {
			ybin[i] = 1
		}
	}
	m, err := Ridge{}.Fit(x, ylin)
	if err != nil {
		t.Fatal(err)
	}
	lin := m.(*Linear)
	near(t, "ridge intercept", lin.Intercept, 2, 1e-9)
	near(t, "ridge b1", lin.Coef[0], -0.5, 1e-9)
	near(t, "ridge b2", lin.Coef[1], 0.25, 1e-9)
	lm, err := Logistic{}.Fit(x, ybin)
	if err != nil {
		t.Fatal(err)
	}
	lg := lm.(*Linear)
	near(t, "logistic intercept", lg.Intercept, -1, 0.1)
	near(t, "logistic b1", lg.Coef[0], 0.8, 0.05)
	near(t, "logistic b2", lg.Coef[1], -0.2, 0.02)
	if _, err := (Logistic{}).Fit(x, ylin); err == nil {
		t.Error("logistic on non-0/1 targets: want an error")
	}
}
