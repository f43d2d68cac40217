package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/results"
	"github.com/liftlab/lift/store"
)

// newScheduler builds the job scheduler of "lift serve": results refreshes,
// monitors (their webhooks limited by hooks) and DP digests; extra adds kinds
// backed by other packages (journey comparisons), each with its creation check.
func newScheduler(db *store.DB, rs *results.Service, logger *slog.Logger, hooks *jobs.WebhookPolicy, extra map[experiment.JobKind]extraKind) (*jobs.Scheduler, error) {
	deps := jobs.Deps{
		Store:    db,
		Results:  rs,
		Webhooks: hooks,
		Logger:   logger,
		Digest: func(ctx context.Context, j *experiment.Job, period time.Time, target string) (*experiment.Digest, error) {
			return api.BuildDigest(ctx, db, rs, j, period, target, api.DigestOptions{})
		},
		JourneyDays: func(ctx context.Context, key string, from, to time.Time) ([]store.JourneyDay, error) {
			return journey.Rollup(ctx, db, key, from, to)
		},
		PrivateGuardrails: func(ctx context.Context, j *experiment.Job, key string) ([]jobs.GuardrailCheck, bool, error) {
			return api.PrivateGuardrails(ctx, db, rs, key, "monitor:"+j.Name, privacy.Options{})
		},
	}
	kinds, checks := jobs.Kinds(deps), jobs.Checks(deps)
	for k, x := range extra {
		kinds[k], checks[k] = x.run, x.check
	}
	opt := jobs.DefaultOptions()
	opt.Logger = logger
	opt.Checks = checks
	return jobs.New(db, kinds, opt)
}

// extraKind is a job kind defined outside package jobs: its work and its check.
type extraKind struct {
	run   jobs.Func
	check jobs.Check
}

// journeyComparisonKind is the journey_comparison job kind: params decoded
// strictly into journey.ScheduledParams, and the target journey must exist.
func journeyComparisonKind(db *store.DB, rs *results.Service, dec *journey.Decider) extraKind {
	return extraKind{run: journey.ScheduledCompare(db, rs, dec), check: func(ctx context.Context, j *experiment.Job) error {
		var p journey.ScheduledParams
		if err := jobs.DecodeParams(j, &p); err != nil {
			return err
		}
		if err := p.Validate(); err != nil {
			return err
		}
		if j.Target == "" {
			return nil
		}
		if _, err := db.GetJourney(ctx, j.Target); experiment.Is(err, experiment.NotFound) {
			return experiment.E("journey_comparison", experiment.Invalid, experiment.Field("target"), experiment.Errorf("no journey %q: create it first, or leave target out for all", j.Target))
		} else if err != nil {
			return err
		}
		return nil
	}}
}

// schedulerTask runs the scheduler beside the API until the server stops.
func schedulerTask(s *jobs.Scheduler) backgroundTask {
	return backgroundTask{name: "jobs", run: func(ctx context.Context) error {
		if err := s.Start(ctx); err != nil {
			return err
		}
		<-ctx.Done()
		return s.Stop()
	}}
}

// holdoutRotationTask rotates holdouts whose rotation period has elapsed, checking
// once a minute (and at start).
func holdoutRotationTask(db *store.DB, logger *slog.Logger) backgroundTask {
	return backgroundTask{name: "holdout-rotation", run: func(ctx context.Context) error {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			hs, err := db.RotateDueHoldouts(ctx, "system")
			if err != nil && ctx.Err() == nil {
				logger.Error("holdout rotation failed", "error", err.Error())
			}
			for _, h := range hs {
				logger.Info("holdout rotated", "holdout", h.Name, "version", h.Version)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}}
}
