package clickhouse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/internal/chcluster"
	"github.com/liftlab/lift/metric/clickhouse"
	"github.com/liftlab/lift/metric/duckdb"
	"github.com/liftlab/lift/store"
)

// mentions lists, on every server of c, each String column of every MergeTree
// table whose value contains s, with its row count.
func mentions(t *testing.T, c *chcluster.Cluster, s string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	cols := 0
	for i, srv := range c.Servers {
		v, err := c.Query(ctx, srv, `SELECT table, name FROM system.columns WHERE database = currentDatabase() AND type = 'String'
AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree') ORDER BY table, name`)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(v), "\n") {
			tb, col, ok := strings.Cut(line, "\t")
			if !ok {
				t.Fatalf("system.columns: %q", line)
			}
			cols++
			n, err := c.Query(ctx, srv, fmt.Sprintf("SELECT count() FROM %s WHERE position(%s, '%s') > 0", tb, col, s))
			if err != nil {
				t.Fatal(err)
			}
			if n = strings.TrimSpace(n); n != "0" {
				out = append(out, fmt.Sprintf("shard %d %s.%s (%s rows)", i, tb, col, n))
			}
		}
	}
	if cols < 6*len(c.Servers) { // experiment, unit, variant; event_id, unit, type
		t.Fatalf("only %d String columns over %d servers", cols, len(c.Servers))
	}
	return out
}

