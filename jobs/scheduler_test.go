package jobs

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/liftlab/lift/experiment"
)

// memStore is an in-memory Store for scheduler logic tests; the DuckDB store is
// tested against the same scenarios in store/jobs_test.go.
type memStore struct {
	mu   sync.Mutex
	jobs map[string]*experiment.Job
	runs []*experiment.JobRun
}

func newMemStore() *memStore { return &memStore{jobs: map[string]*experiment.Job{}} }

func (m *memStore) SaveJob(_ context.Context, _ string, j *experiment.Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *j
	m.jobs[j.Name] = &c
	return nil
}
func (m *memStore) DeleteJob(_ context.Context, _, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, name)
	return nil
}
func (m *memStore) GetJob(_ context.Context, name string) (*experiment.Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[name]
	if !ok {
		return nil, experiment.E(experiment.NotFound, errors.New("no job "+name))
	}
	c := *j
	return &c, nil
}
func (m *memStore) ListJobs(context.Context) ([]*experiment.Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*experiment.Job
	for _, j := range m.jobs {
		c := *j
		out = append(out, &c)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}
func (m *memStore) BeginRun(_ context.Context, r *experiment.JobRun) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.runs {
		if o.Job == r.Job && o.Period.Equal(r.Period) && o.Status == experiment.RunSucceeded {
			return true, nil
		}
	}
	r.ID = int64(len(m.runs) + 1)
	c := *r
	m.runs = append(m.runs, &c)
	return false, nil
}
func (m *memStore) FinishRun(_ context.Context, r *experiment.JobRun) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *r
	m.runs[r.ID-1] = &c
	return nil
}
func (m *memStore) ListRuns(_ context.Context, job string, limit int) ([]*experiment.JobRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*experiment.JobRun
	for i := len(m.runs) - 1; i >= 0; i-- {
		if job == "" || m.runs[i].Job == job {
			c := *m.runs[i]
			out = append(out, &c)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func TestSchedulePrev(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		name string
		job  experiment.Job
		now  time.Time
		want time.Time
	}{
		// 2026-11-23 is a Monday.
		{"weekly before fire", experiment.Job{Cron: "0 9 * * 1"}, time.Date(2026, 11, 23, 8, 59, 0, 0, time.UTC), time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)},
		{"weekly at fire", experiment.Job{Cron: "0 9 * * 1"}, time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)},
		{"weekly in zone", experiment.Job{Cron: "0 9 * * 1", TimeZone: "America/New_York"}, time.Date(2026, 11, 23, 14, 30, 0, 0, time.UTC), time.Date(2026, 11, 23, 9, 0, 0, 0, ny)},
		{"every minute", experiment.Job{Cron: "* * * * *"}, time.Date(2026, 11, 23, 8, 59, 30, 0, time.UTC), time.Date(2026, 11, 23, 8, 59, 0, 0, time.UTC)},
		{"interval aligned on epoch", experiment.Job{Every: experiment.Duration(6 * time.Hour)}, time.Date(2026, 11, 23, 13, 5, 0, 0, time.UTC), time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := parse(&tc.job)
			if err != nil {
				t.Fatal(err)
			}
			if got := sc.prev(tc.now); !got.Equal(tc.want) {
				t.Errorf("prev(%v) = %v, want %v", tc.now, got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	s, err := New(newMemStore(), map[experiment.JobKind]Func{experiment.JobDigest: nil}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		job   experiment.Job
		field string
	}{
		{experiment.Job{Name: "", Kind: experiment.JobDigest, Cron: "0 9 * * 1"}, "name"},
		{experiment.Job{Name: "d", Kind: "nope", Cron: "0 9 * * 1"}, "kind"},
		{experiment.Job{Name: "d", Kind: experiment.JobDigest, Cron: "0 25 * * 1"}, "cron"},
		{experiment.Job{Name: "d", Kind: experiment.JobDigest}, "cron"},
		{experiment.Job{Name: "d", Kind: experiment.JobDigest, Cron: "0 9 * * 1", Every: experiment.Duration(time.Hour)}, "cron"},
		{experiment.Job{Name: "d", Kind: experiment.JobDigest, Every: experiment.Duration(time.Second)}, "every"},
		{experiment.Job{Name: "d", Kind: experiment.JobDigest, Cron: "0 9 * * 1", TimeZone: "Mars/Olympus"}, "time_zone"},
	}
	for _, tc := range tests {
		err := s.Validate(&tc.job)
		var e *experiment.Error
		if !errors.As(err, &e) || e.Kind != experiment.Invalid || e.Field != tc.field {
			t.Errorf("Validate(%+v) = %v, want Invalid on %s", tc.job, err, tc.field)
		}
	}
}

// runWatcher collects finished attempts so a fake-clock test can wait for them.
type runWatcher struct {
	mu   sync.Mutex
	runs []experiment.JobRun
	ch   chan struct{}
}

func newRunWatcher() *runWatcher { return &runWatcher{ch: make(chan struct{}, 1024)} }

func (w *runWatcher) after(r *experiment.JobRun) {
	w.mu.Lock()
	w.runs = append(w.runs, *r)
	w.mu.Unlock()
	w.ch <- struct{}{}
}

func (w *runWatcher) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		got := len(w.runs)
		w.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-w.ch:
		case <-deadline:
			t.Fatalf("waited for %d runs, have %d", n, got)
		}
	}
}

func (w *runWatcher) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.runs)
}

