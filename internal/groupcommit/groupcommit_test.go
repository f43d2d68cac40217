package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// req is a test request: an id, a weight, and whether committing it fails.
type req struct {
	id   int
	size int
	bad  bool
}

var errBad = errors.New("bad request in group")

// ledger is the test's "database": commit stores a group whole, or nothing when a
// member is bad, and records every call.
type ledger struct {
	mu        sync.Mutex
	committed map[int]int // id -> times committed
	order     []int       // ids in commit order
	calls     [][]int     // ids of every commit call
	lanesBusy map[int]bool
	overlap   bool // two commits ran at once on one lane

	hold    chan struct{} // when set, the first commit waits on it
	entered chan struct{} // closed when the first commit starts waiting
	once    sync.Once
}

func newLedger() *ledger {
	return &ledger{committed: map[int]int{}, lanesBusy: map[int]bool{}}
}

func (l *ledger) commit(lane int, group []req) error {
	l.mu.Lock()
	if l.lanesBusy[lane] {
		l.overlap = true
	}
	l.lanesBusy[lane] = true
	ids := make([]int, len(group))
	for i, r := range group {
		ids[i] = r.id
	}
	l.calls = append(l.calls, ids)
	hold := l.hold
	l.mu.Unlock()
	if hold != nil {
		l.once.Do(func() { close(l.entered); <-hold })
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lanesBusy[lane] = false
	for _, r := range group {
		if r.bad {
			return fmt.Errorf("request %d: %w", r.id, errBad)
		}
	}
	for _, r := range group {
		l.committed[r.id]++
		l.order = append(l.order, r.id)
	}
	return nil
}

func (l *ledger) times(id int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.committed[id]
}

// holdFirst makes the next commit wait until release is called, and returns once
// that commit has started.
func (l *ledger) holdFirst(t *testing.T, start func()) (release func()) {
	t.Helper()
	l.mu.Lock()
	l.hold, l.entered = make(chan struct{}), make(chan struct{})
	l.mu.Unlock()
	start()
	<-l.entered
	return func() { close(l.hold) }
}

func size(r req) int { return r.size }

// TestConcurrentSubmit runs many concurrent callers against loops of several
// shapes and checks the contract: Submit returns nil only for a request already
// committed (exactly once), the error for a bad one (which is never committed),
// and no group grows past MaxGroup by more than its last request.
func TestConcurrentSubmit(t *testing.T) {
	cases := []struct {
		name    string
		opt     Options
		callers int
		each    int // requests per caller
		size    int // weight of each request
		bad     func(id int) bool
	}{
		{"one lane, no window", Options{Queue: 16, MaxGroup: 64}, 32, 20, 1, nil},
		{"one lane, window", Options{Queue: 16, MaxGroup: 64, Window: time.Millisecond}, 32, 20, 1, nil},
		{"two lanes", Options{Queue: 8, MaxGroup: 16, Lanes: 2}, 32, 20, 1, nil},
		{"four lanes, weighted", Options{Queue: 4, MaxGroup: 100, Lanes: 4}, 16, 25, 30, nil},
		{"bad requests", Options{Queue: 16, MaxGroup: 64, Window: time.Millisecond}, 32, 20, 1, func(id int) bool { return id%37 == 5 }},
		{"bad requests, two lanes", Options{Queue: 16, MaxGroup: 64, Lanes: 2}, 32, 20, 1, func(id int) bool { return id%11 == 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			led := newLedger()
			l := New(c.opt, led.commit, size)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var problems []string
			wantCommitted, wantFailed := 0, 0
			for g := 0; g < c.callers; g++ {
				for i := 0; i < c.each; i++ {
					id := g*c.each + i
					if c.bad != nil && c.bad(id) {
						wantFailed += c.size
					} else {
						wantCommitted += c.size
					}
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < c.each; i++ {
						r := req{id: g*c.each + i, size: c.size, bad: c.bad != nil && c.bad(g*c.each+i)}
						err := l.Submit(context.Background(), r)
						n := led.times(r.id) // read after the answer: what was committed by then
						var p string
						switch {
						case r.bad && !errors.Is(err, errBad):
							p = fmt.Sprintf("bad request %d: got %v, want its commit's error", r.id, err)
						case r.bad && n != 0:
							p = fmt.Sprintf("bad request %d committed %d times", r.id, n)
						case !r.bad && err != nil:
							p = fmt.Sprintf("request %d: %v", r.id, err)
						case !r.bad && n != 1:
							p = fmt.Sprintf("request %d answered nil but committed %d times at the answer", r.id, n)
						}
						if p != "" {
							mu.Lock()
							problems = append(problems, p)
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			l.Close()
			for _, p := range problems {
				t.Error(p)
			}
			if led.overlap {
				t.Error("two commits ran at once on one lane")
			}
			for _, call := range led.calls {
				// A group stops growing once it reaches MaxGroup: it exceeds it by less than one request.
				if got := len(call) * c.size; got-c.size >= c.opt.MaxGroup {
					t.Errorf("a group of size %d, MaxGroup %d, request size %d", got, c.opt.MaxGroup, c.size)
				}
			}
			st := l.Stats()
			if st.Committed != int64(wantCommitted) || st.Failed != int64(wantFailed) || st.Taken != int64(c.callers*c.each) {
				t.Errorf("stats %+v, want committed %d, failed %d, taken %d", st, wantCommitted, wantFailed, c.callers*c.each)
			}
			if st.Queued != 0 || st.QueueCap != c.opt.Queue {
				t.Errorf("stats %+v: want an empty queue of %d", st, c.opt.Queue)
			}
		})
	}
}

// TestFailedGroupRetriesOneByOne: a group with one bad request fails as a whole,
// then each member is committed alone, so only the bad one gets an error.
func TestFailedGroupRetriesOneByOne(t *testing.T) {
	led := newLedger()
	l := New(Options{Queue: 16, MaxGroup: 64}, led.commit, nil)
	defer l.Close()
	ctx := context.Background()
	errs := make([]chan error, 5)
	for i := range errs {
		errs[i] = make(chan error, 1)
	}
	release := led.holdFirst(t, func() { go func() { errs[0] <- l.Submit(ctx, req{id: 0}) }() })
	// The lane is inside the first commit: the next four queue up and form one group.
	for i := 1; i < 5; i++ {
		go func() { errs[i] <- l.Submit(ctx, req{id: i, bad: i == 3}) }()
		for l.Stats().Queued < i { // one at a time, so the queue order is 1, 2, 3, 4
			time.Sleep(time.Millisecond)
		}
	}
	release()
	for i, ch := range errs {
		err := <-ch
		if i == 3 {
			if !errors.Is(err, errBad) {
				t.Errorf("request 3: got %v, want its error", err)
			}
		} else if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	want := [][]int{{0}, {1, 2, 3, 4}, {1}, {2}, {3}, {4}}
	if !slices.EqualFunc(led.calls, want, slices.Equal[[]int]) {
		t.Errorf("commit calls %v, want %v (the group, then each member alone)", led.calls, want)
	}
	if !slices.Equal(led.order, []int{0, 1, 2, 4}) {
		t.Errorf("committed %v, want [0 1 2 4] in queue order", led.order)
	}
}

// TestBackPressure: with the lane held and the queue full, Submit waits for room
// until its context ends and then fails with ErrQueueFull, queueing nothing; a
// caller whose context ends after queueing gets ErrNotAnswered, and its request
// is still committed.
func TestBackPressure(t *testing.T) {
	led := newLedger()
	l := New(Options{Queue: 1, MaxGroup: 64}, led.commit, nil)
	ctx := context.Background()
	first := make(chan error, 1)
	release := led.holdFirst(t, func() { go func() { first <- l.Submit(ctx, req{id: 1}) }() })
	queued, cancelQueued := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() { second <- l.Submit(queued, req{id: 2}) }()
	for l.Stats().Queued < 1 {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	err := l.Submit(short, req{id: 3})
	cancel()
	if !errors.Is(err, ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("third: got %v, want ErrQueueFull wrapping the deadline", err)
	}
	if err := l.Enqueue(short, req{id: 4}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Enqueue on a full queue: got %v, want ErrQueueFull", err)
	}
	cancelQueued()
	if err := <-second; !errors.Is(err, ErrNotAnswered) || !errors.Is(err, context.Canceled) {
		t.Errorf("second: got %v, want ErrNotAnswered wrapping the cancellation", err)
	}
	release()
	if err := <-first; err != nil {
		t.Errorf("first: %v", err)
	}
	l.Close()
	for id, want := range map[int]int{1: 1, 2: 1, 3: 0, 4: 0} {
		if n := led.times(id); n != want {
			t.Errorf("request %d committed %d times, want %d", id, n, want)
		}
	}
}

// TestCloseWhileWaiting: requests waiting in the queue or in a lane's window when
// Close is called are committed and answered; afterwards Submit and Enqueue fail
// with ErrClosed and Flush returns nil.
func TestCloseWhileWaiting(t *testing.T) {
	for _, lanes := range []int{1, 3} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) {
			led := newLedger()
			// An hour's window: without Close no group would commit during the test.
			l := New(Options{Queue: 64, MaxGroup: 1000, Window: time.Hour, Lanes: lanes}, led.commit, nil)
			const callers = 20
			errs := make(chan error, callers)
			for i := 0; i < callers; i++ {
				go func() { errs <- l.Submit(context.Background(), req{id: i}) }()
			}
			for st := l.Stats(); st.Taken+int64(st.Queued) < callers; st = l.Stats() {
				time.Sleep(time.Millisecond)
			}
			led.mu.Lock()
			early := len(led.calls)
			led.mu.Unlock()
			if early != 0 {
				t.Fatalf("%d commits before Close", early)
			}
			l.Close()
			for i := 0; i < callers; i++ {
				if err := <-errs; err != nil {
					t.Errorf("waiting caller: %v", err)
				}
			}
			for i := 0; i < callers; i++ {
				if n := led.times(i); n != 1 {
					t.Errorf("request %d committed %d times", i, n)
				}
			}
			if err := l.Submit(context.Background(), req{id: 99}); !errors.Is(err, ErrClosed) {
				t.Errorf("Submit after Close: %v, want ErrClosed", err)
			}
			if err := l.Enqueue(context.Background(), req{id: 99}); !errors.Is(err, ErrClosed) {
				t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
			}
			if lanes == 1 {
				if err := l.Flush(context.Background()); err != nil {
					t.Errorf("Flush after Close: %v", err)
				}
			}
			l.Close() // a second Close returns too
		})
	}
}

// TestEnqueueFlush: requests enqueued without waiting are committed in queue
// order by one lane, and Flush returns only once all of them are; a Flush with
// nothing before it commits nothing; Flush reports a failure of its group.
func TestEnqueueFlush(t *testing.T) {
	led := newLedger()
	l := New(Options{Queue: 256, MaxGroup: 7, Window: time.Hour}, led.commit, nil) // a Flush must not wait out the window
	defer l.Close()
	ctx := context.Background()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	led.mu.Lock()
	empty := len(led.calls)
	led.mu.Unlock()
	if empty != 0 {
		t.Errorf("an empty Flush made %d commits", empty)
	}
	var want []int
	for i := 0; i < 100; i++ {
		if err := l.Enqueue(ctx, req{id: i}); err != nil {
			t.Fatal(err)
		}
		want = append(want, i)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	led.mu.Lock()
	got := slices.Clone(led.order)
	led.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("committed %v at Flush, want 0..99 in order", got)
	}
	if err := l.Enqueue(ctx, req{id: 100, bad: true}); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(ctx); !errors.Is(err, errBad) {
		t.Errorf("Flush after a bad request: %v, want its error", err)
	}
	if st := l.Stats(); st.Failed != 1 || st.Committed != 100 {
		t.Errorf("stats %+v, want 100 committed and 1 failed", st)
	}
}

func TestFlushNeedsOneLane(t *testing.T) {
	l := New(Options{Lanes: 2}, newLedger().commit, nil)
	defer l.Close()
	defer func() {
		if recover() == nil {
			t.Error("Flush on two lanes did not panic")
		}
	}()
	l.Flush(context.Background())
}
