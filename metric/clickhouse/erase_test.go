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
// units per arm of before the erasure; its audit entry counts the rows
// deleted. Two more erased together, with a crash after ClickHouse has the
// rows and before the store recorded it, are redone from the start; and the
// first erased again is redone too: nothing is stored twice.
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
	// The erased units: exposed, with events, their ids (u-NNN) distinct
	// enough that no other value contains them.
	type victim struct {
		unit, ps string
		nx, ne   int
	}
	var vs []victim
	rows, err := db.SQL().QueryContext(ctx, `SELECT x.unit, count(DISTINCT x.seq), count(DISTINCT v.seq) FROM exposures x JOIN events v USING (unit)
GROUP BY x.unit HAVING count(DISTINCT v.seq) >= 2 ORDER BY x.unit LIMIT 3`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v victim
		if err := rows.Scan(&v.unit, &v.nx, &v.ne); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	rows.Close()
	if len(vs) != 3 {
		t.Fatalf("%d units with events, want 3", len(vs))
	}
	for _, v := range vs {
		got := unitRows(t, sharded, v.unit)
		if h := clickhouse.Shard(v.unit, 2); got[h] != [2]int{v.nx, v.ne} || got[1-h] != [2]int{} {
			t.Fatalf("before the erasure %s has rows %v, want %d exposures and %d events on shard %d", v.unit, got, v.nx, v.ne, h)
		}
		if len(mentions(t, sharded, v.unit)) == 0 {
			t.Fatalf("the scan finds no row of %s before the erasure", v.unit)
		}
	}
	erase := func(k int) {
		t.Helper()
		er, err := db.EraseUnit(ctx, "admin", vs[k].unit)
		if err != nil || er.ClickHouse != "pending" {
			t.Fatalf("erasure %+v, %v; want clickhouse pending", er, err)
		}
		vs[k].ps = er.Pseudonym
	}
	// check: the ids of vs[:k] nowhere, their pseudonyms' exposures once on
	// their shards, no pending erasure, the statistics the store's and the
	// counts unchanged.
	check := func(when string, k int) {
		t.Helper()
		for _, v := range vs[:k] {
			if m := mentions(t, sharded, v.unit); len(m) != 0 {
				t.Errorf("%s: %s still in %v", when, v.unit, m)
			}
			want := make([][2]int, 2)
			want[clickhouse.Shard(v.ps, 2)] = [2]int{v.nx, 0}
			if got := unitRows(t, sharded, v.ps); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: rows under %s's pseudonym per shard %v, want %v", when, v.unit, got, want)
			}
			d, err := db.ExportUnit(ctx, v.unit)
			if err != nil || d.Erasure == nil || d.Erasure.ClickHouse != "done" {
				t.Errorf("%s: export of %s: %+v, %v; want the ClickHouse erasure done", when, v.unit, d.Erasure, err)
			}
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
	// reports are the unit.erase.clickhouse entries of a pseudonym, newest first.
	reports := func(ps string) []clickhouse.ErasureReport {
		t.Helper()
		audit, err := db.Audit(ctx, "unit", ps, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []clickhouse.ErasureReport
		for _, a := range audit {
			if a.Action == "unit.erase.clickhouse" {
				var r clickhouse.ErasureReport
				if err := json.Unmarshal(a.After, &r); err != nil {
					t.Fatal(err)
				}
				out = append(out, r)
			}
		}
		return out
	}

	erase(0)
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the first erasure", 1)
	if r := reports(vs[0].ps); len(r) != 1 || r[0] != (clickhouse.ErasureReport{Shards: 2, ExposuresDeleted: uint64(vs[0].nx), EventsDeleted: uint64(vs[0].ne), ExposuresPseudonymized: vs[0].nx}) {
		t.Errorf("audit reports %+v, want 2 shards, %d exposures and %d events deleted, %d exposures pseudonymized", r, vs[0].nx, vs[0].ne, vs[0].nx)
	}

	// Two at once, and a crash after ClickHouse took the rows, before the
	// store recorded it.
	erase(1)
	erase(2)
	src.fail = true
	if _, _, err := f.Sync(ctx); err == nil {
		t.Fatal("a sync whose FinishErasure failed succeeded")
	}
	if pend, err := db.PendingErasures(ctx); err != nil || len(pend) != 2 {
		t.Fatalf("after the crash: pending %v, %v; want both erasures", pend, err)
	}
	src.fail = false
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the crash", 3)
	// The retry found the rows the crashed attempt had already deleted: none.
	for _, v := range vs[1:] {
		if r := reports(v.ps); len(r) != 1 || r[0] != (clickhouse.ErasureReport{Shards: 2, ExposuresPseudonymized: v.nx}) {
			t.Errorf("audit reports of %s %+v, want 2 shards, %d exposures pseudonymized, nothing left to delete", v.unit, r, v.nx)
		}
	}

	// Erased again: pending again, redone, nothing twice.
	counts := rowCounts(t)
	if er, err := db.EraseUnit(ctx, "admin", vs[0].unit); err != nil || er.ClickHouse != "pending" || !er.Already {
		t.Fatalf("second erasure %+v, %v", er, err)
	}
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("after erasing again", 3)
	if got := rowCounts(t); got != counts {
		t.Errorf("rows per shard %v after erasing again, want %v", got, counts)
	}
	if r := reports(vs[0].ps); len(r) != 2 || r[0] != (clickhouse.ErasureReport{Shards: 2, ExposuresPseudonymized: vs[0].nx}) {
		t.Errorf("audit reports after erasing again %+v, want a second with nothing deleted", r)
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

// TestForwarderEraseStuckMutation: a mutation the shard cannot apply (18.16
// retries it forever, and the erasure's delete waits behind it) does not stop
// the forwarding of new rows: Sync returns within EraseWait saying mutations
// are still running, the rows committed since are on the shards, and the
// erasure stays pending.
func TestForwarderEraseStuckMutation(t *testing.T) {
	if skip != "" {
		t.Skip(skip)
	}
	if os.Getenv(chcluster.Env) != "" {
		t.Skip("leaves a mutation that never finishes; " + chcluster.Env + " names shared servers")
	}
	ctx := context.Background()
	c, err := chcluster.Start(ctx, t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	db, err := store.Open(ctx, t.TempDir()+"/lift.duckdb", store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateExperiment(ctx, "t", &experiment.Experiment{Key: "e", Name: "e",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}}}); err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	xs := []experiment.Exposure{{Experiment: "e", Unit: "a", Variant: "control", TS: ts}, {Experiment: "e", Unit: "b", Variant: "treatment", TS: ts}}
	if err := db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	eng, err := clickhouse.Open(ctx, clickhouse.Options{Shards: c.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	f := clickhouse.NewForwarder(db, eng, clickhouse.ForwardOptions{Events: true, EraseWait: 2 * time.Second})
	if _, _, err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(ctx, c.Servers[0], "ALTER TABLE "+clickhouse.ExposuresLocal+" DELETE WHERE throwIf(unit = 'a') = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EraseUnit(ctx, "admin", "b"); err != nil {
		t.Fatal(err)
	}
	if err := db.LogExposures(ctx, []experiment.Exposure{{Experiment: "e", Unit: "c", Variant: "control", TS: ts}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = f.Sync(ctx)
	if err == nil || !strings.Contains(err.Error(), "mutations still running") {
		t.Fatalf("sync behind a stuck mutation: %v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("sync took %v, past EraseWait", d)
	}
	if got, err := c.Query(ctx, c.Servers[0], "SELECT count() FROM "+clickhouse.Exposures+" WHERE unit = 'c'"); err != nil || strings.TrimSpace(got) != "1" {
		t.Errorf("the exposure committed after the erasure: %q rows, %v; want it forwarded", got, err)
	}
	if pend, err := db.PendingErasures(ctx); err != nil || len(pend) != 1 {
		t.Errorf("pending %v, %v; want the erasure", pend, err)
	}
}
