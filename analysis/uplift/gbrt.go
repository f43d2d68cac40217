package uplift

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Boosting is a gradient-boosted regression-tree learner for squared loss,
// histogram-based in the manner of LightGBM (Ke et al. 2017, NeurIPS) and
// scikit-learn's HistGradientBoostingRegressor: each feature is cut into at
// most MaxBins quantile bins once, and a split is chosen from per-bin sums of
// gradients, building the histogram of the smaller child and deriving the
// larger as parent − smaller.
//
// Each round fits a tree of depth ≤ Depth to the residuals r = y − F and adds
// LearningRate·leaf values, where a leaf's value is Σr/(n + L2) (the Newton
// step with an L2 penalty). A split is kept only if both children hold at
// least MinLeaf rows and it reduces the loss by more than zero.
//
// With Subsample < 1 every round trains on a random subset of rows drawn with
// a PCG generator seeded with Seed; with Subsample = 1 (the default) the fit
// uses no randomness at all. Features must be finite.
type Boosting struct {
	Rounds       int     // boosting rounds; default 100
	Depth        int     // maximum tree depth; default 4
	LearningRate float64 // shrinkage; default 0.1
	MinLeaf      int     // minimum rows per leaf; default 20
	MaxBins      int     // bins per feature, at most 256; default 255
	L2           float64 // L2 penalty on leaf values; default 1
	Subsample    float64 // fraction of rows per round; default 1 (all)
	Seed         uint64  // seed of the subsampling generator
}

// DefaultBoosting returns the defaults documented on Boosting.
func DefaultBoosting() Boosting {
	return Boosting{Rounds: 100, Depth: 4, LearningRate: 0.1, MinLeaf: 20, MaxBins: 255, L2: 1, Subsample: 1}
}

func (b Boosting) withDefaults() Boosting {
	d := DefaultBoosting()
	if b.Rounds == 0 {
		b.Rounds = d.Rounds
	}
	if b.Depth == 0 {
		b.Depth = d.Depth
	}
	if b.LearningRate == 0 {
		b.LearningRate = d.LearningRate
	}
	if b.MinLeaf == 0 {
		b.MinLeaf = d.MinLeaf
	}
	if b.MaxBins == 0 {
		b.MaxBins = d.MaxBins
	}
	if b.L2 == 0 {
		b.L2 = d.L2
	}
	if b.Subsample == 0 {
		b.Subsample = d.Subsample
	}
	return b
}

func (b Boosting) check() error {
	switch {
	case b.Rounds < 1:
		return fmt.Errorf("uplift: boosting rounds must be ≥ 1, got %d", b.Rounds)
	case b.Depth < 1 || b.Depth > 16:
		return fmt.Errorf("uplift: boosting depth must be in [1, 16], got %d", b.Depth)
	case !(b.LearningRate > 0 && b.LearningRate <= 1):
		return fmt.Errorf("uplift: learning rate must be in (0, 1], got %g", b.LearningRate)
	case b.MinLeaf < 1:
		return fmt.Errorf("uplift: min leaf must be ≥ 1, got %d", b.MinLeaf)
	case b.MaxBins < 2 || b.MaxBins > 256:
		return fmt.Errorf("uplift: max bins must be in [2, 256], got %d", b.MaxBins)
	case b.L2 < 0:
		return fmt.Errorf("uplift: L2 must be ≥ 0, got %g", b.L2)
	case !(b.Subsample > 0 && b.Subsample <= 1):
		return fmt.Errorf("uplift: subsample must be in (0, 1], got %g", b.Subsample)
	}
	return nil
}

// node is a tree node: an internal split "x[Feature] ≤ Threshold goes Left"
// or, when Feature < 0, a leaf with Value.
type node struct {
	Feature     int
	Threshold   float64
	Bin         uint8
	Left, Right int32
	Value       float64
}

// Ensemble is a fitted Boosting model.
type Ensemble struct {
	Base  float64
	Trees [][]node
	P     int
}

// Predict writes F(x) for each row of x into dst.
func (m *Ensemble) Predict(x *mat.Dense, dst []float64) {
	r, c := x.Dims()
	checkPredict(r, c, m.P, dst)
	parallelRange(r, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := x.RawRowView(i)
			f := m.Base
			for _, t := range m.Trees {
				k := int32(0)
				for t[k].Feature >= 0 {
					if row[t[k].Feature] <= t[k].Threshold {
						k = t[k].Left
					} else {
						k = t[k].Right
					}
				}
				f += t[k].Value
			}
			dst[i] = f
		}
	})
}

