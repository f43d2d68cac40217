package store

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Fuzz targets of the event file readers behind "lift ingest" (CSV, NDJSON,
// Parquet). "make fuzz" runs each for FUZZTIME; without -fuzz they run over
// their seeds. Each checks that a file is loaded whole or refused as Invalid
// (never an internal error, never half), and that nothing loaded breaks the
// rules of the HTTP path: identifiers without control characters, timestamps
// within the bounds.

// fuzzIngest opens one in-memory database for a fuzz target and returns a
// function loading a file of the given bytes into it.
func fuzzIngest(f *testing.F, format FileFormat) func(t *testing.T, b []byte) {
	opt := DefaultOptions()
	opt.Logger = slog.New(slog.DiscardHandler)
	opt.Now = func() time.Time { return time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) }
	db, err := Open(context.Background(), "", opt)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	dir := f.TempDir()
	return func(t *testing.T, b []byte) {
		ctx := context.Background()
		p := filepath.Join(dir, "events."+string(format))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		before := count(t, db, `SELECT count(*) FROM events`)
		acc, _, err := db.IngestFile(ctx, p, format, nil)
		after := count(t, db, `SELECT count(*) FROM events`)
		if err != nil {
			if k := experiment.KindOf(err); k != experiment.Invalid {
				t.Fatalf("%q: error of kind %v: %v", b, k, err)
			}
			if after != before {
				t.Fatalf("%q: refused (%v) but %d rows were stored", b, err, after-before)
			}
			return
		}
		if after-before != acc {
			t.Fatalf("%q: %d accepted, %d rows stored", b, acc, after-before)
		}
		tb := db.bounds()
		if n := count(t, db, `SELECT count(*) FROM events WHERE regexp_matches(event_id, `+controlChars+`) OR regexp_matches(unit, `+controlChars+`)
			OR regexp_matches(type, `+controlChars+`) OR `+tb.sqlOutside("ts")); n != 0 {
			t.Fatalf("%q: stored %d events with control characters or timestamps out of bounds", b, n)
		}
	}
}

func FuzzIngestCSV(f *testing.F) {
	for _, s := range []string{
		"event_id,unit,type,ts,value\na1,u1,purchase,2026-03-01T10:00:00Z,12.5\na2,u2,visit,2026-03-01 11:00:00,\n",
		"event_id,unit,type,ts,properties\nb1,u1,visit,2026-03-01T10:00:00Z,\"{\"\"page\"\":\"\"home\"\"}\"\n",
		"event_id,unit,type,ts\nc1,\"u\x001\",visit,2026-03-01T10:00:00Z\n",
		"event_id,unit,type,ts\nd1,u1,visit,9999-01-01T00:00:00Z\n",
		"event_id,unit,type,ts,value\ne1,u1,visit,2026-03-01T10:00:00Z,nan\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(fuzzIngest(f, CSV))
}

func FuzzIngestNDJSON(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"h1","unit":"u1","type":"visit","ts":"2026-03-01T10:00:00Z","value":2,"properties":{"a":1}}` + "\n\n" + `{"event_id":"h2","unit":"u2","type":"visit","ts":"2026-03-01T10:00:00Z"}` + "\n",
		`{"event_id":"i1","unit":"u\u0000","type":"visit","ts":"2026-03-01T10:00:00Z"}`,
		`{"event_id":"i2","unit":"u","type":"visit","ts":"1970-01-01T00:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(fuzzIngest(f, NDJSON))
}

func FuzzIngestParquet(f *testing.F) {
	opt := DefaultOptions()
	opt.Logger = slog.New(slog.DiscardHandler)
	db, err := Open(context.Background(), "", opt)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	for i, sel := range []string{
		`SELECT 'p' || i AS event_id, 'u' || (i % 7) AS unit, 'visit' AS type, TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_minutes(i) AS ts, i * 0.5 AS value FROM range(5) t(i)`,
		`SELECT 'q' || i AS event_id, 'u' AS unit, 'visit' AS type, CASE WHEN i = 1 THEN 'never' ELSE '2026-03-01T00:00:00Z' END AS ts FROM range(3) t(i)`,
		`SELECT 'r' AS event_id, 'victim' || chr(0) AS unit, 'visit' AS type, TIMESTAMPTZ '2026-03-01 00:00:00+00' AS ts`,
	} {
		p := filepath.Join(dir, "seed"+string(rune('0'+i))+".parquet")
		if _, err := db.SQL().Exec(`COPY (` + sel + `) TO ` + sqlString(p) + ` (FORMAT parquet)`); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	db.Close()
	f.Fuzz(fuzzIngest(f, Parquet))
}
