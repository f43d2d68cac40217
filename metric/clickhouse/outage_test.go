package clickhouse_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/chcluster"
	"github.com/liftlab/lift/metric/clickhouse"
	"github.com/liftlab/lift/store"
)

// TestForwarderShardOutage: one shard of two goes down and comes back on its
// own data. Meanwhile the store keeps committing; a sync fails after the shard
// that is up took its part of the batch, and the syncs after the shard is back
// send the rest: every exposure and event is in ClickHouse exactly once, and
// the cursors are at the last row. A new forwarder over the reopened file (a
// restart) then has nothing to send.
func TestForwarderShardOutage(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	if os.Getenv(chcluster.Env) != "" {
		t.Skip("stops and starts its own servers; " + chcluster.Env + " names running ones")
	}
	ctx := context.Background()
	c, err := chcluster.Start(ctx, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	path := t.TempDir() + "/lift.duckdb"
	db, err := store.Open(ctx, path, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	if _, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "x", Name: "x",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	next := 0
	commit := func(n int) {
		t.Helper()
		var xs []experiment.Exposure
		var vs []experiment.Event
		for range n {
			u := fmt.Sprintf("u%d", next)
			xs = append(xs, experiment.Exposure{Experiment: "x", Unit: u, Variant: []string{"control", "treatment"}[next%2], TS: base})
			vs = append(vs, experiment.Event{EventID: "e" + u, Unit: u, Type: "buy", TS: base.Add(time.Minute), Value: float64(next)})
			next++
		}
		if err := db.LogExposures(ctx, xs); err != nil {
			t.Fatalf("committing exposures with a shard down: %v", err)
		}
		if _, _, err := db.IngestEvents(ctx, vs); err != nil {
			t.Fatalf("committing events with a shard down: %v", err)
		}
	}
	eng, err := clickhouse.Open(ctx, clickhouse.Options{Shards: c.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	// check: ClickHouse holds units u0 … u(next−1) once each, their events'
	// values 0 … next−1 summing to next(next−1)/2 (an arithmetic series).
	check := func(when string) {
		t.Helper()
		for _, q := range []struct{ sql, want string }{
			{"SELECT count(), uniqExact(unit), uniqExact(seq) FROM " + clickhouse.Exposures, fmt.Sprintf("%d\t%d\t%d", next, next, next)},
			{"SELECT count(), uniqExact(event_id), sum(value) FROM " + clickhouse.Events, fmt.Sprintf("%d\t%d\t%d", next, next, next*(next-1)/2)},
		} {
			got, err := c.Query(ctx, c.Servers[0], q.sql)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(got) != q.want {
				t.Errorf("%s: %s = %q, want %q", when, q.sql, strings.TrimSpace(got), q.want)
			}
		}
	}
	opt := clickhouse.ForwardOptions{Events: true, Batch: 100}
	f := clickhouse.NewForwarder(db, eng, opt)
	commit(250)
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("before the outage")

	c.StopServer(1)
	commit(180)
	if _, _, err := f.Sync(ctx); err == nil {
		t.Fatal("a sync with a stopped shard succeeded")
	}
	// The shard that is up took its part of the first batch after the cursor.
	if got, err := c.Query(ctx, c.Servers[0], "SELECT count() FROM "+clickhouse.ExposuresLocal+" WHERE seq > 0"); err != nil || got == "0\n" {
		t.Fatalf("shard 0 during the outage: %q, %v", got, err)
	}
	commit(70)
	if err := c.StartServer(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The client's connections to the restarted shard are re-dialled: a sync
	// or two may still fail while that happens.
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, _, last = f.Sync(ctx); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatal(last)
	}
	check("after the outage")
	for _, name := range []string{clickhouse.ExposuresCursor, clickhouse.EventsCursor} {
		if cur, err := db.ForwardCursor(ctx, name); err != nil || cur == 0 {
			t.Errorf("cursor %s = %d, %v", name, cur, err)
		}
	}

	// Restart: the file reopened, a forwarder that knows nothing yet.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = store.Open(ctx, path, store.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if nx, ne, err := clickhouse.NewForwarder(db, eng, opt).Sync(ctx); err != nil || nx != 0 || ne != 0 {
		t.Errorf("after a restart: sent %d exposures and %d events, %v; want nothing", nx, ne, err)
	}
	check("after a restart")
}
