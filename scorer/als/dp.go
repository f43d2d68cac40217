package als

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer/internal/linalg"
)

// DP configures differentially private training (Options.DP): user-level
// (ε, δ)-differential privacy of the item factors, by the Gaussian mechanism on
// the item step's sufficient statistics.
//
// Each sweep's item step reads the users only through
//
//	G   = Σ_u x̄_u x̄_uᵀ                    (the Gram matrix, d×d)
//	A_i = Σ_{u ∋ i} α x̄_u x̄_uᵀ             (per item, d×d)
//	b_i = Σ_{u ∋ i} (1+α) x̄_u              (per item, d)
//
// where x̄_u is user u's factor clipped to L2 norm Clip and each user keeps at most
// MaxItems items, each with preference 1 and confidence 1 + α (interaction counts
// are not used: binary implicit feedback). Adding or removing one user changes
// this release by at most, in L2 norm (Frobenius for the matrices),
//
//	Δ = √( Clip⁴ (1 + m α²) + m (1+α)² Clip² ),   m = MaxItems,
//
// and Gaussian noise N(0, σ²) is added to every coordinate of G, of each A_i (its
// upper triangle, mirrored, so it stays symmetric) and of each b_i. One sweep is
// then ρ-zCDP with ρ = Δ²/(2σ²) (Bun & Steinke 2016, "Concentrated Differential
// Privacy", TCC, Prop. 1.6), T sweeps compose to Tρ (Lemma 2.3), and ρ-zCDP
// implies (ρ + 2√(ρ ln(1/δ)), δ)-DP (Prop. 1.3); SigmaFor inverts that for σ.
// The item solves are post-processing: a noisy system that is not positive
// definite gets its diagonal raised until it is.
//
// The guarantee covers the item factors and everything computed from them alone
// (the ranking any other user sees). The user factors in the model file are each
// computed from one user's own history and the private item factors: they reveal
// that user's history to whoever reads the file, as any personal model does.
type DP struct {
	Epsilon  float64 // ε > 0
	Delta    float64 // δ in (0, 1) (default 1e-6)
	Clip     float64 // L2 bound on a user factor (default 1)
	MaxItems int     // items kept per user (default 50); the rest are dropped at random (seeded)
}

func (p *DP) fill() {
	if p.Delta == 0 {
		p.Delta = 1e-6
	}
	if p.Clip == 0 {
		p.Clip = 1
	}
	if p.MaxItems == 0 {
		p.MaxItems = 50
	}
}

func (p *DP) validate() error {
	bad := func(field, format string, args ...any) error {
		return experiment.E(experiment.Invalid, experiment.Field("dp."+field), experiment.Errorf(format, args...))
	}
	switch {
	case !(p.Epsilon > 0) || math.IsInf(p.Epsilon, 0):
		return bad("epsilon", "must be positive and finite, got %g", p.Epsilon)
	case !(p.Delta > 0 && p.Delta < 1):
		return bad("delta", "must be in (0, 1), got %g", p.Delta)
	case !(p.Clip > 0) || math.IsInf(p.Clip, 0):
		return bad("clip", "must be positive and finite, got %g", p.Clip)
	case p.MaxItems < 1:
		return bad("max_items", "must be at least 1, got %d", p.MaxItems)
	}
	return nil
}

// Sensitivity returns Δ, the L2 sensitivity of one sweep's item statistics to one
// user, for confidence scale alpha (see DP).
func (p DP) Sensitivity(alpha float64) float64 {
	p.fill()
	c2, m := p.Clip*p.Clip, float64(p.MaxItems)
	return math.Sqrt(c2*c2*(1+m*alpha*alpha) + m*(1+alpha)*(1+alpha)*c2)
}

// SigmaFor returns the noise standard deviation that makes sweeps Gaussian
// releases of L2 sensitivity delta2 (ε, δ)-DP in total, through zCDP:
// ρ = (√(ln(1/δ) + ε) − √(ln(1/δ)))², σ = Δ·√(T / (2ρ)).
func SigmaFor(epsilon, delta, sensitivity float64, sweeps int) float64 {
	l := math.Log(1 / delta)
	r := math.Sqrt(l+epsilon) - math.Sqrt(l)
	rho := r * r
	return sensitivity * math.Sqrt(float64(sweeps)/(2*rho))
}

