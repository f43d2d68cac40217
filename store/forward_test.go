package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// TestRowNumbers: every exposure row (by each of the writer's append paths)
// and every event row (by IngestEvents and by a file load, direct and staged)
// gets a distinct number; the watermarks reach the highest once nothing is in
// flight (an event load takes a block of numbers, so its watermark may lie
// above its last row); ExposuresAfter and EventsAfter page through them in order; and a
// reopened file goes on numbering above them, also after the migration
// numbered rows that were there before it.
func TestRowNumbers(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t, nil)
	if _, err := db.CreateExperiment(ctx, "t", abExperiment("num")); err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	want := 0
	for _, mode := range []appendMode{appendCoded, appendCSV, appendRows, appendValues} {
		db.w.mode = mode
		var xs []experiment.Exposure
		for i := range 70 {
			xs = append(xs, experiment.Exposure{Experiment: "num", Unit: fmt.Sprintf("m%d-u%d", mode, i), Variant: "control", TS: ts})
		}
		if err := db.LogExposures(ctx, xs); err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		want += len(xs)
	}
	db.w.mode = appendCoded
	var evs []experiment.Event
	for i := range 50 {
		evs = append(evs, experiment.Event{EventID: fmt.Sprintf("e%d", i), Unit: fmt.Sprintf("u%d", i), Type: "purchase", TS: ts, Value: 1})
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	csv := "event_id,unit,type,ts,value\n"
	for i := range 30 {
		csv += fmt.Sprintf("f%d,u%d,visit,%s,0\n", i, i, ts.Format(time.RFC3339Nano))
	}
	file := filepath.Join(t.TempDir(), "ev.csv")
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestFile(ctx, file, CSV, nil); err != nil {
		t.Fatal(err)
	}
	check := func(db *DB, nx, ne int) {
		t.Helper()
		for _, c := range []struct {
			name  string
			mark  int64
			after func(after, upto int64, limit int) ([]int64, error)
			want  int
		}{
			{"exposures", db.ExposureWatermark(), func(a, u int64, l int) ([]int64, error) {
				s, _, err := db.ExposuresAfter(ctx, a, u, l)
				return s, err
			}, nx},
			{"events", db.EventWatermark(), func(a, u int64, l int) ([]int64, error) {
				s, _, err := db.EventsAfter(ctx, a, u, l)
				return s, err
			}, ne},
		} {
			var all []int64
			for cur := int64(0); ; {
				page, err := c.after(cur, c.mark, 17)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				all = append(all, page...)
				cur = page[len(page)-1]
			}
			if len(all) != c.want {
				t.Fatalf("%s: %d rows numbered up to the watermark %d, want %d", c.name, len(all), c.mark, c.want)
			}
			for i := 1; i < len(all); i++ {
				if all[i] <= all[i-1] {
					t.Fatalf("%s: numbers not increasing: %d after %d", c.name, all[i], all[i-1])
				}
			}
			if all[0] < 1 || all[len(all)-1] > c.mark {
				t.Errorf("%s: numbers %d…%d, watermark %d", c.name, all[0], all[len(all)-1], c.mark)
			}
		}
	}
	check(db, want, 80)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(ctx, path, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.LogExposures(ctx, []experiment.Exposure{{Experiment: "num", Unit: "late", Variant: "control", TS: ts}}); err != nil {
		t.Fatal(err)
	}
	check(db2, want+1, 80)
	if err := db2.SetForwardCursor(ctx, "clickhouse", 42); err != nil {
		t.Fatal(err)
	}
	if err := db2.SetForwardCursor(ctx, "clickhouse", 43); err != nil {
		t.Fatal(err)
	}
	if c, err := db2.ForwardCursor(ctx, "clickhouse"); err != nil || c != 43 {
		t.Errorf("cursor %d, %v; want 43", c, err)
	}
	if c, err := db2.ForwardCursor(ctx, "other"); err != nil || c != 0 {
		t.Errorf("cursor of a new target %d, %v; want 0", c, err)
	}
}

// TestWatermarkInFlight: a range handed out and not yet done holds the
// watermark below it, whatever ranges after it have ended.
func TestWatermarkInFlight(t *testing.T) {
	s := newSeqs(10)
	a := s.reserve(5) // 11…15
	b := s.reserve(3) // 16…18
	s.done(b)
	if w := s.watermark(); w != 10 {
		t.Errorf("watermark %d with 11…15 in flight, want 10", w)
	}
	s.done(a)
	if w := s.watermark(); w != 18 {
		t.Errorf("watermark %d with nothing in flight, want 18", w)
	}
}

// textMentions lists the table.column of every text column of the file's
// main schema whose value contains s, with how many rows.
func textMentions(t *testing.T, db *sql.DB, s string) []string {
	t.Helper()
	cols, err := db.Query(`SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' AND data_type IN ('VARCHAR', 'JSON') ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	var checks [][2]string
	for cols.Next() {
		var tb, col string
		if err := cols.Scan(&tb, &col); err != nil {
			t.Fatal(err)
		}
		checks = append(checks, [2]string{tb, col})
	}
	cols.Close()
	if len(checks) < 20 {
		t.Fatalf("only %d text columns found: %v", len(checks), checks)
	}
	var out []string
	for _, tc := range checks {
		var n int
		q := `SELECT count(*) FROM "` + tc[0] + `" WHERE CAST("` + tc[1] + `" AS VARCHAR) LIKE ?`
		if err := db.QueryRow(q, "%"+s+"%").Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n != 0 {
			out = append(out, fmt.Sprintf("%s.%s (%d rows)", tc[0], tc[1], n))
		}
	}
	return out
}

// TestEraseForwardedUnit: an erasure records a pending ClickHouse erasure
// (the raw id in forward_erasures, its only copy) only once a forward cursor
// exists; the forwarder reads the unit's forwarded rows under the pseudonym
// (UnitExposures, up to its cursor); FinishErasure deletes the pending row with
// an audit entry, after which the id is in no text column of the file; a
// finish older than a repeated erasure leaves it pending; and the unit's export
// shows the state (pending, then done).
func TestEraseForwardedUnit(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, c)
	ctx := context.Background()
	if _, err := db.CreateExperiment(ctx, "t", abExperiment("fw")); err != nil {
		t.Fatal(err)
	}
	ts := c.Now().Add(-time.Hour)
	var xs []experiment.Exposure
	var evs []experiment.Event
	for _, u := range []string{"early-unit", "victim-unit", "other-unit"} {
		xs = append(xs, experiment.Exposure{Experiment: "fw", Unit: u, Variant: "control", TS: ts})
		evs = append(evs, experiment.Event{EventID: "ev-" + u, Unit: u, Type: "buy", TS: ts.Add(time.Minute), Value: 2})
	}
	if err := db.LogExposures(ctx, xs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}

	// Nothing forwarded yet: no pending erasure, the id kept nowhere.
	er, err := db.EraseUnit(ctx, "admin", "early-unit")
	if err != nil {
		t.Fatal(err)
	}
	if er.ClickHouse != "" || count(t, db, `SELECT count(*) FROM forward_erasures`) != 0 {
		t.Errorf("erasure before any forwarding: clickhouse %q, %d pending rows; want none", er.ClickHouse, count(t, db, `SELECT count(*) FROM forward_erasures`))
	}
	if m := textMentions(t, db.SQL(), "early-unit"); len(m) != 0 {
		t.Errorf("early-unit still in %v", m)
	}

	// A forwarder has taken every row (its cursor at the watermark).
	wm := db.ExposureWatermark()
	if err := db.SetForwardCursor(ctx, "clickhouse:exposures", wm); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	er, err = db.EraseUnit(ctx, "admin", "victim-unit")
	if err != nil {
		t.Fatal(err)
	}
	ps := er.Pseudonym
	pend, err := db.PendingErasures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if er.ClickHouse != "pending" || len(pend) != 1 || pend[0] != (experiment.PendingErasure{Pseudonym: ps, Unit: "victim-unit", RequestedAt: c.Now()}) {
		t.Fatalf("erasure %+v, pending %+v; want victim-unit pending at %v", er, pend, c.Now())
	}
	if m := textMentions(t, db.SQL(), "victim-unit"); len(m) != 1 || m[0] != "forward_erasures.unit (1 rows)" {
		t.Errorf("victim-unit is in %v; want only forward_erasures.unit", m)
	}
	seqs, got, err := db.UnitExposures(ctx, ps, wm)
	if err != nil || len(got) != 1 || got[0].Unit != ps || got[0].Variant != "control" || !got[0].TS.Equal(ts) || seqs[0] <= 0 || seqs[0] > wm {
		t.Errorf("UnitExposures(pseudonym) = %v %+v, %v; want its one exposure, seq ≤ %d", seqs, got, err, wm)
	}
	if seqs, got, err := db.UnitExposures(ctx, ps, seqs[0]-1); err != nil || len(got) != 0 {
		t.Errorf("UnitExposures below the row's seq = %v %+v, %v; want none", seqs, got, err)
	}
	if _, gotEv, err := db.UnitEvents(ctx, "other-unit", db.EventWatermark()); err != nil || len(gotEv) != 1 || gotEv[0].EventID != "ev-other-unit" {
		t.Errorf("UnitEvents(other-unit) = %+v, %v", gotEv, err)
	}
	d, err := db.ExportUnit(ctx, "victim-unit")
	if err != nil || d.Erasure == nil || *d.Erasure != (ErasureState{Pseudonym: ps, ErasedAt: c.Now(), ClickHouse: "pending"}) {
		t.Errorf("export of the erased unit: %+v, %v; want its erasure pending", d.Erasure, err)
	}

	// Erased again before the forwarder finished: a finish for the first
	// request leaves the second pending.
	first := c.Now()
	c.Advance(time.Minute)
	if _, err := db.EraseUnit(ctx, "admin", "victim-unit"); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishErasure(ctx, ps, first, map[string]int{"shards": 2}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM forward_erasures WHERE requested_at = ?`, c.Now()); n != 1 {
		t.Errorf("%d pending rows of the second erasure after finishing the first; want 1", n)
	}
	if err := db.FinishErasure(ctx, ps, c.Now(), map[string]int{"shards": 2}); err != nil {
		t.Fatal(err)
	}
	if m := textMentions(t, db.SQL(), "victim-unit"); len(m) != 0 {
		t.Errorf("victim-unit still in %v after FinishErasure", m)
	}
	audit, err := db.Audit(ctx, "unit", ps, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range audit {
		if a.Action == "unit.erase.clickhouse" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d unit.erase.clickhouse entries; want 1 (the finish that deleted the row)", n)
	}
	if d, err := db.ExportUnit(ctx, "victim-unit"); err != nil || d.Erasure == nil || d.Erasure.ClickHouse != "done" || !d.Erasure.ErasedAt.Equal(first) {
		t.Errorf("export after the finish: %+v, %v; want done, erased at %v", d.Erasure, err, first)
	}
	if d, err := db.ExportUnit(ctx, "other-unit"); err != nil || d.Erasure != nil {
		t.Errorf("export of a unit never erased: %+v, %v; want no erasure", d.Erasure, err)
	}
}
