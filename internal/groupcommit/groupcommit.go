// Package groupcommit is the one group-commit loop of Lift: callers hand requests
// to a bounded queue, a writer takes them in groups and commits each group with one
// call of the user's commit function (one transaction), and every caller is
// answered only after its group's commit returned. The exposure writer and the
// journey decision log in package store are its users.
//
// The contract:
//
//   - Grouping. A lane takes the first request it finds, then every request
//     already queued, then (when Options.Window > 0) waits up to Window for more,
//     until the group's size (the sum of size(r), 1 per request by default)
//     reaches Options.MaxGroup. A group may exceed MaxGroup by its last request:
//     requests are never split.
//   - Order. Within a lane, requests reach commit in queue order, and groups are
//     committed one after another. With several lanes (Options.Lanes) a lane
//     collects and commits while another waits for its commit, so groups of
//     different lanes may commit in any order.
//   - Answered means committed. Submit returns nil only after the commit of the
//     group holding its request returned nil; it returns the commit's error when
//     that failed. When a group of more than one request fails, each of its
//     requests is committed again alone, so that only a request that cannot be
//     committed gets an error (its neighbours are committed and answered nil).
//     A commit function must therefore leave nothing behind when it fails (roll
//     back), and must not keep the group slice after it returns (it is reused).
//   - Back-pressure. The queue holds Options.Queue requests. Submit and Enqueue
//     wait for room until their context ends, then return an error wrapping
//     ErrQueueFull and the context's error: nothing was queued. A Submit whose
//     context ends after its request was queued returns an error wrapping
//     ErrNotAnswered: the request stays queued and will be committed, the caller
//     only stopped waiting.
//   - Close. Close stops accepting requests (Submit, Enqueue: ErrClosed), commits
//     and answers every request already queued, and returns once every lane has
//     stopped.
//
// Commit functions get the lane's index, so that each lane may keep its own
// connection and prepared state in a slice indexed by lane: a lane's commits never
// run concurrently with each other.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Submit, Enqueue and Flush; test with errors.Is.
var (
	// ErrClosed: Close was called; nothing was queued.
	ErrClosed = errors.New("groupcommit: closed")
	// ErrQueueFull: the queue stayed full until the caller's context ended;
	// nothing was queued.
	ErrQueueFull = errors.New("groupcommit: queue full")
	// ErrNotAnswered: the caller's context ended after its request was queued and
	// before its group's commit returned; the request will still be committed.
	ErrNotAnswered = errors.New("groupcommit: not answered before the context ended")
)

// Options configures a Loop. Zero fields take the defaults.
type Options struct {
	Queue    int           // requests that may wait; default 1024
	MaxGroup int           // a group stops growing once its size reaches this; default 1024
	Window   time.Duration // how long a group waits for more after the queue is drained; <= 0: no wait
	Lanes    int           // writers taking groups from the one queue; default 1
	Logger   *slog.Logger  // failed commits are logged here; default: discarded
}

// Stats are a Loop's counters, e.g. for metrics.
type Stats struct {
	Queued    int   // requests waiting in the queue now
	QueueCap  int   // Options.Queue
	Taken     int64 // requests taken off the queue by a lane since New
	Committed int64 // size of the requests committed since New
	Failed    int64 // size of the requests whose commit failed since New
}

// item is one queued request, or a Flush marker.
type item[R any] struct {
	r     R
	flush bool
	done  chan error // buffered 1: a lane never blocks answering
}

// Loop is a running group-commit loop over requests of type R.
type Loop[R any] struct {
	opt    Options
	size   func(R) int
	commit func(lane int, group []R) error

	queue  chan *item[R]
	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	wg     sync.WaitGroup // running lanes
	done   chan struct{}  // closed when every lane has returned

	taken, committed, failed atomic.Int64
}

// New starts a loop of opt.Lanes lanes. commit commits one group (in one
// transaction: all or nothing) on the given lane; size gives a request's weight
// against MaxGroup and in Stats (nil: 1 per request).
func New[R any](opt Options, commit func(lane int, group []R) error, size func(R) int) *Loop[R] {
	if opt.Queue <= 0 {
		opt.Queue = 1024
	}
	if opt.MaxGroup <= 0 {
		opt.MaxGroup = 1024
	}
	if opt.Lanes <= 0 {
		opt.Lanes = 1
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if size == nil {
		size = func(R) int { return 1 }
	}
	l := &Loop[R]{opt: opt, size: size, commit: commit, queue: make(chan *item[R], opt.Queue), done: make(chan struct{})}
	for i := 0; i < opt.Lanes; i++ {
		l.wg.Add(1)
		go l.run(i)
	}
	go func() { l.wg.Wait(); close(l.done) }()
	return l
}

// enqueue puts it on the queue, waiting for room until ctx ends.
func (l *Loop[R]) enqueue(ctx context.Context, it *item[R]) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	select {
	case l.queue <- it:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (%d requests waiting): %w", ErrQueueFull, cap(l.queue), ctx.Err())
	}
}

// wait returns its answer, or ErrNotAnswered once ctx ends.
func wait[R any](ctx context.Context, it *item[R]) error {
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotAnswered, ctx.Err())
	}
}