// unitRows are, per shard, the rows of exposures_local and events_local under unit.
func unitRows(t *testing.T, c *chcluster.Cluster, unit string) [][2]int {
	t.Helper()
	out := make([][2]int, len(c.Servers))
	for i, srv := range c.Servers {
		for j, tb := range []string{clickhouse.ExposuresLocal, clickhouse.EventsLocal} {
			v, err := c.Query(context.Background(), srv, "SELECT count() FROM "+tb+" WHERE unit = '"+unit+"'")
			if err != nil {
				t.Fatal(err)
			}
			if out[i][j], err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// failFinish is the store, except that FinishErasure fails while fail is set:
// a crash after ClickHouse has the rows and before the store heard of it.
type failFinish struct {
	*store.DB
	fail bool
}

func (s *failFinish) FinishErasure(ctx context.Context, ps string, at time.Time, r any) error {
	if s.fail {
		return errors.New("crashed before finishing")
	}
	return s.DB.FinishErasure(ctx, ps, at, r)
}

// TestForwarderErase: units' exposures and events forwarded to two shards;
// one is erased in the store. After the forwarder's next sync its id is in no
// String column of any shard's tables, its exposures are there exactly once
// under the pseudonym, on the pseudonym's shard, and the ClickHouse engine's
// statistics equal the DuckDB engine's over the store (to 1e-9) and keep the
// units per arm of before the erasure. A crash after the rows were rewritten
// and before the store recorded it, and a second erasure of the same id, are
// redone from the start, storing nothing twice.
func TestForwarderErase(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	ctx := context.Background()
	db, eng, p := forwardFixture(t)
	src := &failFinish{DB: db}
	f := clickhouse.NewForwarder(src, eng, clickhouse.ForwardOptions{Events: true, Batch: 200})
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := eng.Stats(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	// The erased unit: exposed, with events, its id distinct enough that no
	// other value contains it.
	var victim string
	var nx, ne int
	if err := db.SQL().QueryRowContext(ctx, `SELECT x.unit, count(DISTINCT x.seq), count(DISTINCT v.seq) FROM exposures x JOIN events v USING (unit)
GROUP BY x.unit HAVING count(DISTINCT v.seq) >= 2 ORDER BY x.unit LIMIT 1`).Scan(&victim, &nx, &ne); err != nil {
		t.Fatal(err)
	}
	rows := unitRows(t, sharded, victim)
	if h := clickhouse.Shard(victim, 2); rows[h] != [2]int{nx, ne} || rows[1-h] != [2]int{} {
		t.Fatalf("before the erasure %s has rows %v, want %d exposures and %d events on shard %d", victim, rows, nx, ne, h)
	}
	if len(mentions(t, sharded, victim)) == 0 {
		t.Fatalf("the scan finds no row of %s before the erasure", victim)
	}

	er, err := db.EraseUnit(ctx, "admin", victim)
	if err != nil {
		t.Fatal(err)
	}
	ps := er.Pseudonym
	if er.ClickHouse != "pending" {
		t.Fatalf("erasure %+v, want clickhouse pending", er)
	}
	// check: the id nowhere, the pseudonym's exposures once on its shard, no
	// pending erasure, the statistics the store's and the counts unchanged.
	check := func(when string) {
		t.Helper()
		if m := mentions(t, sharded, victim); len(m) != 0 {
			t.Errorf("%s: %s still in %v", when, victim, m)
		}
		want := make([][2]int, 2)
		want[clickhouse.Shard(ps, 2)] = [2]int{nx, 0}
		if got := unitRows(t, sharded, ps); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: rows under the pseudonym per shard %v, want %v", when, got, want)
		}
		if pend, err := db.PendingErasures(ctx); err != nil || len(pend) != 0 {
			t.Errorf("%s: pending erasures %v, %v", when, pend, err)
		}
		got, err := eng.Stats(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		duck, err := duckdb.New(db.SQL()).Stats(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		compareStats(t, got, duck, 1e-9)
		for arm, n := range before.Units {
			if got.Units[arm] != n {
				t.Errorf("%s: units[%s] = %d, before the erasure %d", when, arm, got.Units[arm], n)
			}
		}
	}

	// A crash after ClickHouse took the rows, before the store recorded it.
	src.fail = true
	if _, _, err := f.Sync(ctx); err == nil {
		t.Fatal("a sync whose FinishErasure failed succeeded")
	}
	if pend, err := db.PendingErasures(ctx); err != nil || len(pend) != 1 {
		t.Fatalf("after the crash: pending %v, %v; want the erasure", pend, err)
	}
	src.fail = false
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the erasure")
	d, err := db.ExportUnit(ctx, victim)
	if err != nil || d.Erasure == nil || d.Erasure.ClickHouse != "done" {
		t.Errorf("export: %+v, %v; want the ClickHouse erasure done", d.Erasure, err)
	}
	audit, err := db.Audit(ctx, "unit", ps, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rep *clickhouse.ErasureReport
	for _, a := range audit {
		if a.Action == "unit.erase.clickhouse" {
			if rep != nil {
				t.Errorf("two unit.erase.clickhouse entries")
			}
			rep = new(clickhouse.ErasureReport)
			if err := json.Unmarshal(a.After, rep); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The retry found the rows the crashed attempt had already deleted: none.
	if rep == nil || *rep != (clickhouse.ErasureReport{Shards: 2, ExposuresPseudonymized: nx}) {
		t.Errorf("audit report %+v, want 2 shards, %d exposures pseudonymized, nothing left to delete", rep, nx)
	}

	// Erased again: pending again, redone, nothing twice.
	counts := rowCounts(t)
	if er, err := db.EraseUnit(ctx, "admin", victim); err != nil || er.ClickHouse != "pending" || !er.Already {
		t.Fatalf("second erasure %+v, %v", er, err)
	}
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("after erasing again")
	if got := rowCounts(t); got != counts {
		t.Errorf("rows per shard %v after erasing again, want %v", got, counts)
	}
}

// TestForwarderEraseShardOutage: the erased unit's shard and its pseudonym's
// are different servers; with the pseudonym's down, the erasure fails and
// stays pending (the shard that is up has deleted the id's rows), and the
// first sync after the shard is back finishes it: the id in no row, the
// pseudonym's exposure once, every other row as before.
func TestForwarderEraseShardOutage(t *testing.T) {
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
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "x", Name: "x",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var xs []experiment.Exposure
	var vs []experiment.Event
	victim := ""
	for i := range 200 {
		u := fmt.Sprintf("unit-%03d", i)
		xs = append(xs, experiment.Exposure{Experiment: "x", Unit: u, Variant: []string{"control", "treatment"}[i%2], TS: base})
		vs = append(vs, experiment.Event{EventID: "ev-" + u, Unit: u, Type: "buy", TS: base.Add(time.Minute), Value: float64(i)})
		if victim == "" && clickhouse.Shard(u, 2) == 0 {
			if ps, err := db.Pseudonym(ctx, u); err != nil {
				t.Fatal(err)
			} else if clickhouse.Shard(ps, 2) == 1 {
				victim = u
			}
		}
	}
	if victim == "" {
		t.Fatal("no unit on shard 0 whose pseudonym is on shard 1")
	}
	if err := db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, vs); err != nil {
		t.Fatal(err)
	}
	eng, err := clickhouse.Open(ctx, clickhouse.Options{Shards: c.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	f := clickhouse.NewForwarder(db, eng, clickhouse.ForwardOptions{Events: true})
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	er, err := db.EraseUnit(ctx, "admin", victim)
	if err != nil {
		t.Fatal(err)
	}

	c.StopServer(1)
	if _, _, err := f.Sync(ctx); err == nil {
		t.Fatal("a sync with the pseudonym's shard down succeeded")
	}
	if pend, err := db.PendingErasures(ctx); err != nil || len(pend) != 1 {
		t.Fatalf("pending %v, %v; want the erasure", pend, err)
	}
	for _, tb := range []string{clickhouse.ExposuresLocal, clickhouse.EventsLocal} {
		if v, err := c.Query(ctx, c.Servers[0], "SELECT count() FROM "+tb+" WHERE unit = '"+victim+"'"); err != nil || strings.TrimSpace(v) != "0" {
			t.Errorf("shard 0 during the outage: %s holds %q rows of the unit, %v; want 0", tb, v, err)
		}
	}
	if err := c.StartServer(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, _, last = f.Sync(ctx); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatal(last)
	}
	if m := mentions(t, c, victim); len(m) != 0 {
		t.Errorf("%s still in %v", victim, m)
	}
	if got := unitRows(t, c, er.Pseudonym); got[0] != [2]int{} || got[1] != [2]int{1, 0} {
		t.Errorf("rows under the pseudonym per shard %v, want one exposure on shard 1", got)
	}
	// Every other unit as forwarded: 199 exposures and events, values 0 … 199
	// less the victim's (an arithmetic series).
	var vi int
	fmt.Sscanf(victim, "unit-%d", &vi)
	for _, q := range []struct{ sql, want string }{
		{"SELECT count(), uniqExact(unit), uniqExact(seq) FROM " + clickhouse.Exposures, "200\t200\t200"},
		{"SELECT count(), uniqExact(event_id), sum(value) FROM " + clickhouse.Events, fmt.Sprintf("199\t199\t%d", 199*200/2-vi)},
	} {
		if got, err := c.Query(ctx, c.Servers[0], q.sql); err != nil || strings.TrimSpace(got) != q.want {
			t.Errorf("%s = %q, %v; want %q", q.sql, strings.TrimSpace(got), err, q.want)
		}
	}
	if pend, err := db.PendingErasures(ctx); err != nil || len(pend) != 0 {
		t.Errorf("pending after the outage %v, %v", pend, err)
	}
}
