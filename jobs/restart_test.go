package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// TestRestartMidRunPublishesOnce stops the scheduler (and closes the database) while a
// digest run is in flight, after it published, then starts again on the same file:
// the unfinished period is caught up, and there is exactly one digest for it.
func TestRestartMidRunPublishesOnce(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/lift.duckdb"
	db, err := store.Open(ctx, path, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	seedSRM(t, db)
	monday := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(monday.Add(-time.Hour))

	published := make(chan struct{}, 1)
	block := true
	digest := func(ctx context.Context, j *experiment.Job, period time.Time, target string) (*experiment.Digest, error) {
		summary, _ := json.Marshal(map[string]string{"target": target})
		return &experiment.Digest{ID: store.DigestID(j.Name, period, target), Job: j.Name, Period: period, Target: target, Title: "Weekly " + target, Verdict: "no verdict", At: clock.Now(), JSON: summary}, nil
	}
	var cur *store.DB
	deps := func() Deps {
		return Deps{Store: cur, Now: clock.Now, Digest: func(ctx context.Context, j *experiment.Job, p time.Time, tg string) (*experiment.Digest, error) {
			d, err := digest(ctx, j, p, tg)
			if err != nil {
				return nil, err
			}
			if _, err := cur.PublishDigest(ctx, d); err != nil { // published before the "crash"
				return nil, err
			}
			if block {
				published <- struct{}{}
				<-ctx.Done() // the server stops mid-run
				return nil, ctx.Err()
			}
			return d, nil
		}}
	}
	cur = db
	s1, err := New(db, Kinds(deps()), Options{Clock: clock, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	j := &experiment.Job{Name: "weekly", Kind: experiment.JobDigest, Cron: "0 9 * * 1", Created: monday.Add(-24 * time.Hour)}
	if err := s1.Add(ctx, "admin", j); err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(bctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour + time.Second) // Monday 09:00:01: the digest fires
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("digest did not run")
	}
	s1.Stop()
	db.Close()

	// Restart on the same file.
	block = false
	db2, err := store.Open(ctx, path, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	cur = db2
	done := make(chan *experiment.JobRun, 4)
	s2, err := New(db2, Kinds(deps()), Options{Clock: clock, Retries: -1, AfterRun: func(r *experiment.JobRun) { done <- r }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	select {
	case r := <-done:
		if r.Trigger != "catchup" || r.Status != experiment.RunSucceeded || !r.Period.Equal(monday) {
			t.Errorf("catch-up run = %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the interrupted period was not caught up")
	}
	ds, err := db2.ListDigests(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || !ds[0].Period.Equal(monday) {
		t.Fatalf("digests after restart = %+v, want exactly one for %v", ds, monday)
	}
	runs, err := db2.ListRuns(ctx, "weekly", 10)
	if err != nil {
		t.Fatal(err)
	}
	// The interrupted attempt and the catch-up are both in the history.
	if len(runs) != 2 || runs[1].Status != experiment.RunFailed || runs[0].Status != experiment.RunSucceeded {
		for _, r := range runs {
			t.Logf("run %+v", *r)
		}
		t.Fatalf("runs after restart: %d, want the interrupted (failed) and the caught-up (succeeded)", len(runs))
	}
}
