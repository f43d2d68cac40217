package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/reports"
	"github.com/liftlab/lift/store"
)

// runReport writes an experiment's report to a folder, offline, from the DuckDB file.
func runReport(ctx context.Context, e *env, args []string) error {
	fs := e.flags("report", "--db PATH --experiment KEY --out DIR [--private]", `
Write an experiment's report into DIR: report.html (self-contained, charts inlined),
report.md, report.json, results.csv and plots/NAME.{png,svg,pdf} for every chart.
Numbers are exact unless --private is given: then they are differentially private
and the release spends the experiment's per-release ε from its privacy budget
(nothing when the data has not changed since the last release). The DuckDB file must
not be held by a running "lift serve"; ask the server for /v1/experiments/KEY/report.html instead.
With --engine clickhouse the metrics are computed by ClickHouse, after the rows the
file has committed are forwarded to it (docs/store.md).`)
	db := fs.String("db", "", "DuckDB file (required)")
	key := fs.String("experiment", "", "experiment key (required)")
	out := fs.String("out", "", "output folder, created if needed (required)")
	private := fs.Bool("private", false, "DP-noised numbers only (spends privacy budget)")
	who := fs.String("who", "lift report", "name recorded in the privacy ledger for --private")
	segment := fs.String("segment", "", "unit attribute of the segments view (exact reports); default the first attribute the store holds")
	width := fs.Float64("width", 7, "chart width in inches")
	height := fs.Float64("height", 4.5, "chart height in inches")
	dpi := fs.Int("dpi", 120, "PNG resolution in dots per inch")
	var ef engineFlags
	ef.register(fs)
	if err := e.parse(fs, args); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"db", *db}, {"experiment", *key}, {"out", *out}} {
		if f.v == "" {
			return experiment.E("lift report", experiment.Invalid, experiment.Field("--"+f.name), experiment.Errorf("is required"))
		}
	}
	opt := store.DefaultOptions()
	opt.Logger = slog.New(slog.DiscardHandler)
	sdb, err := store.Open(ctx, *db, opt)
	if err != nil {
		return err
	}
	defer sdb.Close()
	rs, wh, err := ef.open(ctx, "lift report", sdb, opt.Logger)
	if err != nil {
		return err
	}
	defer wh.Close()
	if wh != nil {
		if _, _, err := wh.forwarder.Sync(ctx); err != nil {
			return experiment.E("lift report", experiment.Field("--clickhouse"), fmt.Errorf("forwarding the store's rows: %w", err))
		}
	}
	r, err := api.BuildReport(ctx, sdb, rs, *key, api.ReportOptions{Private: *private, Who: *who, SegmentBy: *segment})
	if err != nil {
		return err
	}
	paths, err := r.WriteDir(*out, reports.RenderOptions{Width: *width, Height: *height, DPI: *dpi})
	if err != nil {
		return err
	}
	var csv bytes.Buffer
	if err := r.RawCSV(&csv); err != nil {
		return err
	}
	pq, err := sdb.CSVToParquet(ctx, csv.Bytes())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "results.parquet"), pq, 0o644); err != nil {
		return fmt.Errorf("writing results.parquet: %w", err)
	}
	fmt.Fprintf(e.stdout, "wrote %d files to %s (%s): report.html, report.md, report.json, results.csv, results.parquet, plots/\n", len(paths)+1, *out, r.Privacy.Caption())
	return nil
}
