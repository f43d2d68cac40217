package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

const ingestDescription = `
Bulk-load outcome events from a CSV, Parquet or NDJSON file.

CSV and Parquet files have the columns event_id, unit, type, ts and optionally
value (default 0) and properties (a JSON object); NDJSON files have one event
object a line with the same fields. Timestamps are RFC 3339 (a CSV timestamp
without an offset is UTC).

Without --server the file is loaded into the DuckDB file given by --db in one
transaction: all of it or, on any bad row, nothing (the error lists the first bad
lines). DuckDB lets one process write a file, so while "lift serve" holds it, use
--server URL --key KEY: the events are then checked here and sent in batches of
10,000 to POST /v1/events, each batch committed on its own; a rerun after a
failure adds only what is missing (event_id makes ingest idempotent).

Either way it prints how many events were new and how many were duplicates.
A progress bar is drawn on stderr when it is a terminal.

Environment: LIFT_API_KEY   the key for --server when --key is not given`

func runIngest(ctx context.Context, e *env, args []string) error {
	fs := e.flags("ingest", "--file FILE [--db PATH | --server URL --key KEY] [--format csv|parquet|ndjson]", ingestDescription)
	dbPath := fs.String("db", "lift.duckdb", "DuckDB `file` to load into (when no --server)")
	file := fs.String("file", "", "event `file` to load (required)")
	format := fs.String("format", "", "file format: csv, parquet or ndjson (default: from the extension)")
	server := fs.String("server", "", "`URL` of a running lift server to send the events to")
	key := fs.String("key", "", "API key (ingest or admin role) for --server; default $LIFT_API_KEY")
	batch := fs.Int("batch", 10_000, "events per request with --server (at most 10,000)")
	skew := fs.Duration("max-clock-skew", store.DefaultMaxClockSkew, "refuse events stamped further than this past the clock (the server applies its own with --server)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprintln(e.stderr, "lift ingest: --file is required")
		fs.Usage()
		return errUsage
	}
	f := store.FileFormat(strings.ToLower(*format))
	switch f {
	case "", store.CSV, store.Parquet, store.NDJSON:
	default:
		return experiment.E("ingest", experiment.Invalid, experiment.Field("format"), experiment.Errorf("must be csv, parquet or ndjson, got %q", *format))
	}
	st, err := os.Stat(*file)
	if err != nil {
		return err
	}
	start := time.Now()
	var bar *progressbar.ProgressBar
	var acc, dup int64
	if *server != "" {
		k := *key
		if k == "" {
			k = e.lookupEnv("LIFT_API_KEY")
		}
		if k == "" {
			return experiment.E("ingest", experiment.Invalid, experiment.Field("key"), experiment.Errorf("--server needs an API key: give --key or set LIFT_API_KEY"))
		}
		if *batch < 1 || *batch > 10_000 {
			return experiment.E("ingest", experiment.Invalid, experiment.Field("batch"), experiment.Errorf("must be in [1, 10000], got %d", *batch))
		}
		bar = newProgress(e, -1, "events sent")
		acc, dup, err = ingestRemote(ctx, *server, k, *file, f, *batch, *skew, bar)
	} else {
		bar = newProgress(e, st.Size(), "loading "+*file)
		acc, dup, err = ingestLocal(ctx, *dbPath, *file, f, *skew, bar)
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(e.stderr)
	}
	if err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(e.stdout, "%d events accepted, %d duplicates (%s, %.0f events/s)\n", acc, dup, d.Round(time.Millisecond), float64(acc+dup)/d.Seconds())
	return nil
}

// newProgress returns a progress bar on stderr when it is a terminal, else nil:
// of bytes out of total, or a counter when total is -1.
func newProgress(e *env, total int64, desc string) *progressbar.ProgressBar {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(total > 0),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30))
}

func ingestLocal(ctx context.Context, dbPath, file string, f store.FileFormat, skew time.Duration, bar *progressbar.ProgressBar) (int64, int64, error) {
	opt := store.DefaultOptions()
	opt.Logger = slog.New(slog.DiscardHandler)
	opt.MaxClockSkew = skew
	db, err := store.Open(ctx, dbPath, opt)
	if err != nil {
		return 0, 0, err // a held file says to use --server
	}
	acc, dup, err := db.IngestFile(ctx, file, f, func(done, total int64) {
		if bar != nil {
			bar.Set64(done)
		}
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return int64(acc), int64(dup), err
}

// ingestRemote checks the file with an in-memory database (same rules and line
// numbers as a local load) and posts it in batches.
func ingestRemote(ctx context.Context, server, key, file string, f store.FileFormat, batch int, skew time.Duration, bar *progressbar.ProgressBar) (int64, int64, error) {
	opt := store.DefaultOptions()
	opt.Logger = slog.New(slog.DiscardHandler)
	opt.MaxClockSkew = skew
	mem, err := store.Open(ctx, "", opt)
	if err != nil {
		return 0, 0, err
	}
	defer mem.Close()
	url := strings.TrimRight(server, "/") + "/v1/events"
	client := &http.Client{Timeout: 2 * time.Minute}
	var acc, dup, sent int64
	_, err = mem.ScanEventFile(ctx, file, f, batch, func(evs []experiment.Event) error {
		a, d, err := postEvents(ctx, client, url, key, evs)
		if err != nil {
			return fmt.Errorf("after %d events (rerun to send the rest; sent events count as duplicates): %w", sent, err)
		}
		acc, dup, sent = acc+int64(a), dup+int64(d), sent+int64(len(evs))
		if bar != nil {
			bar.Set64(sent)
		}
		return nil
	})
	return acc, dup, err
}

func postEvents(ctx context.Context, client *http.Client, url, key string, evs []experiment.Event) (int, int, error) {
	body, err := json.Marshal(map[string]any{"events": evs})
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, experiment.E("ingest", experiment.Unavailable, fmt.Errorf("sending to %s: %w", url, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return 0, 0, fmt.Errorf("server answered %d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return 0, 0, fmt.Errorf("server answered %s", resp.Status)
	}
	var out struct{ Accepted, Duplicates int }
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, 0, fmt.Errorf("reading the server's answer: %w", err)
	}
	return out.Accepted, out.Duplicates, nil
}
