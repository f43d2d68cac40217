package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"

	"github.com/liftlab/lift/experiment"
)

// Store persists schedules, runs, alerts and digests. *store.DB implements it.
type Store interface {
	SaveJob(ctx context.Context, actor string, j *experiment.Job) error // create or replace
	DeleteJob(ctx context.Context, actor, name string) error
	GetJob(ctx context.Context, name string) (*experiment.Job, error)
	ListJobs(ctx context.Context) ([]*experiment.Job, error)
	// BeginRun records a run as running and sets its ID. It reports skip (and records
	// nothing) when the job already has a succeeded run for that period.
	BeginRun(ctx context.Context, r *experiment.JobRun) (skip bool, err error)
	FinishRun(ctx context.Context, r *experiment.JobRun) error
	ListRuns(ctx context.Context, job string, limit int) ([]*experiment.JobRun, error)
}

// Func does a job's work for one period and returns what it produced (JSON-encodable).
type Func func(ctx context.Context, j *experiment.Job, period time.Time) (any, error)

// Check validates a job of one kind at creation, against the data: its params
// (strictly: no unknown field) and its target. See Checks.
type Check func(ctx context.Context, j *experiment.Job) error

// Options configure a Scheduler.
type Options struct {
	Clock      clockwork.Clock // default the real clock
	Logger     *slog.Logger    // default slog.Default()
	Retries    int             // extra attempts after a failure, default 3
	Backoff    time.Duration   // wait before the first retry, doubled each time, default 30s
	RunTimeout time.Duration   // limit of one attempt, default 10m
	// AfterRun, when set, is called after each attempt is recorded (tests use it to wait).
	AfterRun func(*experiment.JobRun)
	// Checks validate jobs of their kinds when they are added (Checks(deps),
	// plus kinds defined elsewhere); a kind without one is checked for its timing only.
	Checks map[experiment.JobKind]Check
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{Clock: clockwork.NewRealClock(), Logger: slog.Default(), Retries: 3, Backoff: 30 * time.Second, RunTimeout: 10 * time.Minute}
}

