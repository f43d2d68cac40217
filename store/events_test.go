package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/results"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ev(id, unit, typ string, ts time.Time, v float64) experiment.Event {
	return experiment.Event{EventID: id, Unit: unit, Type: typ, TS: ts, Value: v}
}

func TestIngestEvents(t *testing.T) {
	db, _ := openTest(t, nil)
	ctx := context.Background()
	batch := []experiment.Event{
		ev("e1", "u1", "purchase", t0, 10),
		ev("e2", "u2", "purchase", t0.Add(time.Hour), 5.5),
		ev("e3", "u1", "visit", t0, 0),
	}
	batch[0].Properties = json.RawMessage(`{"sku":"A1"}`)
	steps := []struct {
		name           string
		batch          []experiment.Event
		accepted, dups int
		stored         int
	}{
		{"new batch", batch, 3, 0, 3},
		{"resent batch adds nothing", batch, 0, 3, 3},
		{"duplicates inside a batch count once", []experiment.Event{ev("e4", "u3", "visit", t0, 1), ev("e4", "u3", "visit", t0, 1), ev("e1", "u1", "purchase", t0, 10)}, 1, 2, 4},
		{"empty batch", nil, 0, 0, 4},
	}
	for _, s := range steps {
		a, d, err := db.IngestEvents(ctx, s.batch)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if a != s.accepted || d != s.dups {
			t.Errorf("%s: accepted, duplicates = %d, %d; want %d, %d", s.name, a, d, s.accepted, s.dups)
		}
		if n := count(t, db, `SELECT count(*) FROM events`); n != s.stored {
			t.Errorf("%s: %d events stored, want %d", s.name, n, s.stored)
		}
	}
	var sku string
	if err := db.SQL().QueryRow(`SELECT properties->>'sku' FROM events WHERE event_id = 'e1'`).Scan(&sku); err != nil || sku != "A1" {
		t.Errorf("properties of e1: %q, %v; want A1", sku, err)
	}
}