// Submit queues r and returns after its group's commit: nil when r is committed,
// the commit's error when it is not (see the package doc for the other errors).
func (l *Loop[R]) Submit(ctx context.Context, r R) error {
	it := &item[R]{r: r, done: make(chan error, 1)}
	if err := l.enqueue(ctx, it); err != nil {
		return err
	}
	return wait(ctx, it)
}

// Enqueue queues r and returns without waiting for its commit; a failed commit is
// only logged (Options.Logger) and counted (Stats.Failed).
func (l *Loop[R]) Enqueue(ctx context.Context, r R) error {
	return l.enqueue(ctx, &item[R]{r: r, done: make(chan error, 1)})
}

// Flush returns once every request queued before the call is committed or failed:
// nil, or the first error of the group its marker travelled in. The marker ends
// its group: the lane commits what it holds without waiting out the window. After Close it
// returns nil at once (Close committed everything). It needs a loop of one lane
// (with several, requests queued before the marker may still be committing on
// another lane) and panics otherwise.
func (l *Loop[R]) Flush(ctx context.Context) error {
	if l.opt.Lanes != 1 {
		panic("groupcommit: Flush needs a loop of one lane")
	}
	it := &item[R]{flush: true, done: make(chan error, 1)}
	if err := l.enqueue(ctx, it); errors.Is(err, ErrClosed) {
		return nil
	} else if err != nil {
		return err
	}
	return wait(ctx, it)
}

// Close stops accepting requests, commits and answers every queued one, and
// returns once every lane has stopped. Calling it again waits for the same.
func (l *Loop[R]) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
}

// Stats returns the loop's counters.
func (l *Loop[R]) Stats() Stats {
	return Stats{Queued: len(l.queue), QueueCap: cap(l.queue), Taken: l.taken.Load(),
		Committed: l.committed.Load(), Failed: l.failed.Load()}
}

// run is one lane: collect a group, commit it, answer it, until the queue is
// closed and empty.
func (l *Loop[R]) run(lane int) {
	defer l.wg.Done()
	var timer *time.Timer
	var items []*item[R]
	var group []R
	for first := range l.queue {
		l.taken.Add(1)
		items = append(items[:0], first)
		n := 0
		flushing := first.flush // a Flush marker ends the group: its caller waits for nothing else
		if !first.flush {
			n = l.size(first.r)
		}
		add := func(it *item[R]) {
			l.taken.Add(1)
			items = append(items, it)
			if it.flush {
				flushing = true
			} else {
				n += l.size(it.r)
			}
		}
		open := true
		// Take whatever is already queued.
	drain:
		for n < l.opt.MaxGroup && !flushing {
			select {
			case it, ok := <-l.queue:
				if !ok {
					open = false
					break drain
				}
				add(it)
			default:
				break drain
			}
		}
		// Then wait up to Window for more, so that concurrent callers share a commit.
		if open && !flushing && n < l.opt.MaxGroup && l.opt.Window > 0 {
			if timer == nil {
				timer = time.NewTimer(l.opt.Window)
			} else {
				timer.Reset(l.opt.Window)
			}
		wait:
			for n < l.opt.MaxGroup && !flushing {
				select {
				case it, ok := <-l.queue:
					if !ok {
						break wait
					}
					add(it)
				case <-timer.C:
					break wait
				}
			}
			timer.Stop() // Go ≥ 1.23: a stopped timer's channel holds no stale tick
		}
		group = l.commitGroup(lane, items, group[:0])
		clear(items) // drop references to answered requests
		clear(group)
	}
}

// commitGroup commits the requests of items (markers aside) as one group, retries
// them one by one when a group of several fails, and answers every item. It
// returns the group slice for reuse.
func (l *Loop[R]) commitGroup(lane int, items []*item[R], group []R) []R {
	for _, it := range items {
		if !it.flush {
			group = append(group, it.r)
		}
	}
	flushes := func(err error) {
		for _, it := range items {
			if it.flush {
				it.done <- err
			}
		}
	}
	if len(group) == 0 {
		flushes(nil)
		return group
	}
	err := l.commit(lane, group)
	if err == nil || len(group) == 1 {
		l.count(group, err)
		for _, it := range items {
			if !it.flush {
				it.done <- err
			}
		}
		flushes(err)
		return group
	}
	// One request that cannot be committed must not fail the others: commit each
	// alone, so that only the requests that cannot be stored get an error.
	l.opt.Logger.Warn("group commit failed; committing its requests one by one", "requests", len(group), "size", l.sum(group), "err", err)
	var first error
	for _, it := range items {
		if it.flush {
			continue
		}
		one := []R{it.r}
		e := l.commit(lane, one)
		l.count(one, e)
		if first == nil {
			first = e
		}
		it.done <- e
	}
	flushes(first)
	return group
}

func (l *Loop[R]) sum(group []R) int {
	n := 0
	for _, r := range group {
		n += l.size(r)
	}
	return n
}

// count records a commit's outcome in the counters and logs a failure.
func (l *Loop[R]) count(group []R, err error) {
	n := l.sum(group)
	if err == nil {
		l.committed.Add(int64(n))
		return
	}
	l.failed.Add(int64(n))
	l.opt.Logger.Error("commit failed", "requests", len(group), "size", n, "err", err)
}