// Fit trains the ensemble on the rows of x and the targets y.
func (b Boosting) Fit(x *mat.Dense, y []float64) (Model, error) {
	b = b.withDefaults()
	if err := b.check(); err != nil {
		return nil, err
	}
	bd, err := binMatrix(x, b.MaxBins)
	if err != nil {
		return nil, err
	}
	return b.fitBinned(bd, y)
}

// binned is a feature matrix cut into bins once, so that several boosted
// models fitted on the same rows (the X-learner's outcome and effect models)
// share the work.
type binned struct {
	bins    []uint8
	cuts    [][]float64
	n, p    int
	maxBins int
}

func binMatrix(x *mat.Dense, maxBins int) (*binned, error) {
	n, p := x.Dims()
	bins, cuts, err := binColumns(x, maxBins)
	if err != nil {
		return nil, err
	}
	return &binned{bins: bins, cuts: cuts, n: n, p: p, maxBins: maxBins}, nil
}

// fitWith fits l on x and y, reusing the bins of x in cache when l is a
// Boosting learner.
func fitWith(l Learner, x *mat.Dense, y []float64, cache map[*mat.Dense]*binned) (Model, error) {
	b, ok := l.(Boosting)
	if !ok {
		return l.Fit(x, y)
	}
	b = b.withDefaults()
	if err := b.check(); err != nil {
		return nil, err
	}
	bd := cache[x]
	if bd == nil || bd.maxBins != b.MaxBins {
		var err error
		if bd, err = binMatrix(x, b.MaxBins); err != nil {
			return nil, err
		}
		cache[x] = bd
	}
	return b.fitBinned(bd, y)
}

// fitBinned trains on binned features; b has its defaults filled and checked.
func (b Boosting) fitBinned(bd *binned, y []float64) (Model, error) {
	n, p := bd.n, bd.p
	bins, cuts := bd.bins, bd.cuts
	if len(y) != n {
		panic(fmt.Sprintf("uplift: %d targets for %d rows", len(y), n))
	}
	if n < 2*b.MinLeaf {
		return nil, fmt.Errorf("uplift: boosting needs at least 2×MinLeaf = %d rows, got %d", 2*b.MinLeaf, n)
	}
	var base float64
	for _, v := range y {
		base += v
	}
	base /= float64(n)
	model := &Ensemble{Base: base, P: p}
	resid := make([]float64, n)
	for i, v := range y {
		resid[i] = v - base
	}
	g := &grower{b: b, bins: bins, cuts: cuts, resid: resid, n: n, p: p}
	var rng *rand.Rand
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	buf := make([]int32, n)
	if b.Subsample < 1 {
		rng = rand.New(rand.NewPCG(b.Seed, 0x9e3779b97f4a7c15))
	}
	for round := 0; round < b.Rounds; round++ {
		rows := all
		if rng != nil {
			rows = rows[:0:0]
			for i := 0; i < n; i++ {
				if rng.Float64() < b.Subsample {
					rows = append(rows, int32(i))
				}
			}
			if len(rows) < 2*b.MinLeaf {
				rows = all
			}
		} else {
			copy(buf, all) // every tree starts from rows in index order
			rows = buf
		}
		tree := g.grow(rows)
		// Update the residuals of every row (not only the subsample).
		if rng == nil {
			g.applyLeaves(tree)
		} else {
			parallelRange(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					k := int32(0)
					for tree[k].Feature >= 0 {
						if bins[i*p+tree[k].Feature] <= tree[k].Bin {
							k = tree[k].Left
						} else {
							k = tree[k].Right
						}
					}
					resid[i] -= tree[k].Value
				}
			})
		}
		model.Trees = append(model.Trees, tree)
	}
	return model, nil
}