func TestIngestEventsInvalid(t *testing.T) {
	db, _ := openTest(t, nil)
	good := ev("ok", "u", "visit", t0, 1)
	cases := []struct {
		name  string
		bad   experiment.Event
		field string
	}{
		{"no event_id", ev("", "u", "visit", t0, 1), "events[1].event_id"},
		{"no unit", ev("x", "", "visit", t0, 1), "events[1].unit"},
		{"no type", ev("x", "u", "", t0, 1), "events[1].type"},
		{"zero ts", ev("x", "u", "visit", time.Time{}, 1), "events[1].ts"},
		{"NaN value", ev("x", "u", "visit", t0, math.NaN()), "events[1].value"},
		{"infinite value", ev("x", "u", "visit", t0, math.Inf(1)), "events[1].value"},
		{"properties not an object", experiment.Event{EventID: "x", Unit: "u", Type: "v", TS: t0, Properties: json.RawMessage(`[1]`)}, "events[1].properties"},
	}
	for _, c := range cases {
		_, _, err := db.IngestEvents(context.Background(), []experiment.Event{good, c.bad})
		var le *experiment.Error
		if err == nil || experiment.KindOf(err) != experiment.Invalid || !errors.As(err, &le) || le.Field != c.field {
			t.Errorf("%s: err = %v, want Invalid naming %s", c.name, err, c.field)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 0 {
		t.Errorf("%d events stored after rejected batches, want 0", n)
	}
}

// TestIngestEventsConcurrent sends overlapping batches from several goroutines:
// every event_id must be stored exactly once, and the answers must add up.
func TestIngestEventsConcurrent(t *testing.T) {
	db, _ := openTest(t, nil)
	const workers, ids = 4, 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	acc, dup := 0, 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < 3; b++ {
				var batch []experiment.Event
				for i := range ids / 3 {
					id := (b*ids/3 + i + w*7) % ids
					batch = append(batch, ev(fmt.Sprintf("e%d", id), "u", "visit", t0, 1))
				}
				a, d, err := db.IngestEvents(context.Background(), batch)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acc, dup = acc+a, dup+d
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n := count(t, db, `SELECT count(DISTINCT event_id) FROM events`); n != ids {
		t.Errorf("%d distinct event ids, want %d", n, ids)
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != ids {
		t.Errorf("%d events stored, want %d (each id once)", n, ids)
	}
	if acc != ids || acc+dup != workers*ids {
		t.Errorf("accepted %d, duplicates %d; want %d and %d", acc, dup, ids, workers*ids-ids)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIngestFile(t *testing.T) {
	ctx := context.Background()
	const header = "event_id,unit,type,ts,value\n"
	cases := []struct {
		name, file, content string
		accepted, dups      int
		errHas              []string // when set, the load must fail with these in the message
	}{
		{name: "csv", file: "a.csv", content: header + "a1,u1,purchase,2026-03-01T10:00:00Z,12.5\na2,u2,visit,2026-03-01 11:00:00,\na1,u1,purchase,2026-03-01T10:00:00Z,12.5\n", accepted: 2, dups: 1},
		{name: "csv with properties and no value", file: "b.csv", content: "event_id,unit,type,ts,properties\nb1,u1,visit,2026-03-01T10:00:00Z,\"{\"\"page\"\":\"\"home\"\"}\"\n", accepted: 1},
		{name: "csv bad timestamp", file: "c.csv", content: header + "c1,u1,visit,2026-03-01T10:00:00Z,1\nc2,u1,visit,yesterday,1\n", errHas: []string{"line 3", "ts", "not a timestamp"}},
		{name: "csv non-numeric value", file: "d.csv", content: header + "d1,u1,visit,2026-03-01T10:00:00Z,1\nd2,u1,visit,2026-03-01T10:00:00Z,1\nd3,u1,visit,2026-03-01T10:00:00Z,lots\n", errHas: []string{"line 4", "value", "not a number"}},
		{name: "csv missing unit", file: "e.csv", content: header + "e1,u1,visit,2026-03-01T10:00:00Z,1\ne2,,visit,2026-03-01T10:00:00Z,1\n", errHas: []string{"line 3: unit is missing"}},
		{name: "csv missing column", file: "f.csv", content: "event_id,unit,ts\nf1,u1,2026-03-01T10:00:00Z\n", errHas: []string{`no "type" column`}},
		{name: "csv unknown column", file: "g.csv", content: "event_id,unit,type,ts,amount\ng1,u1,visit,2026-03-01T10:00:00Z,1\n", errHas: []string{`unknown column "amount"`}},
		{name: "ndjson", file: "h.ndjson", content: `{"event_id":"h1","unit":"u1","type":"visit","ts":"2026-03-01T10:00:00Z","value":2,"properties":{"a":1}}` + "\n\n" + `{"event_id":"h2","unit":"u2","type":"visit","ts":"2026-03-01T10:00:00Z"}` + "\n", accepted: 2},
		{name: "ndjson bad lines", file: "i.ndjson", content: `{"event_id":"i1","unit":"u1","type":"visit","ts":"2026-03-01T10:00:00Z"}` + "\n" + `{"event_id":"i2","unit":"u1","type":"visit","ts":"soon"}` + "\n" + `{"event_id":"i3","type":"visit","ts":"2026-03-01T10:00:00Z"}` + "\n" + `{"event_id":"i4","unit":"u1","type":"visit","ts":"2026-03-01T10:00:00Z","value":"12"}` + "\n",
			errHas: []string{"line 2: ts is not an RFC 3339 timestamp", "line 3: unit is required", "line 4: value is not a number"}},
		// Issue 15, items 1 and 4: identifiers with control characters and
		// timestamps outside the bounds are refused where files enter too.
		{name: "csv NUL in unit", file: "j.csv", content: header + "j1,u1,visit,2026-03-01T10:00:00Z,1\nj2,victim\x00x,visit,2026-03-01T10:00:00Z,1\n", errHas: []string{"line 3: unit must not contain control characters (U+0000 at offset 6)"}},
		{name: "csv control character in event_id", file: "k.csv", content: header + "k1,u1,visit,2026-03-01T10:00:00Z,1\nk2\x1b,u1,visit,2026-03-01T10:00:00Z,1\n", errHas: []string{"line 3: event_id must not contain control characters (U+001B at offset 2)"}},
		{name: "csv line break in type", file: "l.csv", content: header + "l1,u1,\"vi\nsit\",2026-03-01T10:00:00Z,1\n", errHas: []string{"line 2: type must not contain control characters (U+000A at offset 2)"}},
		{name: "csv year 9999", file: "m.csv", content: header + "m1,u1,visit,2026-03-01T10:00:00Z,1\nm2,u1,visit,9999-01-01T00:00:00Z,1\n", errHas: []string{"line 3: ts must be between 1900-01-01T00:00:00Z and", "9999-01-01"}},
		{name: "csv 1899", file: "n.csv", content: header + "n1,u1,visit,1899-12-31T00:00:00Z,1\n", errHas: []string{"line 2: ts must be between 1900-01-01T00:00:00Z and", "1899-12-31"}},
		{name: "ndjson NUL in unit", file: "o.ndjson", content: `{"event_id":"o1","unit":"victim\u0000x","type":"visit","ts":"2026-03-01T10:00:00Z"}` + "\n", errHas: []string{"line 1: unit must not contain control characters (U+0000 at offset 6)"}},
		{name: "ndjson year 9999", file: "p.ndjson", content: `{"event_id":"p1","unit":"u1","type":"visit","ts":"9999-01-01T00:00:00Z"}` + "\n", errHas: []string{"line 1: ts must not be after"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, _ := openTest(t, nil)
			p := writeFile(t, c.file, c.content)
			var last [2]int64
			a, d, err := db.IngestFile(ctx, p, "", func(done, total int64) { last = [2]int64{done, total} })
			if c.errHas != nil {
				if err == nil || experiment.KindOf(err) != experiment.Invalid {
					t.Fatalf("err = %v, want Invalid", err)
				}
				for _, s := range c.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if n := count(t, db, `SELECT count(*) FROM events`); n != 0 {
					t.Errorf("%d events stored after a failed load, want 0", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a != c.accepted || d != c.dups {
				t.Errorf("accepted, duplicates = %d, %d; want %d, %d", a, d, c.accepted, c.dups)
			}
			if last[0] != last[1] || last[1] != int64(len(c.content)) {
				t.Errorf("last progress %v, want done = total = %d", last, len(c.content))
			}
			// A second load of the same file adds nothing.
			if a, d, err := db.IngestFile(ctx, p, "", nil); err != nil || a != 0 || d != c.accepted+c.dups {
				t.Errorf("reload: %d, %d, %v; want 0, %d", a, d, err, c.accepted+c.dups)
			}
		})
	}
}

func TestIngestParquet(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, nil)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.parquet"), filepath.Join(dir, "bad.parquet")
	if _, err := db.SQL().Exec(`COPY (SELECT 'p' || i AS event_id, 'u' || (i % 7) AS unit, 'visit' AS type,
		TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_minutes(i) AS ts, i * 0.5 AS value FROM range(100) t(i)) TO ` + sqlString(good) + ` (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`COPY (SELECT 'q' || i AS event_id, 'u' AS unit, 'visit' AS type,
		CASE WHEN i = 4 THEN 'never' ELSE '2026-03-01T00:00:00Z' END AS ts FROM range(6) t(i)) TO ` + sqlString(bad) + ` (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	a, d, err := db.IngestFile(ctx, good, Parquet, nil)
	if err != nil || a != 100 || d != 0 {
		t.Fatalf("good parquet: %d, %d, %v; want 100, 0", a, d, err)
	}
	var sum float64
	db.SQL().QueryRow(`SELECT sum(value) FROM events`).Scan(&sum)
	if want := 0.5 * 99 * 100 / 2; sum != want { // 0.5·Σ_{i<100} i
		t.Errorf("sum of values %g, want %g", sum, want)
	}
	if a, d, err := db.IngestFile(ctx, good, Parquet, nil); err != nil || a != 0 || d != 100 {
		t.Errorf("reloading the good parquet: %d, %d, %v; want 0, 100", a, d, err)
	}
	// A file that repeats an event_id takes the staged path, which keeps one.
	dup := filepath.Join(dir, "dup.parquet")
	if _, err := db.SQL().Exec(`COPY (SELECT 'r' || (i % 3) AS event_id, 'u' AS unit, 'visit' AS type,
		TIMESTAMPTZ '2026-03-01 00:00:00+00' AS ts FROM range(5) t(i)) TO ` + sqlString(dup) + ` (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	if a, d, err := db.IngestFile(ctx, dup, Parquet, nil); err != nil || a != 3 || d != 2 {
		t.Errorf("parquet with repeated ids: %d, %d, %v; want 3, 2", a, d, err)
	}
	_, _, err = db.IngestFile(ctx, bad, Parquet, nil)
	if err == nil || !strings.Contains(err.Error(), "row 5: ts is missing or not a timestamp") {
		t.Errorf("bad parquet: %v; want row 5 named", err)
	}
	// Issue 15, items 1 and 4: a NUL in a unit and a far-future timestamp.
	for _, c := range []struct{ name, sel, want string }{
		{"nul", `SELECT 's' || i AS event_id, CASE WHEN i = 2 THEN 'victim' || chr(0) || 'x' ELSE 'u' END AS unit, 'visit' AS type,
			TIMESTAMPTZ '2026-03-01 00:00:00+00' AS ts FROM range(4) t(i)`, "row 3: unit must not contain control characters (U+0000 at offset 6)"},
		{"future", `SELECT 't' || i AS event_id, 'u' AS unit, 'visit' AS type,
			CASE WHEN i = 1 THEN TIMESTAMPTZ '2099-01-01 00:00:00+00' ELSE TIMESTAMPTZ '2026-03-01 00:00:00+00' END AS ts FROM range(4) t(i)`, "row 2: ts must be between 1900-01-01T00:00:00Z and"},
	} {
		p := filepath.Join(dir, c.name+".parquet")
		if _, err := db.SQL().Exec(`COPY (` + c.sel + `) TO ` + sqlString(p) + ` (FORMAT parquet)`); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.IngestFile(ctx, p, Parquet, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s parquet: %v; want %q", c.name, err, c.want)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 103 {
		t.Errorf("%d events after the failed load, want 103", n)
	}
}

// TestIngestParquetFooter loads Parquet files whose data pages were changed
// after writing, so that the footer's column statistics (min, max) no longer
// describe the rows: DuckDB plans a query over the file with those statistics,
// and folded the direct load's timestamp bound to false (found by
// FuzzIngestParquet, testdata/fuzz/FuzzIngestParquet/ab88773ff61ca5f5). Each
// file must be refused as the staged path refuses it, naming the row, with
// nothing stored.
func TestIngestParquetFooter(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}
	opt := DefaultOptions()
	opt.Now = c.Now
	db, err := Open(ctx, filepath.Join(t.TempDir(), "lift.duckdb"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := t.TempDir()
	// ts is stored as microseconds since 1970 (INT64, little-endian).
	micros := func(s string) []byte {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.AppendUint64(nil, uint64(ts.UnixMicro()))
	}
	for _, c := range []struct {
		name, sel string
		from, to  []byte // the first occurrence of from, in the data page, becomes to
		want      string
	}{
		{"future ts", `SELECT 'f' || i AS event_id, 'u' AS unit, 'visit' AS type, TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_minutes(i) AS ts FROM range(3) t(i)`,
			micros("2026-03-01T00:01:00Z"), micros("2099-01-01T00:00:00Z"), "row 2: ts must be between 1900-01-01T00:00:00Z and 2026-03-02T00:05:00Z"},
		{"ancient ts", `SELECT 'a' || i AS event_id, 'u' AS unit, 'visit' AS type, TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_minutes(i) AS ts FROM range(3) t(i)`,
			micros("2026-03-01T00:02:00Z"), micros("1800-01-01T00:00:00Z"), "row 3: ts must be between 1900-01-01T00:00:00Z and"},
		{"nul in unit", `SELECT 'n' || i AS event_id, 'victim' || i AS unit, 'visit' AS type, TIMESTAMPTZ '2026-03-01 00:00:00+00' AS ts FROM range(3) t(i)`,
			[]byte("victim1"), []byte("victim\x00"), "row 2: unit must not contain control characters (U+0000 at offset 6)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".parquet")
			if _, err := db.SQL().Exec(`COPY (` + c.sel + `) TO ` + sqlString(p) + ` (FORMAT parquet, COMPRESSION uncompressed)`); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(b, c.from)
			if i < 0 {
				t.Fatalf("%x is not in the file", c.from)
			}
			copy(b[i:], c.to)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			before := count(t, db, `SELECT count(*) FROM events`)
			_, _, err = db.IngestFile(ctx, p, Parquet, nil)
			if err == nil || experiment.KindOf(err) != experiment.Invalid || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v (kind %v); want Invalid naming %q", err, experiment.KindOf(err), c.want)
			}
			if n := count(t, db, `SELECT count(*) FROM events`); n != before {
				t.Errorf("%d events stored from a refused file", n-before)
			}
		})
	}
}

// logBuffer collects a DB's log lines for a test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// take returns the lines logged since the last call.
func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	return s
}

// openLogged opens a fresh database whose debug log goes to the returned buffer.
func openLogged(t *testing.T) (*DB, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opt := DefaultOptions()
	opt.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "lift.duckdb"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, logs
}

// The log lines of ingestDirect: which path an event file took.
const (
	logDirect = "event file loaded directly"
	logStaged = "direct load gave up, staging it"
)

// TestIngestFileDirect checks which path IngestFile takes: a clean CSV or
// Parquet file goes straight into events (also when some of its events are
// already stored, and when a repeated event_id is among those), while a file
// with a bad row or a repeated new event_id falls back to the staged path,
// which names the bad lines, keeps the first row of a repeated id, and leaves
// the store unchanged on error.
func TestIngestFileDirect(t *testing.T) {
	ctx := context.Background()
	db, logs := openLogged(t)
	const header = "event_id,unit,type,ts,value\n"
	row := func(id string, v int) string { return fmt.Sprintf("%s,u1,visit,2026-03-01T10:00:00Z,%d\n", id, v) }
	// A few thousand rows, so that the direct check reads several vectors.
	var big strings.Builder
	big.WriteString(header)
	for i := range 5000 {
		big.WriteString(row(fmt.Sprintf("big%d", i), i))
	}
	steps := []struct {
		name, content  string
		path           string // the log line wanted
		accepted, dups int
		errHas         []string
		stored         int // events stored after the step
	}{
		{name: "clean csv, empty store", content: header + row("a1", 1) + row("a2", 2) + row("a3", 3), path: logDirect, accepted: 3, stored: 3},
		{name: "reload", content: header + row("a1", 1) + row("a2", 2) + row("a3", 3), path: logDirect, dups: 3, stored: 3},
		{name: "partly stored", content: header + row("a3", 3) + row("b1", 1) + row("a1", 1) + row("b2", 2), path: logDirect, accepted: 2, dups: 2, stored: 5},
		{name: "stored id repeated", content: header + row("a2", 2) + row("c1", 1) + row("a2", 2), path: logDirect, accepted: 1, dups: 2, stored: 6},
		{name: "large file", content: big.String(), path: logDirect, accepted: 5000, stored: 5006},
		{name: "new id repeated", content: header + row("d1", 10) + row("d2", 2) + row("d1", 11) + row("a1", 1), path: logStaged, accepted: 2, dups: 2, stored: 5008},
		{name: "missing unit", content: header + row("e1", 1) + "e2,,visit,2026-03-01T10:00:00Z,1\n", path: logStaged,
			errHas: []string{"line 3: unit is missing"}, stored: 5008},
		{name: "bad row already stored", content: header + row("e1", 1) + "a1,u1,,2026-03-01T10:00:00Z,1\n", path: logStaged,
			errHas: []string{"line 3: type is missing"}, stored: 5008},
		{name: "bad timestamp", content: header + row("e1", 1) + row("e2", 2) + "e3,u1,visit,tomorrow,1\n", path: logStaged,
			errHas: []string{"line 4", "ts", "not a timestamp"}, stored: 5008},
		{name: "value not finite", content: header + row("e1", 1) + "e2,u1,visit,2026-03-01T10:00:00Z,inf\n", path: logStaged,
			errHas: []string{"line 3: value is not a finite number"}, stored: 5008},
		{name: "properties not JSON", content: "event_id,unit,type,ts,properties\ne1,u1,visit,2026-03-01T10:00:00Z,{oops\n", path: logStaged,
			errHas: []string{"line 2: properties is not JSON"}, stored: 5008},
		{name: "bad last line of a large file", content: big.String() + "e9,u1,visit,2026-03-01T10:00:00Z,lots\n", path: logStaged,
			errHas: []string{"line 5002", "value", "not a number"}, stored: 5008},
	}
	for i, s := range steps {
		p := writeFile(t, fmt.Sprintf("f%d.csv", i), s.content)
		a, d, err := db.IngestFile(ctx, p, "", nil)
		if got := logs.take(); !strings.Contains(got, s.path) {
			t.Errorf("%s: log %q, want %q", s.name, got, s.path)
		}
		if s.errHas != nil {
			if err == nil || experiment.KindOf(err) != experiment.Invalid {
				t.Errorf("%s: err = %v, want Invalid", s.name, err)
			}
			for _, want := range s.errHas {
				if err != nil && !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %q does not contain %q", s.name, err, want)
				}
			}
		} else if err != nil || a != s.accepted || d != s.dups {
			t.Errorf("%s: %d, %d, %v; want %d, %d", s.name, a, d, err, s.accepted, s.dups)
		}
		if n := count(t, db, `SELECT count(*) FROM events`); n != s.stored {
			t.Errorf("%s: %d events stored, want %d", s.name, n, s.stored)
		}
	}
	// The staged path kept the first row of the repeated d1.
	if n := count(t, db, `SELECT value FROM events WHERE event_id = 'd1'`); n != 10 {
		t.Errorf("d1 has value %d, want 10 (the first row)", n)
	}
	if n := count(t, db, `SELECT count(DISTINCT event_id) FROM events`); n != 5008 {
		t.Errorf("%d distinct event ids, want 5008", n)
	}

	// Parquet takes the same paths.
	dir := t.TempDir()
	for _, c := range []struct {
		name, sel, path string
	}{
		{"clean parquet", `SELECT 'p' || i AS event_id, 'u' AS unit, 'visit' AS type, TIMESTAMPTZ '2026-03-01 00:00:00+00' AS ts FROM range(10) t(i)`, logDirect},
		{"parquet with a repeated id", `SELECT 'q' || (i % 3) AS event_id, 'u' AS unit, 'visit' AS type, TIMESTAMPTZ '2026-03-01 00:00:00+00' AS ts FROM range(5) t(i)`, logStaged},
		{"parquet with a bad row", `SELECT 'r' || i AS event_id, CASE WHEN i = 2 THEN '' ELSE 'u' END AS unit, 'visit' AS type, TIMESTAMPTZ '2026-03-01 00:00:00+00' AS ts FROM range(5) t(i)`, logStaged},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".parquet")
		if _, err := db.SQL().Exec(`COPY (` + c.sel + `) TO ` + sqlString(p) + ` (FORMAT parquet)`); err != nil {
			t.Fatal(err)
		}
		_, _, err := db.IngestFile(ctx, p, "", nil)
		if got := logs.take(); !strings.Contains(got, c.path) {
			t.Errorf("%s: log %q, want %q", c.name, got, c.path)
		}
		if c.name == "parquet with a bad row" {
			if err == nil || !strings.Contains(err.Error(), "row 3: unit is missing") {
				t.Errorf("%s: %v, want row 3 named", c.name, err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestIngestFileConcurrent loads overlapping CSV files and batches at once:
// every event_id must be stored exactly once, and the answers must add up.
func TestIngestFileConcurrent(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, nil)
	const ids = 3000
	var files []string
	for f := range 3 {
		var b strings.Builder
		b.WriteString("event_id,unit,type,ts\n")
		for i := range ids / 2 {
			fmt.Fprintf(&b, "e%d,u,visit,2026-03-01T10:00:00Z\n", (f*ids/4+i)%ids)
		}
		files = append(files, writeFile(t, fmt.Sprintf("c%d.csv", f), b.String()))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acc, total := 0, 0
	add := func(a, d int) {
		mu.Lock()
		acc, total = acc+a, total+a+d
		mu.Unlock()
	}
	for _, p := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, d, err := db.IngestFile(ctx, p, "", nil)
			if err != nil {
				t.Error(err)
				return
			}
			add(a, d)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range ids / 500 {
			var batch []experiment.Event
			for i := range 500 {
				batch = append(batch, ev(fmt.Sprintf("e%d", b*500+i), "u", "visit", t0, 0))
			}
			a, d, err := db.IngestEvents(ctx, batch)
			if err != nil {
				t.Error(err)
				return
			}
			add(a, d)
		}
	}()
	wg.Wait()
	if n := count(t, db, `SELECT count(*) FROM events`); n != ids || acc != ids || total != 3*ids/2+ids {
		t.Errorf("%d events stored, %d accepted of %d; want %d, %d of %d", n, acc, total, ids, ids, 3*ids/2+ids)
	}
}

// TestIngestCrash kills (SIGKILL) a child process that ingests batches in a loop
// and writes each acknowledged batch to a side file after IngestEvents returns.
// After reopening, every acknowledged batch must be stored whole, and no batch may
// be stored in part.
func TestIngestCrash(t *testing.T) {
	if os.Getenv("LIFT_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	if testing.Short() {
		t.Skip("crash test (SIGKILL mid-load); skipped with -short")
	}
	dir := t.TempDir()
	dbPath, ackPath := filepath.Join(dir, "crash.duckdb"), filepath.Join(dir, "acks")
	cmd := exec.Command(os.Args[0], "-test.run=^TestIngestCrash$")
	cmd.Env = append(os.Environ(), "LIFT_CRASH_CHILD=1", "LIFT_CRASH_DB="+dbPath, "LIFT_CRASH_ACKS="+ackPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for a few acknowledged batches, then kill mid-flight.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(ackPath); strings.Count(string(b), "\n") >= 5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(37 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	f, err := os.Open(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[int]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		b, err := strconv.Atoi(sc.Text())
		if err == nil {
			acked[b] = true
		}
	}
	f.Close()
	if len(acked) < 5 {
		t.Fatalf("only %d batches acknowledged before the kill", len(acked))
	}
	db, err := Open(context.Background(), dbPath, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.SQL().Query(`SELECT split_part(event_id, '-', 1)::INTEGER AS b, count(*) FROM events GROUP BY b`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int]int{}
	for rows.Next() {
		var b, n int
		rows.Scan(&b, &n)
		stored[b] = n
	}
	rows.Close()
	for b := range acked {
		if stored[b] != crashBatch {
			t.Errorf("acknowledged batch %d has %d of %d events", b, stored[b], crashBatch)
		}
	}
	for b, n := range stored {
		if n != crashBatch {
			t.Errorf("batch %d stored in part: %d of %d events", b, n, crashBatch)
		}
	}
	t.Logf("%d batches acknowledged, %d stored", len(acked), len(stored))
}

const crashBatch = 2000

func crashChild() {
	ctx := context.Background()
	db, err := Open(ctx, os.Getenv("LIFT_CRASH_DB"), DefaultOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	acks, err := os.OpenFile(os.Getenv("LIFT_CRASH_ACKS"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		os.Exit(1)
	}
	for b := 0; ; b++ {
		batch := make([]experiment.Event, crashBatch)
		for i := range batch {
			batch[i] = ev(fmt.Sprintf("%d-%d", b, i), fmt.Sprintf("u%d", i%50), "visit", t0.Add(time.Duration(i)*time.Second), float64(i))
		}
		if _, _, err := db.IngestEvents(ctx, batch); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(acks, "%d\n", b)
		acks.Sync()
	}
}

// TestSynthetic: the generator's data carry the effect it was given (the CUPED
// interval of revenue's relative effect covers it, and orders, left untouched,
// cover 0), and the files it writes load through IngestFile to the same events.
func TestSynthetic(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, nil)
	o := SynthOptions{Experiment: "gen", Units: 3000, Events: 40_000, Effect: 0.1, Seed: 7}
	e, err := db.GenerateSynthetic(ctx, "test", o)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 40_000 {
		t.Fatalf("%d events, want 40000", n)
	}
	r, err := svc(db).ExperimentResults(ctx, e.Key, results.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range r.Metrics {
		if m.Error != "" {
			t.Fatalf("%s: %s", m.Name, m.Error)
		}
		rel := m.Comparisons[0].Relative
		truth := map[string]float64{"revenue": 0.1, "orders": 0, "converted": 0}[m.Name]
		if !(rel.CILow < truth && truth < rel.CIHigh) {
			t.Errorf("%s: relative effect interval [%g, %g] misses the true %g", m.Name, rel.CILow, rel.CIHigh, truth)
		}
		if m.Unadjusted == nil || !(m.Comparisons[0].Absolute.SE < m.Unadjusted[0].Absolute.SE) {
			t.Errorf("%s: CUPED did not narrow the interval", m.Name)
		}
	}

	dir := t.TempDir()
	_, evPath, err := db.WriteSynthetic(ctx, o, dir, Parquet)
	if err != nil {
		t.Fatal(err)
	}
	db2, _ := openTest(t, nil)
	if a, d, err := db2.IngestFile(ctx, evPath, "", nil); err != nil || a != 40_000 || d != 0 {
		t.Fatalf("ingesting the generated file: %d, %d, %v", a, d, err)
	}
	// An exact (integer) checksum of every field but properties.
	const sum = `SELECT sum((round(value * 100)::BIGINT + epoch_us(ts) % 1000003 + hash(unit, type) % 1000) * (hash(event_id) % 1000)::BIGINT)::VARCHAR FROM events`
	var s1, s2 string
	db.SQL().QueryRow(sum).Scan(&s1)
	db2.SQL().QueryRow(sum).Scan(&s2)
	if s1 != s2 || s1 == "" {
		t.Errorf("generated file differs from generated rows: checksum %s vs %s", s2, s1)
	}
}

// benchSize reads a benchmark size from the environment, with a default.
func benchSize(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkIngestFile loads a generated event file (LIFT_BENCH_EVENTS rows,
// default 1,000,000; LIFT_BENCH_FORMAT csv or parquet, default csv) into a fresh
// database with IngestFile, and in the same iteration the same file with a bare
// DuckDB COPY into an identical events table, and reports both rates and their
// ratio (lift time / COPY time).
func BenchmarkIngestFile(b *testing.B) {
	ctx := context.Background()
	n := benchSize("LIFT_BENCH_EVENTS", 1_000_000)
	format := FileFormat(os.Getenv("LIFT_BENCH_FORMAT"))
	if format == "" {
		format = CSV
	}
	dir := b.TempDir()
	mem, err := Open(ctx, "", DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	_, file, err := mem.WriteSynthetic(ctx, SynthOptions{Units: max(n/50, 2), Events: n}, dir, format)
	mem.Close()
	if err != nil {
		b.Fatal(err)
	}
	copySQL := `COPY events (event_id, unit, type, ts, value) FROM ` + sqlString(file) + ` (FORMAT csv, HEADER)`
	if format == Parquet {
		copySQL = `COPY events (event_id, unit, type, ts, value) FROM ` + sqlString(file) + ` (FORMAT parquet)`
	}
	var liftT, copyT time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		db1, err := Open(ctx, filepath.Join(dir, fmt.Sprintf("lift%d.duckdb", i)), DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		db2, err := Open(ctx, filepath.Join(dir, fmt.Sprintf("copy%d.duckdb", i)), DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t := time.Now()
		if a, _, err := db1.IngestFile(ctx, file, format, nil); err != nil || int64(a) != n {
			b.Fatalf("IngestFile: %d, %v", a, err)
		}
		liftT += time.Since(t)
		t = time.Now()
		if _, err := db2.SQL().ExecContext(ctx, copySQL); err != nil {
			b.Fatal(err)
		}
		copyT += time.Since(t)
		b.StopTimer()
		db1.Close()
		db2.Close()
		os.Remove(filepath.Join(dir, fmt.Sprintf("lift%d.duckdb", i)))
		os.Remove(filepath.Join(dir, fmt.Sprintf("copy%d.duckdb", i)))
		b.StartTimer()
	}
	iters := float64(b.N)
	b.ReportMetric(float64(n)*iters/liftT.Seconds(), "lift_events/s")
	b.ReportMetric(float64(n)*iters/copyT.Seconds(), "copy_events/s")
	b.ReportMetric(liftT.Seconds()/copyT.Seconds(), "lift/copy")
}
