package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/jobs"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/store"
)

// newScheduler builds the job scheduler of "lift serve": results refreshes,
// monitors and DP digests; extra adds kinds backed by other packages (journey
// comparisons).
func newScheduler(db *store.DB, logger *slog.Logger, extra map[experiment.JobKind]jobs.Func) (*jobs.Scheduler, error) {
	kinds := jobs.Kinds(jobs.Deps{
		Store: db,
		Digest: func(ctx context.Context, j *experiment.Job, period time.Time, target string) (*experiment.Digest, error) {
			return api.BuildDigest(ctx, db, j, period, target, api.DigestOptions{})
		},
		PrivateGuardrails: func(ctx context.Context, j *experiment.Job, key string) ([]jobs.GuardrailCheck, bool, error) {
			return api.PrivateGuardrails(ctx, db, key, "monitor:"+j.Name, privacy.Options{})
		},
	})
	for k, f := range extra {
		kinds[k] = f
	}
	opt := jobs.DefaultOptions()
	opt.Logger = logger
	return jobs.New(db, kinds, opt)
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