// binColumns cuts every column into at most maxBins bins. cuts[j] holds the
// upper edges: bin k holds values in (cuts[j][k−1], cuts[j][k]]; the last bin
// is unbounded above. The bins are stored row-major, bins[i·p + j], so that one
// pass over a node's rows fills the histograms of every feature.
func binColumns(x *mat.Dense, maxBins int) ([]uint8, [][]float64, error) {
	n, p := x.Dims()
	bins := make([]uint8, n*p)
	cuts := make([][]float64, p)
	errs := make([]error, p)
	parallel(p, func(j int) {
		// Quantiles from a deterministic stride sample of at most 200,000 rows.
		step := max(1, n/200_000)
		sample := make([]float64, 0, n/step+1)
		for i := 0; i < n; i += step {
			v := x.At(i, j)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				errs[j] = fmt.Errorf("uplift: feature %d, row %d: %v is not finite", j, i, v)
				return
			}
			sample = append(sample, v)
		}
		slices.Sort(sample)
		distinct := slices.Compact(slices.Clone(sample))
		var c []float64
		if len(distinct) <= maxBins {
			for k := 0; k+1 < len(distinct); k++ {
				c = append(c, distinct[k]+(distinct[k+1]-distinct[k])/2)
			}
		} else {
			for k := 1; k < maxBins; k++ {
				q := sample[k*len(sample)/maxBins]
				if len(c) == 0 || q > c[len(c)-1] {
					c = append(c, q)
				}
			}
			if len(c) > 0 && c[len(c)-1] >= distinct[len(distinct)-1] {
				c = c[:len(c)-1]
			}
		}
		cuts[j] = c
		for i := 0; i < n; i++ {
			v := x.At(i, j)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				errs[j] = fmt.Errorf("uplift: feature %d, row %d: %v is not finite", j, i, v)
				return
			}
			k, _ := slices.BinarySearch(c, v)
			bins[i*p+j] = uint8(k)
		}
	})
	return bins, cuts, errors.Join(errs...)
}

// grower builds one tree on the current residuals.
type grower struct {
	b      Boosting
	bins   []uint8 // row-major, n × p
	cuts   [][]float64
	resid  []float64
	n, p   int
	leaves []leafRange // of the last tree, for applyLeaves
	rows   []int32
	free   []*hist // histograms to reuse
	tmp    []int32 // partition buffer
}

type leafRange struct {
	node       int32
	start, end int
}

// hist holds Σr and the row count per bin of each feature, flattened:
// entry j·256 + k is feature j, bin k.
type hist struct {
	b []binStat
}

type binStat struct{ g, n float64 }

func newHist(p int) *hist { return &hist{b: make([]binStat, p*256)} }

func (g *grower) build(h *hist, rows []int32) {
	// Rows are split into chunks, each filling its own histogram over all
	// features in one pass (bins are row-major); the chunks are then summed.
	const chunk = 16384
	parts := min(runtime.GOMAXPROCS(0), (len(rows)+chunk-1)/chunk)
	if parts <= 1 {
		clear(h.b)
		g.fill(h, rows)
		return
	}
	hs := make([]*hist, parts)
	hs[0] = h
	for k := 1; k < parts; k++ {
		hs[k] = g.getHist()
	}
	parallel(parts, func(k int) {
		clear(hs[k].b)
		g.fill(hs[k], rows[k*len(rows)/parts:(k+1)*len(rows)/parts])
	})
	for k := 1; k < parts; k++ {
		for i, v := range hs[k].b {
			h.b[i].g += v.g
			h.b[i].n += v.n
		}
		g.putHist(hs[k])
	}
}

// getHist returns a histogram from the free list, or a new one: reusing them
// keeps the garbage collector (and its preemption of the hot loops) quiet.
func (g *grower) getHist() *hist {
	if k := len(g.free); k > 0 {
		h := g.free[k-1]
		g.free = g.free[:k-1]
		return h
	}
	return newHist(g.p)
}

func (g *grower) putHist(h *hist) {
	if h != nil {
		g.free = append(g.free, h)
	}
}

func (g *grower) fill(h *hist, rows []int32) {
	p := g.p
	bins, resid, hb := g.bins, g.resid, h.b
	for _, i := range rows {
		r := resid[i]
		row := bins[int(i)*p : int(i)*p+p]
		off := 0
		for _, b := range row {
			s := &hb[off+int(b)]
			s.g += r
			s.n++
			off += 256
		}
	}
}

// subtract sets h = parent − child (h may be parent).
func (h *hist) subtract(parent, child *hist) {
	for i := range h.b {
		h.b[i].g = parent.b[i].g - child.b[i].g
		h.b[i].n = parent.b[i].n - child.b[i].n
	}
}

type split struct {
	gain    float64
	feature int
	bin     uint8
}

