package scorer

import (
	"context"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/liftlab/lift/experiment"
)

// CPU scores on all cores. The item matrix is cut into blocks of BlockItems rows;
// worker goroutines take blocks in turn and score every query of the batch against
// the block while it sits in cache, so one batch reads the item matrix from memory
// once (n_items·d·4 bytes: 256 MB for 1M×64). Each worker keeps a bounded heap per
// query; the heaps are merged at the end. Every score is computed in one fixed
// order (see dotLanes), plus the bias, whatever the block, worker or kernel, so the
// result does not depend on Workers, BlockItems or the CPU's instruction set.
type CPU struct {
	m       *Model
	workers int
	block   int
	closed  atomic.Bool
}

var _ Scorer = (*CPU)(nil)

// NewCPU returns the cpu backend over m.
func NewCPU(m *Model, opts Options) (*CPU, error) {
	opts.fill()
	if err := m.Validate(); err != nil {
		return nil, experiment.E("scorer.NewCPU", err)
	}
	return &CPU{m: m, workers: opts.Workers, block: opts.BlockItems}, nil
}

// Name implements Scorer.
func (c *CPU) Name() string { return "cpu (" + strconv.Itoa(c.workers) + " workers)" }

// Close implements Scorer.
func (c *CPU) Close() error { c.closed.Store(true); return nil }

// Score implements Scorer.
func (c *CPU) Score(ctx context.Context, queries [][]float32, k int, exclude [][]int32) ([][]Scored, error) {
	const op = "scorer.CPU.Score"
	if c.closed.Load() {
		return nil, experiment.E(op, experiment.Unavailable, ErrClosed)
	}
	m := c.m
	d, n := m.Dim, m.NItems()
	if err := checkRequest(op, d, n, queries, k, exclude); err != nil {
		return nil, err
	}
	nq := len(queries)
	if nq == 0 {
		return [][]Scored{}, nil
	}
	k = min(k, n)
	excl := make([][]int32, nq)
	for u := range exclude {
		excl[u] = sortedCopy(exclude[u])
	}
	nBlocks := (n + c.block - 1) / c.block
	workers := min(c.workers, nBlocks)
	heaps := make([][]topK, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs := make([]topK, nq)
			for u := range hs {
				hs[u] = newTopK(k)
			}
			heaps[w] = hs
			s0 := make([]float32, c.block)
			s1 := make([]float32, c.block)
			for {
				b := int(next.Add(1) - 1)
				if b >= nBlocks || ctx.Err() != nil {
					return
				}
				lo, hi := b*c.block, min((b+1)*c.block, n)
				items := m.Items[lo*d : hi*d]
				for u := 0; u < nq; u += 2 {
					if u+1 < nq {
						dot2(queries[u], queries[u+1], items, s0[:hi-lo], s1[:hi-lo])
						collect(&hs[u+1], s1[:hi-lo], lo, m.Bias, excl[u+1])
					} else {
						dot1(queries[u], items, s0[:hi-lo])
					}
					collect(&hs[u], s0[:hi-lo], lo, m.Bias, excl[u])
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, experiment.E(op, experiment.Unavailable, err)
	}
	out := make([][]Scored, nq)
	for u := range out {
		h := newTopK(k)
		for w := range heaps {
			wh := &heaps[w][u]
			for j := range wh.score {
				h.push(wh.score[j], wh.item[j])
			}
		}
		out[u] = h.sorted()
	}
	return out, nil
}

// collect offers the scores s of items lo, lo+1, … (plus their bias) to h, skipping
// the excluded items (sorted ascending).
func collect(h *topK, s []float32, lo int, bias []float32, excl []int32) {
	if bias != nil {
		bias = bias[lo : lo+len(s)]
	}
	thr := float32(math.Inf(-1)) // a score below thr cannot enter a full heap
	if h.full() {
		thr = h.score[0]
	}
	for i, v := range s {
		if bias != nil {
			v += bias[i]
		}
		if v < thr {
			continue
		}
		it := int32(lo + i)
		if len(excl) > 0 {
			if _, found := slices.BinarySearch(excl, it); found {
				continue
			}
		}
		h.push(v, it)
		if h.full() {
			thr = h.score[0]
		}
	}
}
