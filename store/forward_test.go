package store

import (
	"context"
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
