package store

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

func TestJobsRunsAlertsDigests(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t, newClock())
	j := &experiment.Job{Name: "weekly", Kind: experiment.JobDigest, Cron: "0 9 * * 1", TimeZone: "UTC", Created: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	if err := db.SaveJob(ctx, "alice", j); err != nil {
		t.Fatal(err)
	}
	j.Cron = "0 8 * * 1"
	if err := db.SaveJob(ctx, "alice", j); err != nil { // replace
		t.Fatal(err)
	}
	got, err := db.GetJob(ctx, "weekly")
	if err != nil || got.Cron != "0 8 * * 1" {
		t.Fatalf("GetJob = %+v, %v", got, err)
	}
	if _, err := db.GetJob(ctx, "nope"); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("GetJob(nope) = %v, want NotFound", err)
	}
	if n := count(t, db, `SELECT count(*) FROM audit WHERE entity = 'job'`); n != 2 {
		t.Errorf("audit entries for jobs = %d, want 2", n)
	}

	period := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	r := &experiment.JobRun{Job: "weekly", Period: period, Attempt: 1, Trigger: "schedule", Start: period, Status: experiment.RunRunning}
	if skip, err := db.BeginRun(ctx, r); err != nil || skip || r.ID == 0 {
		t.Fatalf("BeginRun = %v, %v, id %d", skip, err, r.ID)
	}
	end := period.Add(time.Minute)
	r.End, r.Status, r.Error = &end, experiment.RunFailed, "boom"
	if err := db.FinishRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	r2 := &experiment.JobRun{Job: "weekly", Period: period, Attempt: 2, Trigger: "schedule", Start: end, Status: experiment.RunRunning}
	if skip, err := db.BeginRun(ctx, r2); err != nil || skip {
		t.Fatalf("retry BeginRun = %v, %v: a failed period must run again", skip, err)
	}
	r2.End, r2.Status, r2.Output = &end, experiment.RunSucceeded, json.RawMessage(`{"digest":"x"}`)
	if err := db.FinishRun(ctx, r2); err != nil {
		t.Fatal(err)
	}
	r3 := &experiment.JobRun{Job: "weekly", Period: period, Attempt: 1, Trigger: "catchup", Start: end, Status: experiment.RunRunning}
	if skip, err := db.BeginRun(ctx, r3); err != nil || !skip {
		t.Fatalf("BeginRun after success = %v, %v, want skip", skip, err)
	}
	runs, err := db.ListRuns(ctx, "weekly", 10)
	if err != nil || len(runs) != 2 || runs[0].Status != experiment.RunSucceeded || runs[1].Error != "boom" || string(runs[0].Output) != `{"digest":"x"}` {
		t.Fatalf("ListRuns = %+v, %v", runs, err)
	}

	a := &experiment.Alert{At: end, Job: "weekly", Period: period, Kind: "srm", Target: "exp1", Severity: "critical", Message: "SRM p=1e-6"}
	if created, err := db.AddAlert(ctx, a); err != nil || !created {
		t.Fatalf("AddAlert = %v, %v", created, err)
	}
	dup := *a
	if created, err := db.AddAlert(ctx, &dup); err != nil || created {
		t.Fatalf("repeat AddAlert = %v, %v, want not created", created, err)
	}
	if err := db.MarkAlertDelivered(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if as, err := db.ListAlerts(ctx, 10); err != nil || len(as) != 1 || !as[0].Delivered {
		t.Fatalf("ListAlerts = %+v, %v", as, err)
	}

	d := &experiment.Digest{ID: DigestID("weekly", period, "exp1"), Job: "weekly", Period: period, Target: "exp1", Title: "t", Verdict: "v", At: end, JSON: json.RawMessage(`{"a":1}`), HTML: []byte("<p>"), PDF: []byte("%PDF")}
	for i, want := range []bool{true, false} {
		if created, err := db.PublishDigest(ctx, d); err != nil || created != want {
			t.Fatalf("PublishDigest #%d = %v, %v, want %v", i, created, err, want)
		}
	}
	db.Close()
	db2, err := Open(ctx, path, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	ds, err := db2.ListDigests(ctx, 10)
	if err != nil || len(ds) != 1 || ds[0].ID != "weekly-20260302T0800Z-exp1" {
		t.Fatalf("ListDigests after reopen = %+v, %v", ds, err)
	}
	full, err := db2.GetDigest(ctx, ds[0].ID)
	if err != nil || string(full.PDF) != "%PDF" || string(full.HTML) != "<p>" {
		t.Fatalf("GetDigest = %+v, %v", full, err)
	}
}

func TestCSVToParquet(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	pq, err := db.CSVToParquet(ctx, []byte("metric,variant,estimate\nrevenue,treatment,0.048\nconverted,treatment,-0.01\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pq) < 8 || string(pq[:4]) != "PAR1" || string(pq[len(pq)-4:]) != "PAR1" {
		t.Fatalf("not a Parquet file: %d bytes", len(pq))
	}
	path := t.TempDir() + "/r.parquet"
	if err := os.WriteFile(path, pq, 0o600); err != nil {
		t.Fatal(err)
	}
	var n int
	var sum float64
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*), sum(estimate) FROM read_parquet(?)`, path).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 2 || math.Abs(sum-0.038) > 1e-12 {
		t.Errorf("read back %d rows, Σ estimate %g; want 2 and 0.038", n, sum)
	}
}
