package scorer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// countingScorer wraps a Scorer and records the batch sizes it was called with.
type countingScorer struct {
	Scorer
	mu    sync.Mutex
	sizes []int
}

func (c *countingScorer) Score(ctx context.Context, q [][]float32, k int, ex [][]int32) ([][]Scored, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(q))
	c.mu.Unlock()
	time.Sleep(time.Millisecond) // a backend call takes time; requests pile up meanwhile
	return c.Scorer.Score(ctx, q, k, ex)
}

func TestBatcherEachGetsItsOwnAnswer(t *testing.T) {
	m := randomModel(t, 500, 8, 200, 4, true, 21)
	cpu, _ := NewCPU(m, Options{Workers: 2})
	cs := &countingScorer{Scorer: cpu}
	b := NewBatcher(cs, BatchOptions{MaxBatch: 16, MaxWait: 5 * time.Millisecond})
	defer b.Close()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for u := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := 1 + u%7 // requests in one batch ask for different k
			excl := []int32{int32(u % 500)}
			got, err := b.Score(context.Background(), m.User(u), k, excl)
			if err != nil {
				errs <- err
				return
			}
			if want := naiveTopK(m, m.User(u), k, excl); !slices.Equal(got, want) {
				errs <- experiment.Errorf("user %d: got %v, want %v", u, got, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := b.Stats()
	if st.Requests != n {
		t.Errorf("Requests = %d, want %d", st.Requests, n)
	}
	if st.MaxSize > 16 {
		t.Errorf("a batch of %d exceeds MaxBatch 16", st.MaxSize)
	}
	// 200 concurrent requests and a backend that takes a millisecond per call must
	// coalesce: fewer calls than half the requests.
	if st.Batches >= n/2 || st.MaxSize < 2 {
		t.Errorf("batches did not form: %d calls for %d requests (largest %d); sizes %v", st.Batches, n, st.MaxSize, cs.sizes)
	}
}

func TestBatcherBadRequestIsolated(t *testing.T) {
	m := randomModel(t, 100, 4, 2, 0, false, 1)
	cpu, _ := NewCPU(m, Options{})
	b := NewBatcher(cpu, BatchOptions{MaxBatch: 2, MaxWait: 50 * time.Millisecond})
	defer b.Close()
	var wg sync.WaitGroup
	var goodErr, badErr error
	var good []Scored
	wg.Add(2)
	go func() { defer wg.Done(); good, goodErr = b.Score(context.Background(), m.User(0), 3, nil) }()
	go func() { defer wg.Done(); _, badErr = b.Score(context.Background(), []float32{1}, 3, nil) }()
	wg.Wait()
	if goodErr != nil || !slices.Equal(good, naiveTopK(m, m.User(0), 3, nil)) {
		t.Errorf("good request: %v %v", good, goodErr)
	}
	if !experiment.Is(badErr, experiment.Invalid) {
		t.Errorf("bad request: err = %v, want invalid", badErr)
	}
}

func TestBatcherContextAndClose(t *testing.T) {
	m := randomModel(t, 100, 4, 1, 0, false, 1)
	cpu, _ := NewCPU(m, Options{})
	b := NewBatcher(cpu, BatchOptions{MaxBatch: 64, MaxWait: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Score(ctx, m.User(0), 3, nil)
	if !experiment.Is(err, experiment.Unavailable) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("cancelled request: err = %v after %v", err, time.Since(start))
	}
	b.Close()
	if _, err := b.Score(context.Background(), m.User(0), 3, nil); !experiment.Is(err, experiment.Unavailable) {
		t.Fatalf("after Close: err = %v", err)
	}
}

// slowScorer takes at least perQuery per query of a call, as a compute-bound
// backend does on a big catalog, and records the batch sizes.
type slowScorer struct {
	countingScorer
	perQuery time.Duration
}

func (s *slowScorer) Score(ctx context.Context, q [][]float32, k int, ex [][]int32) ([][]Scored, error) {
	time.Sleep(time.Duration(len(q)) * s.perQuery)
	return s.countingScorer.Score(ctx, q, k, ex)
}

// TestBatcherMaxCallTime: with calls costing at least 2 ms per query and a
// MaxCallTime of 10 ms, once one call was measured no batch may exceed 5
// requests (the measured time per request can only be longer than 2 ms, so the
// cap only smaller), where MaxBatch alone would allow 64; every request is still
// answered correctly.
func TestBatcherMaxCallTime(t *testing.T) {
	m := randomModel(t, 300, 8, 100, 0, false, 5)
	cpu, _ := NewCPU(m, Options{Workers: 1})
	s := &slowScorer{countingScorer: countingScorer{Scorer: cpu}, perQuery: 2 * time.Millisecond}
	b := NewBatcher(s, BatchOptions{MaxBatch: 64, MaxWait: 5 * time.Millisecond, MaxCallTime: 10 * time.Millisecond})
	defer b.Close()
	if got := b.Limit(); got != 64 {
		t.Fatalf("limit before any call = %d, want MaxBatch 64", got)
	}
	if _, err := b.Score(context.Background(), m.User(0), 3, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.Limit(); got < 1 || got > 5 {
		t.Fatalf("limit after a 2 ms/query call = %d, want 1 to 5", got)
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for u := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := b.Score(context.Background(), m.User(u), 3, nil)
			if err != nil {
				errs <- err
				return
			}
			if want := naiveTopK(m, m.User(u), 3, nil); !slices.Equal(got, want) {
				errs <- experiment.Errorf("user %d: got %v, want %v", u, got, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, size := range s.sizes[1:] {
		if size > 5 {
			t.Errorf("batch %d had %d requests, want at most 5 under MaxCallTime", i+1, size)
		}
	}
	if st := b.Stats(); st.Requests != n+1 || st.Limit > 5 {
		t.Errorf("stats %+v", st)
	}
}
