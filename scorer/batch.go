package scorer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liftlab/lift/experiment"
)

// BatchOptions configures a Batcher.
type BatchOptions struct {
	// MaxBatch is the largest number of requests in one Score call (default 64).
	MaxBatch int
	// MaxWait is how long the first request of a batch waits for others (default 2 ms).
	MaxWait time.Duration
	// Queue is the number of requests that may wait to be batched (default 4·MaxBatch);
	// a request beyond it waits for room or for its context.
	Queue int
	// MaxCallTime, when > 0, caps each batch so that its Score call is expected to
	// take at most this long: the cap is MaxCallTime over the smoothed time per
	// request of the earlier calls (at least 1, at most MaxBatch). On a slow scorer
	// (a big catalog, few cores) a full batch could take longer than a caller's
	// whole latency budget, so that every request in it would time out; the cap
	// keeps calls short at some cost in throughput.
	MaxCallTime time.Duration
}

func (o *BatchOptions) fill() {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 2 * time.Millisecond
	}
	if o.Queue <= 0 {
		o.Queue = 4 * o.MaxBatch
	}
}

// BatchStats counts what a Batcher did.
type BatchStats struct {
	Requests int64 // requests scored (cancelled ones not counted)
	Batches  int64 // Score calls made
	MaxSize  int64 // the largest batch so far
	Limit    int   // the current largest batch (MaxBatch, or less under MaxCallTime)
}

// Batcher coalesces concurrent single-query requests into one Score call of its
// Scorer: a batch is sent when it holds MaxBatch requests or when its first request
// has waited MaxWait, whichever comes first. While one batch is being scored the
// next one forms, so under load batches grow on their own. A request whose context
// ends before its batch is sent is dropped; one whose context ends later returns at
// once with the context's error. Batcher is safe for concurrent use.
type Batcher struct {
	s     Scorer
	opts  BatchOptions
	reqs  chan *batchRequest
	stop  context.CancelFunc
	ctx   context.Context
	done  chan struct{}
	close sync.Once

	requests, batches, maxSize atomic.Int64
	perRequest                 atomic.Int64 // smoothed ns per request of successful calls (0: none yet)
}

type batchRequest struct {
	ctx     context.Context
	q       []float32
	k       int
	exclude []int32
	reply   chan batchReply // buffered 1: the loop never blocks on a gone caller
}

type batchReply struct {
	items []Scored
	err   error
}

// NewBatcher starts a Batcher over s. Close it to stop its goroutine; closing it
// does not close s.
func NewBatcher(s Scorer, opts BatchOptions) *Batcher {
	opts.fill()
	ctx, stop := context.WithCancel(context.Background())
	b := &Batcher{s: s, opts: opts, reqs: make(chan *batchRequest, opts.Queue), ctx: ctx, stop: stop, done: make(chan struct{})}
	go b.loop()
	return b
}

// Score queues one query and returns its top-k once its batch is scored.
func (b *Batcher) Score(ctx context.Context, q []float32, k int, exclude []int32) ([]Scored, error) {
	const op = "scorer.Batcher.Score"
	r := &batchRequest{ctx: ctx, q: q, k: k, exclude: exclude, reply: make(chan batchReply, 1)}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return nil, experiment.E(op, experiment.Unavailable, ctx.Err())
	case <-b.ctx.Done():
		return nil, experiment.E(op, experiment.Unavailable, ErrClosed)
	}
	select {
	case rep := <-r.reply:
		return rep.items, rep.err
	case <-ctx.Done():
		return nil, experiment.E(op, experiment.Unavailable, ctx.Err())
	case <-b.done:
		// The loop may have answered just before stopping.
		select {
		case rep := <-r.reply:
			return rep.items, rep.err
		default:
			return nil, experiment.E(op, experiment.Unavailable, ErrClosed)
		}
	}
}

// Stats returns the counts so far.
func (b *Batcher) Stats() BatchStats {
	return BatchStats{Requests: b.requests.Load(), Batches: b.batches.Load(), MaxSize: b.maxSize.Load(), Limit: b.Limit()}
}

// Limit is the largest batch the Batcher forms now: MaxBatch, or under
// MaxCallTime the number of requests expected to be scored within it.
func (b *Batcher) Limit() int {
	per := b.perRequest.Load()
	if b.opts.MaxCallTime <= 0 || per <= 0 {
		return b.opts.MaxBatch
	}
	return int(min(max(int64(b.opts.MaxCallTime)/per, 1), int64(b.opts.MaxBatch)))
}

// observe folds a successful call's time per request into the smoothed value
// (exponential moving average, weight 1/4 on the newest).
func (b *Batcher) observe(took time.Duration, n int) {
	v := int64(took) / int64(n)
	if old := b.perRequest.Load(); old != 0 {
		v = old + (v-old)/4
	}
	b.perRequest.Store(max(v, 1)) // only the loop goroutine writes it
}

// Close stops the batcher; queued and later requests fail with ErrClosed.
func (b *Batcher) Close() error {
	b.close.Do(func() {
		b.stop()
		<-b.done
	})
	return nil
}

func (b *Batcher) loop() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*batchRequest, 0, b.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.ctx.Done():
			b.drain()
			return
		}
		timer.Reset(b.opts.MaxWait)
		limit := b.Limit()
	fill:
		for len(batch) < limit {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			case <-timer.C:
				break fill
			case <-b.ctx.Done():
				break fill
			}
		}
		timer.Stop()
		b.run(batch)
	}
}

// drain answers every queued request with ErrClosed.
func (b *Batcher) drain() {
	for {
		select {
		case r := <-b.reqs:
			r.reply <- batchReply{err: experiment.E("scorer.Batcher.Score", experiment.Unavailable, ErrClosed)}
		default:
			return
		}
	}
}

// run scores one batch and answers each request. If the batch call is rejected as
// invalid (one bad request), every request is retried alone so that each gets its
// own answer or error; other failures (backend down, closed) go to every request
// without retries.
func (b *Batcher) run(batch []*batchRequest) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	queries := make([][]float32, len(live))
	exclude := make([][]int32, len(live))
	k := 0
	for i, r := range live {
		queries[i], exclude[i] = r.q, r.exclude
		k = max(k, r.k)
	}
	b.batches.Add(1)
	b.requests.Add(int64(len(live)))
	if n := int64(len(live)); n > b.maxSize.Load() {
		b.maxSize.Store(n)
	}
	t0 := time.Now()
	res, err := b.s.Score(b.ctx, queries, k, exclude)
	if err == nil {
		b.observe(time.Since(t0), len(live))
	}
	if err != nil && len(live) > 1 && experiment.Is(err, experiment.Invalid) {
		for _, r := range live {
			one, err := b.s.Score(b.ctx, [][]float32{r.q}, r.k, [][]int32{r.exclude})
			if err != nil {
				r.reply <- batchReply{err: err}
				continue
			}
			r.reply <- batchReply{items: one[0]}
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.reply <- batchReply{err: err}
			continue
		}
		items := res[i]
		if len(items) > r.k {
			items = items[:r.k]
		}
		r.reply <- batchReply{items: items}
	}
}