// best finds the best split of a node with histogram h, total sum and count.
func (g *grower) best(h *hist, sum float64, cnt int) split {
	lambda, minLeaf := g.b.L2, g.b.MinLeaf
	parent := sum * sum / (float64(cnt) + lambda)
	best := split{gain: 0, feature: -1}
	for j := 0; j < g.p; j++ {
		nb := len(g.cuts[j]) + 1
		var sl float64
		var cl int
		for k := 0; k < nb-1; k++ {
			sl += h.b[j<<8|k].g
			cl += int(h.b[j<<8|k].n)
			if cl < minLeaf {
				continue
			}
			cr := cnt - cl
			if cr < minLeaf {
				break
			}
			sr := sum - sl
			gain := sl*sl/(float64(cl)+lambda) + sr*sr/(float64(cr)+lambda) - parent
			if gain > best.gain+1e-12*math.Abs(parent) {
				best = split{gain: gain, feature: j, bin: uint8(k)}
			}
		}
	}
	return best
}

type pending struct {
	node       int32
	start, end int
	sum        float64
	h          *hist
}

// grow builds a tree level by level on rows (which it reorders).
func (g *grower) grow(rows []int32) []node {
	g.rows = rows
	tree := []node{{Feature: -1}}
	var total float64
	for _, i := range rows {
		total += g.resid[i]
	}
	root := &pending{node: 0, start: 0, end: len(rows), sum: total, h: g.getHist()}
	g.build(root.h, rows)
	level := []*pending{root}
	g.leaves = g.leaves[:0]
	if cap(g.tmp) < len(rows) {
		g.tmp = make([]int32, len(rows))
	}
	tmp := g.tmp[:len(rows)]
	for depth := 0; depth < g.b.Depth && len(level) > 0; depth++ {
		var next []*pending
		for _, nd := range level {
			cnt := nd.end - nd.start
			s := g.best(nd.h, nd.sum, cnt)
			if s.feature < 0 {
				g.setLeaf(tree, nd)
				g.putHist(nd.h)
				continue
			}
			// Stable partition of the node's rows: bin ≤ s.bin to the left.
			seg := rows[nd.start:nd.end]
			nl := partition(seg, tmp[nd.start:nd.end], g.bins, g.p, s.feature, s.bin)
			var sl float64
			for k := 0; k <= int(s.bin); k++ {
				sl += nd.h.b[s.feature<<8|k].g
			}
			li, ri := int32(len(tree)), int32(len(tree)+1)
			tree[nd.node] = node{Feature: s.feature, Threshold: g.cuts[s.feature][s.bin], Bin: s.bin, Left: li, Right: ri}
			tree = append(tree, node{Feature: -1}, node{Feature: -1})
			left := &pending{node: li, start: nd.start, end: nd.start + nl, sum: sl}
			right := &pending{node: ri, start: nd.start + nl, end: nd.end, sum: nd.sum - sl}
			if depth+1 < g.b.Depth {
				small, large := left, right
				if small.end-small.start > large.end-large.start {
					small, large = right, left
				}
				small.h = g.getHist()
				g.build(small.h, rows[small.start:small.end])
				large.h = nd.h // reuse the parent's storage: large = parent − small
				large.h.subtract(nd.h, small.h)
			} else {
				g.putHist(nd.h) // the children are leaves: no histogram needed
			}
			next = append(next, left, right)
		}
		level = next
	}
	for _, nd := range level {
		g.setLeaf(tree, nd)
		g.putHist(nd.h)
	}
	return tree
}

// partition moves the rows with bin ≤ cut to the front of seg, keeping order
// on both sides, and returns how many there are.
func partition(seg, tmp []int32, bins []uint8, p, f int, cut uint8) int {
	nl, nr := 0, 0
	for _, i := range seg {
		if bins[int(i)*p+f] <= cut {
			seg[nl] = i
			nl++
		} else {
			tmp[nr] = i
			nr++
		}
	}
	copy(seg[nl:], tmp[:nr])
	return nl
}

func (g *grower) setLeaf(tree []node, nd *pending) {
	cnt := float64(nd.end - nd.start)
	tree[nd.node] = node{Feature: -1, Value: g.b.LearningRate * nd.sum / (cnt + g.b.L2)}
	g.leaves = append(g.leaves, leafRange{node: nd.node, start: nd.start, end: nd.end})
}

// applyLeaves subtracts the new tree's predictions from the residuals using
// the row ranges of its leaves (every row was in the tree's sample).
func (g *grower) applyLeaves(tree []node) {
	for _, l := range g.leaves {
		v := tree[l.node].Value
		for _, i := range g.rows[l.start:l.end] {
			g.resid[i] -= v
		}
	}
}
