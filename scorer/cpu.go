package scorer

import (
	"context"
	"math"
	"runtime"
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
//
// With Options.Precision "f16" the item vectors are kept rounded to half
// precision (half the memory, and half the bytes read per batch); scores are
// then computed in float32 over the widened vectors, in the same order, by one
// query × eight items kernel (dot1x8F16), without prefetching the next block.
type CPU struct {
	m       *Model
	workers int
	block   int
	half    []uint16 // the items in half precision; nil: float32
	closed  atomic.Bool
}

var _ Scorer = (*CPU)(nil)

// NewCPU returns the cpu backend over m.
func NewCPU(m *Model, opts Options) (*CPU, error) {
	opts.fill()
	if err := m.Validate(); err != nil {
		return nil, experiment.E("scorer.NewCPU", err)
	}
	c := &CPU{m: m, workers: opts.Workers, block: opts.BlockItems}
	switch opts.Precision {
	case "", PrecisionF32:
	case PrecisionF16:
		c.half = halfItems(m.Items)
	default:
		return nil, experiment.E("scorer.NewCPU", experiment.Invalid, experiment.Field("precision"),
			experiment.Errorf(`must be "f32" or "f16", got %q`, opts.Precision))
	}
	return c, nil
}

// Name implements Scorer.
func (c *CPU) Name() string {
	if c.half != nil {
		return "cpu (" + strconv.Itoa(c.workers) + " workers, f16)"
	}
	return "cpu (" + strconv.Itoa(c.workers) + " workers)"
}

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
			row := make([]float32, d)
			passes := (nq + 1) / 2
			b := int(next.Add(1) - 1)
			for b < nBlocks && ctx.Err() == nil {
				// Claim the next block now, so that the passes over this one can
				// prefetch it: each pass asks for its share of the next block's
				// cache lines while it computes, so reading the item matrix from
				// memory overlaps the arithmetic instead of preceding it.
				nextB := int(next.Add(1) - 1)
				var ahead []float32
				if nextB < nBlocks {
					ahead = m.Items[nextB*c.block*d : min((nextB+1)*c.block, n)*d]
				}
				chunk := (len(ahead)/passes + 15) &^ 15 // whole 64-byte lines
				lo, hi := b*c.block, min((b+1)*c.block, n)
				items := m.Items[lo*d : hi*d]
				var bias []float32
				if m.Bias != nil {
					bias = m.Bias[lo:hi]
				}
				if c.half != nil {
					for u := range nq {
						dot1h(queries[u], c.half[lo*d:hi*d], bias, s0[:hi-lo], nil, row)
						collect(&hs[u], s0[:hi-lo], lo, excl[u])
					}
					b = nextB
					runtime.Gosched()
					continue
				}
				for u := 0; u < nq; u += 2 {
					pf := ahead[min(u/2*chunk, len(ahead)):min((u/2+1)*chunk, len(ahead))]
					if u+1 < nq {
						dot2(queries[u], queries[u+1], items, bias, s0[:hi-lo], s1[:hi-lo], pf)
						collect(&hs[u+1], s1[:hi-lo], lo, excl[u+1])
					} else {
						dot1(queries[u], items, bias, s0[:hi-lo], pf)
					}
					collect(&hs[u], s0[:hi-lo], lo, excl[u])
				}
				b = nextB
				// Let waiting goroutines (HTTP handlers, the exposure writer) run
				// between blocks rather than after the scheduler's 10 ms time slice:
				// a block is tens of microseconds of work.
				runtime.Gosched()
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

// collect offers the scores s of items lo, lo+1, … to h, skipping the excluded
// items (sorted ascending). Once h is full, only a score not below its smallest can
// enter, and firstNotBelow skips to the next such score (most of a block, after
// the first few blocks).
func collect(h *topK, s []float32, lo int, excl []int32) {
	thr := float32(math.Inf(-1))
	if h.full() {
		thr = h.score[0]
	}
	for i := 0; i < len(s); i++ {
		if h.full() {
			j := firstNotBelow(s[i:], thr)
			if i += j; i == len(s) {
				return
			}
		}
		it := int32(lo + i)
		if len(excl) > 0 {
			if _, found := slices.BinarySearch(excl, it); found {
				continue
			}
		}
		h.push(s[i], it)
		if h.full() {
			thr = h.score[0]
		}
	}
}