// limitItems returns rows with at most m entries each, the kept ones drawn
// uniformly without replacement from a PCG source seeded by seed and the row,
// and every r set to 1.
func limitItems(rows [][]entry, m int, seed uint64) [][]entry {
	out := make([][]entry, len(rows))
	for u, es := range rows {
		kept := append([]entry(nil), es...)
		if len(kept) > m {
			rng := rand.New(rand.NewPCG(seed, uint64(u)))
			rng.Shuffle(len(kept), func(a, b int) { kept[a], kept[b] = kept[b], kept[a] })
			kept = kept[:m]
		}
		for j := range kept {
			kept[j].r = 1
		}
		out[u] = kept
	}
	return out
}

// transpose turns per-user rows into per-item rows over ni items.
func transpose(byUser [][]entry, ni int) [][]entry {
	out := make([][]entry, ni)
	for u, es := range byUser {
		for _, e := range es {
			out[e.idx] = append(out[e.idx], entry{idx: int32(u), r: e.r, n: e.n})
		}
	}
	return out
}

// clipRows returns x with each d-row scaled to L2 norm at most c.
func clipRows(x []float64, d int, c float64) []float64 {
	out := append([]float64(nil), x...)
	for r := 0; r < len(out); r += d {
		row := out[r : r+d]
		var s float64
		for _, v := range row {
			s += v * v
		}
		if n := math.Sqrt(s); n > c {
			for j := range row {
				row[j] *= c / n
			}
		}
	}
	return out
}

// solveItemsDP is the item step of DP training: the statistics of DP from the
// clipped user factors x, with noise σ drawn from PCG sources seeded by seed,
// sweep and item (so the result does not depend on the workers).
func solveItemsDP(ctx context.Context, y, x []float64, byItem [][]entry, d int, opts Options, sigma float64, sweep int) error {
	xc := clipRows(x, d, opts.DP.Clip)
	gram := linalg.GramF64(xc, d)
	grng := rand.New(rand.NewPCG(opts.Seed^0xd9, uint64(sweep)<<32|0xffffffff))
	addSymNoise(gram, d, sigma, grng)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	const chunk = 64
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := make([]float64, d*d)
			b := make([]float64, d)
			stat := make([]float64, d*d)
			for {
				lo := int(next.Add(chunk) - chunk)
				if lo >= len(byItem) || ctx.Err() != nil {
					return
				}
				for i := lo; i < min(lo+chunk, len(byItem)); i++ {
					rng := rand.New(rand.NewPCG(opts.Seed^0xd9, uint64(sweep)<<32|uint64(i)))
					itemStat(stat, b, xc, byItem[i], d, opts.Alpha)
					addSymNoise(stat, d, sigma, rng)
					for j := range d {
						b[j] += sigma * rng.NormFloat64()
					}
					sol, err := solvePD(a, gram, stat, b, d, opts.Lambda)
					if err != nil {
						once.Do(func() { firstErr = experiment.E(experiment.Internal, err) })
						return
					}
					copy(y[i*d:(i+1)*d], sol)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return experiment.E(experiment.Unavailable, err)
	}
	return firstErr
}

// itemStat sets stat = Σ α x̄_u x̄_uᵀ and b = Σ (1+α) x̄_u over the item's users
// es (r = 1 each), from the clipped user factors xc.
func itemStat(stat, b, xc []float64, es []entry, d int, alpha float64) {
	clear(stat)
	clear(b)
	for _, e := range es {
		f := xc[int(e.idx)*d : int(e.idx+1)*d]
		linalg.AddOuter(stat, f, alpha)
		for j := range d {
			b[j] += (1 + alpha) * f[j]
		}
	}
}

// addSymNoise adds N(0, σ²) to each upper-triangle entry of the d×d matrix m and
// mirrors it below the diagonal.
func addSymNoise(m []float64, d int, sigma float64, rng *rand.Rand) {
	for i := range d {
		for j := i; j < d; j++ {
			z := sigma * rng.NormFloat64()
			m[i*d+j] += z
			if j != i {
				m[j*d+i] += z
			}
		}
	}
}

// solvePD solves (G + S + λI + s I) x = b for the smallest shift s in
// {0, λ, 2λ, 4λ, …} (and then of the matrix's scale) that makes the system positive definite.
func solvePD(a, gram, stat, b []float64, d int, lambda float64) ([]float64, error) {
	var scale float64
	for j := range d {
		scale = max(scale, math.Abs(gram[j*d+j]+stat[j*d+j]))
	}
	shift := 0.0
	for try := 0; ; try++ {
		for j := range a {
			a[j] = gram[j] + stat[j]
		}
		for j := range d {
			a[j*d+j] += lambda + shift
		}
		sol, err := linalg.SolveSPD(a, b)
		if err == nil {
			return sol, nil
		}
		if try > 80 {
			return nil, err
		}
		switch {
		case shift == 0:
			shift = max(lambda, 1e-9*scale)
		default:
			shift *= 2
		}
	}
}