// Scheduler runs persisted jobs on their schedules.
type Scheduler struct {
	store Store
	kinds map[experiment.JobKind]Func
	opt   Options
	cron  gocron.Scheduler

	mu     sync.Mutex
	ids    map[string]gocron.Job // job name → registered gocron job
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Scheduler for the given kinds. Zero fields of opt take their defaults.
func New(store Store, kinds map[experiment.JobKind]Func, opt Options) (*Scheduler, error) {
	d := DefaultOptions()
	if opt.Clock == nil {
		opt.Clock = d.Clock
	}
	if opt.Logger == nil {
		opt.Logger = d.Logger
	}
	if opt.Retries == 0 {
		opt.Retries = d.Retries
	}
	if opt.Retries < 0 {
		opt.Retries = 0
	}
	if opt.Backoff == 0 {
		opt.Backoff = d.Backoff
	}
	if opt.RunTimeout == 0 {
		opt.RunTimeout = d.RunTimeout
	}
	c, err := gocron.NewScheduler(gocron.WithClock(opt.Clock), gocron.WithLocation(time.UTC), gocron.WithStopTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jobs.New: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{store: store, kinds: kinds, opt: opt, cron: c, ids: map[string]gocron.Job{}, ctx: ctx, cancel: cancel}, nil
}

// Validate checks a job definition: its name, kind and timing.
func (s *Scheduler) Validate(j *experiment.Job) error {
	if !experiment.ValidKey(j.Name) {
		return experiment.E("jobs.Validate", experiment.Invalid, experiment.Field("name"), experiment.Errorf("must be 1-128 letters, digits, '_', '.' or '-', got %q", j.Name))
	}
	if _, ok := s.kinds[j.Kind]; !ok {
		return experiment.E("jobs.Validate", experiment.Invalid, experiment.Field("kind"), experiment.Errorf("unknown job kind %q", j.Kind))
	}
	if len(j.Params) > 0 && !json.Valid(j.Params) {
		return experiment.E("jobs.Validate", experiment.Invalid, experiment.Field("params"), experiment.Errorf("must be a JSON object"))
	}
	_, err := parse(j)
	return err
}

// Start loads every persisted job, registers it, starts the scheduler, and runs,
// in the background, the current period of each job that has no succeeded run for
// it (a period missed while the server was down, or cut short by a restart).
func (s *Scheduler) Start(ctx context.Context) error {
	js, err := s.store.ListJobs(ctx)
	if err != nil {
		return fmt.Errorf("jobs.Start: %w", err)
	}
	for _, j := range js {
		if err := s.register(j); err != nil {
			return fmt.Errorf("jobs.Start: job %s: %w", j.Name, err)
		}
	}
	s.cron.Start()
	now := s.opt.Clock.Now()
	for _, j := range js {
		if j.Paused {
			continue
		}
		sc, err := parse(j)
		if err != nil {
			continue
		}
		if p := sc.prev(now); !p.IsZero() && !p.Before(j.Created) {
			j := j
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.fire(j, p, "catchup")
			}()
		}
	}
	return nil
}

// Stop stops scheduling, cancels running attempts and waits for them to end.
func (s *Scheduler) Stop() error {
	s.cancel()
	err := s.cron.Shutdown()
	s.wg.Wait()
	return err
}

// Add validates and persists a job (replacing one of the same name) and schedules it.
func (s *Scheduler) Add(ctx context.Context, actor string, j *experiment.Job) error {
	if j.TimeZone == "" {
		j.TimeZone = "UTC"
	}
	if j.Created.IsZero() {
		j.Created = s.opt.Clock.Now().UTC()
	}
	if err := s.Validate(j); err != nil {
		return err
	}
	if check := s.opt.Checks[j.Kind]; check != nil {
		if err := check(ctx, j); err != nil {
			return err
		}
	}
	if err := s.store.SaveJob(ctx, actor, j); err != nil {
		return err
	}
	return s.register(j)
}

// Remove unschedules and deletes a job; its runs stay in the history.
func (s *Scheduler) Remove(ctx context.Context, actor, name string) error {
	if err := s.store.DeleteJob(ctx, actor, name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.ids[name]; ok {
		delete(s.ids, name)
		return s.cron.RemoveJob(g.ID())
	}
	return nil
}

// Trigger runs a job now, by hand, for a period of its own (the current time to the
// second). It waits for the first attempt only: it returns that attempt's record
// once it ends, or, when ctx ends first, the record of the attempt still running;
// done is false when the run goes on in the background (the first attempt is
// still running, or it failed and the retries follow, with their backoff). A nil
// record means the period had already succeeded.
func (s *Scheduler) Trigger(ctx context.Context, name string) (r *experiment.JobRun, done bool, err error) {
	j, err := s.store.GetJob(ctx, name)
	if err != nil {
		return nil, false, err
	}
	if s.ctx.Err() != nil {
		return nil, false, experiment.E("jobs.Trigger", experiment.Unavailable, experiment.Errorf("the scheduler is stopping"))
	}
	p := s.opt.Clock.Now().Truncate(time.Second)
	began := make(chan experiment.JobRun, 1)
	ended := make(chan experiment.JobRun, 1)
	finished := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(finished)
		s.fireWith(j, p, "manual", func(r *experiment.JobRun, end bool) {
			if r.Attempt != 1 {
				return
			}
			if end {
				ended <- *r
			} else {
				began <- *r
			}
		})
	}()
	var first experiment.JobRun
	select {
	case first = <-began:
	case <-finished: // skipped (already succeeded), or the run could not be recorded
		select {
		case first = <-began:
		default:
			if s.ctx.Err() != nil {
				return nil, false, experiment.E("jobs.Trigger", experiment.Unavailable, experiment.Errorf("the scheduler is stopping"))
			}
			return nil, true, nil
		}
	}
	select {
	case e := <-ended:
		return &e, e.Status == experiment.RunSucceeded, nil
	case <-ctx.Done():
		return &first, false, nil
	}
}

func (s *Scheduler) register(j *experiment.Job) error {
	sc, err := parse(j)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.ids[j.Name]; ok {
		if err := s.cron.RemoveJob(g.ID()); err != nil && !errors.Is(err, gocron.ErrJobNotFound) {
			return err
		}
		delete(s.ids, j.Name)
	}
	if j.Paused {
		return nil
	}
	var def gocron.JobDefinition
	opts := []gocron.JobOption{gocron.WithName(j.Name), gocron.WithSingletonMode(gocron.LimitModeWait)}
	if sc.cron != nil {
		def = gocron.CronJob("CRON_TZ="+sc.loc.String()+" "+j.Cron, false)
	} else {
		def = gocron.DurationJob(sc.every)
		// Align interval jobs on whole multiples of the interval (see schedule.prev).
		opts = append(opts, gocron.WithStartAt(gocron.WithStartDateTime(sc.next(s.opt.Clock.Now()))))
	}
	name := j.Name
	g, err := s.cron.NewJob(def, gocron.NewTask(func() {
		s.wg.Add(1)
		defer s.wg.Done()
		cur, err := s.store.GetJob(s.ctx, name)
		if err != nil {
			s.opt.Logger.Error("scheduled job vanished", "job", name, "err", err)
			return
		}
		now := s.opt.Clock.Now()
		s.fire(cur, sc.prev(now), "schedule")
	}), opts...)
	if err != nil {
		return fmt.Errorf("schedule %s: %w", j.Name, err)
	}
	s.ids[j.Name] = g
	return nil
}

// fire runs one period of a job with retries and records every attempt. It returns
// the last attempt's record, or nil when the period had already succeeded.
func (s *Scheduler) fire(j *experiment.Job, period time.Time, trigger string) *experiment.JobRun {
	return s.fireWith(j, period, trigger, nil)
}

// fireWith is fire that calls notify, when not nil, as each attempt is recorded
// as running (end false) and as ended (end true).
func (s *Scheduler) fireWith(j *experiment.Job, period time.Time, trigger string, notify func(r *experiment.JobRun, end bool)) *experiment.JobRun {
	fn := s.kinds[j.Kind]
	wait := s.opt.Backoff
	var last *experiment.JobRun
	for attempt := 1; attempt <= 1+s.opt.Retries; attempt++ {
		if s.ctx.Err() != nil {
			return last
		}
		r := &experiment.JobRun{Job: j.Name, Period: period.UTC(), Attempt: attempt, Trigger: trigger, Start: s.opt.Clock.Now().UTC(), Status: experiment.RunRunning}
		skip, err := s.store.BeginRun(s.ctx, r)
		if err != nil {
			s.opt.Logger.Error("job run not recorded", "job", j.Name, "err", err)
			return last
		}
		if skip {
			return last
		}
		last = r
		if notify != nil {
			notify(r, false)
		}
		out, runErr := s.attempt(fn, j, period)
		end := s.opt.Clock.Now().UTC()
		r.End = &end
		if runErr == nil {
			r.Status = experiment.RunSucceeded
			if out != nil {
				if b, err := json.Marshal(out); err == nil {
					r.Output = b
				}
			}
		} else {
			r.Status = experiment.RunFailed
			r.Error = runErr.Error()
		}
		// Record the end even if the scheduler is stopping.
		finCtx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
		if err := s.store.FinishRun(finCtx, r); err != nil {
			s.opt.Logger.Error("job run end not recorded", "job", j.Name, "err", err)
		}
		cancel()
		if s.opt.AfterRun != nil {
			s.opt.AfterRun(r)
		}
		if notify != nil {
			notify(r, true)
		}
		if runErr == nil {
			return r
		}
		s.opt.Logger.Warn("job run failed", "job", j.Name, "period", period, "attempt", attempt, "err", runErr)
		if attempt == 1+s.opt.Retries {
			break
		}
		select {
		case <-s.ctx.Done():
			return last
		case <-s.opt.Clock.After(wait):
		}
		wait *= 2
	}
	return last
}

func (s *Scheduler) attempt(fn Func, j *experiment.Job, period time.Time) (out any, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opt.RunTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	return fn(ctx, j, period)
}

// Runs lists a job's recorded attempts, newest first.
func (s *Scheduler) Runs(ctx context.Context, job string, limit int) ([]*experiment.JobRun, error) {
	return s.store.ListRuns(ctx, job, limit)
}
