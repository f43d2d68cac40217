package main

import (
	"bufio"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/store"
)

// TestGenAndIngest: lift gen writes files, lift ingest loads them (again: all
// duplicates), a bad file fails with its line numbers and loads nothing.
func TestGenAndIngest(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runLift(t, "gen", "--out", dir, "--units", "500", "--events", "5000", "--seed", "3")
	if code != 0 || !strings.Contains(out, "events.csv (5000 events)") {
		t.Fatalf("gen: %d %q %q", code, out, errs)
	}
	db := filepath.Join(dir, "lift.duckdb")
	events := filepath.Join(dir, "events.csv")
	code, out, errs = runLift(t, "ingest", "--db", db, "--file", events)
	if code != 0 || !strings.HasPrefix(out, "5000 events accepted, 0 duplicates") || errs != "" {
		t.Fatalf("ingest: %d %q %q (no progress bar on a non-terminal)", code, out, errs)
	}
	code, out, _ = runLift(t, "ingest", "--db", db, "--file", events)
	if code != 0 || !strings.HasPrefix(out, "0 events accepted, 5000 duplicates") {
		t.Errorf("second ingest: %d %q", code, out)
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("event_id,unit,type,ts,value\nb1,u1,visit,2026-01-01T00:00:00Z,1\nb2,u1,visit,2026-01-01T00:00:00Z,abc\nb3,,visit,2026-01-01T00:00:00Z,1\n"), 0o644)
	code, _, errs = runLift(t, "ingest", "--db", db, "--file", bad)
	if code != 1 || !strings.Contains(errs, "line 3") || !strings.Contains(errs, "nothing was loaded") {
		t.Errorf("bad file: %d %q; want line 3 named", code, errs)
	}
	code, _, errs = runLift(t, "ingest", "--db", db)
	if code != 2 || !strings.Contains(errs, "--file is required") {
		t.Errorf("no --file: %d %q", code, errs)
	}
	code, _, errs = runLift(t, "gen", "--units", "10")
	if code != 2 || !strings.Contains(errs, "exactly one of --db and --out") {
		t.Errorf("gen without --db or --out: %d %q", code, errs)
	}
}

// TestIngestServer sends a file to a running API server with --server.
func TestIngestServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if code, _, errs := runLift(t, "gen", "--out", dir, "--units", "100", "--events", "25000", "--format", "parquet"); code != 0 {
		t.Fatal(errs)
	}
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, filepath.Join(dir, "server.duckdb"), sopt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const key = "lift_INGESTTESTKEYINGESTTESTKEY00"
	if _, err := db.EnsureAdminKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	opt := api.DefaultOptions()
	opt.Store, opt.Logger = db, sopt.Logger
	srv, err := api.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	file := filepath.Join(dir, "events.parquet")
	code, out, errs := runLift(t, "ingest", "--server", hs.URL, "--key", key, "--file", file)
	if code != 0 || !strings.HasPrefix(out, "25000 events accepted, 0 duplicates") {
		t.Fatalf("ingest --server: %d %q %q", code, out, errs)
	}
	var n int
	db.SQL().QueryRow(`SELECT count(*) FROM events`).Scan(&n)
	if n != 25000 {
		t.Errorf("%d events on the server, want 25000", n)
	}
	code, _, errs = runLift(t, "ingest", "--server", hs.URL, "--file", file)
	if code != 1 || !strings.Contains(errs, "--key") {
		t.Errorf("no key: %d %q", code, errs)
	}
}

// TestIngestLockedFile: while another process holds the DuckDB file, lift ingest
// --db fails and says to use --server.
func TestIngestLockedFile(t *testing.T) {
	if p := os.Getenv("LIFT_HOLD_DB"); p != "" {
		db, err := store.Open(context.Background(), p, store.DefaultOptions())
		if err != nil {
			os.Exit(1)
		}
		os.Stdout.WriteString("held\n")
		bufio.NewReader(os.Stdin).ReadString('\n') // hold until the parent closes stdin
		db.Close()
		os.Exit(0)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "held.duckdb")
	cmd := exec.Command(os.Args[0], "-test.run=^TestIngestLockedFile$")
	cmd.Env = append(os.Environ(), "LIFT_HOLD_DB="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "held\n" {
		t.Fatalf("child did not open the file: %q", line)
	}
	file := filepath.Join(dir, "e.csv")
	os.WriteFile(file, []byte("event_id,unit,type,ts\na,u,visit,2026-01-01T00:00:00Z\n"), 0o644)
	code, _, errs := runLift(t, "ingest", "--db", path, "--file", file)
	if code != 1 || !strings.Contains(errs, "held by another process") || !strings.Contains(errs, "--server URL") {
		t.Errorf("locked file: %d %q; want a message pointing to --server", code, errs)
	}
}