func (w *runWatcher) waitUpTo(n int, d time.Duration) {
	deadline := time.After(d)
	for w.total() < n {
		select {
		case <-w.ch:
		case <-deadline:
			return
		}
	}
}

func (w *runWatcher) count(job string, status string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.runs {
		if r.Job == job && (status == "" || r.Status == status) {
			n++
		}
	}
	return n
}

// TestWeekOfSchedules drives a week with a fake clock: an hourly refresh, a 6-hourly
// monitor and a weekly Monday-09:00 digest must fire exactly 168, 28 and 1 times, each
// period once, and the flaky monitor's failures must be retried with backoff.
func TestWeekOfSchedules(t *testing.T) {
	start := time.Date(2026, 11, 16, 0, 0, 30, 0, time.UTC) // Monday, 30 s past midnight
	clock := clockwork.NewFakeClockAt(start)
	st := newMemStore()
	w := newRunWatcher()
	var mu sync.Mutex
	periods := map[string][]time.Time{}
	failOnce := map[time.Time]bool{}
	kinds := map[experiment.JobKind]Func{
		experiment.JobResultsRefresh: func(ctx context.Context, j *experiment.Job, p time.Time) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			periods[j.Name] = append(periods[j.Name], p)
			return map[string]string{"period": p.Format(time.RFC3339)}, nil
		},
		experiment.JobMonitor: func(ctx context.Context, j *experiment.Job, p time.Time) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			if p.Hour() == 12 && !failOnce[p] { // the noon monitor fails once, then succeeds
				failOnce[p] = true
				return nil, errors.New("warehouse timeout")
			}
			periods[j.Name] = append(periods[j.Name], p)
			return nil, nil
		},
		experiment.JobDigest: func(ctx context.Context, j *experiment.Job, p time.Time) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			periods[j.Name] = append(periods[j.Name], p)
			return nil, nil
		},
	}
	s, err := New(st, kinds, Options{Clock: clock, AfterRun: w.after, Backoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	created := start.Add(-time.Minute)
	for _, j := range []*experiment.Job{
		{Name: "refresh", Kind: experiment.JobResultsRefresh, Every: experiment.Duration(time.Hour), Created: created},
		{Name: "monitor", Kind: experiment.JobMonitor, Every: experiment.Duration(6 * time.Hour), Created: created},
		{Name: "digest", Kind: experiment.JobDigest, Cron: "0 9 * * 1", Created: created},
	} {
		if err := s.Add(ctx, "test", j); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	// Start catches up the current period of refresh (00:00) and monitor (00:00);
	// the digest's current period (last Monday 09:00) predates its creation.
	want := 2
	w.waitFor(t, want)
	for h := 1; h < 7*24; h++ {
		// Wait until gocron has armed the next timer of each of the 3 jobs.
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := clock.BlockUntilContext(bctx, 3); err != nil {
			t.Fatalf("hour %d: scheduler did not re-arm its timers: %v", h, err)
		}
		cancel()
		target := start.Add(time.Duration(h) * time.Hour)
		clock.Advance(target.Sub(clock.Now()))
		next := target.Truncate(time.Hour)
		want++ // refresh fires every hour
		if next.Hour()%6 == 0 {
			want++
		}
		if next.Weekday() == time.Monday && next.Hour() == 9 {
			want++
		}
		if next.Hour() == 12 {
			// The first attempt fails; the retry waits one minute of fake time.
			w.waitFor(t, want)
			want++
			for i := 0; i < 30 && w.total() < want; i++ {
				clock.Advance(time.Minute)
				w.waitUpTo(want, 20*time.Millisecond)
			}
		}
		w.waitFor(t, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := len(periods["refresh"]); got != 168 {
		t.Errorf("refresh ran for %d periods, want 168", got)
	}
	if got := len(periods["monitor"]); got != 28 {
		t.Errorf("monitor succeeded for %d periods, want 28", got)
	}
	if got := len(periods["digest"]); got != 1 {
		t.Errorf("digest ran %d times, want 1", got)
	} else if want := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC); !periods["digest"][0].Equal(want) {
		t.Errorf("digest period %v, want %v", periods["digest"][0], want)
	}
	for name, ps := range periods {
		seen := map[time.Time]bool{}
		for _, p := range ps {
			if seen[p] {
				t.Errorf("%s ran twice for period %v", name, p)
			}
			seen[p] = true
		}
	}
	if got := w.count("monitor", experiment.RunFailed); got != 7 {
		t.Errorf("monitor failed attempts = %d, want 7 (one per noon)", got)
	}
}
