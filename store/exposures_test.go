package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// setupExposures registers a holdout "global" and a running A/B experiment "btn"
// held out from it.
func setupExposures(t testing.TB, db *DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.CreateHoldout(ctx, "alice", &experiment.Holdout{Name: "global", Fraction: 0.05}); err != nil {
		t.Fatal(err)
	}
	e := abExperiment("btn")
	e.Holdout = "global"
	if _, err := db.CreateExperiment(ctx, "alice", e); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateExperiment(ctx, "alice", abExperiment("plain")); err != nil {
		t.Fatal(err)
	}
}

// batch returns n exposures of "btn": every 20th unit in the holdout, the others
// alternating control/treatment.
func batch(prefix string, n int, ts time.Time) []experiment.Exposure {
	xs := make([]experiment.Exposure, n)
	for i := range xs {
		x := experiment.Exposure{Experiment: "btn", Unit: fmt.Sprintf("%s-%d", prefix, i), TS: ts, Source: "client"}
		switch {
		case i%20 == 19:
			x.InHoldout = true
		case i%2 == 0:
			x.Variant = "control"
		default:
			x.Variant = "treatment"
		}
		xs[i] = x
	}
	return xs
}

func TestLogExposuresDurable(t *testing.T) {
	for _, m := range []struct {
		name string
		mode appendMode
	}{{"csv", appendCSV}, {"coded", appendCoded}, {"rows", appendRows}} {
		t.Run(m.name, func(t *testing.T) { testLogExposuresDurable(t, m.mode) })
	}
}

func testLogExposuresDurable(t *testing.T, mode appendMode) {
	ctx := context.Background()
	c := newClock()
	db, path := openTest(t, c)
	db.w.mode = mode
	setupExposures(t, db)
	ts := time.Date(2026, 3, 2, 10, 30, 0, 123456000, time.UTC)
	if err := db.LogExposures(ctx, batch("u", 100, ts)); err != nil {
		t.Fatal(err)
	}
	// Rotating the holdout changes the version recorded for later exposures.
	if _, err := db.RotateHoldout(ctx, "alice", "global"); err != nil {
		t.Fatal(err)
	}
	later := []experiment.Exposure{{Experiment: "btn", Unit: "late", InHoldout: true}}
	if err := db.LogExposures(ctx, later); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// batch: 100 units; i = 19, 39, 59, 79, 99 in the holdout (5, plus "late" = 6);
	// the 50 even i control; the 45 remaining odd i treatment.
	counts, err := db.ExposureCounts(ctx, "btn")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"": 6, "control": 50, "treatment": 45}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("ExposureCounts = %v, want %v", counts, want)
	}
	var unit, source string
	var variant *string
	var gotTS time.Time
	var inHoldout bool
	var hv int
	err = db.SQL().QueryRow(`SELECT unit, variant, ts, in_holdout, holdout_version, source FROM exposures WHERE unit = 'u-19'`).
		Scan(&unit, &variant, &gotTS, &inHoldout, &hv, &source)
	if err != nil {
		t.Fatal(err)
	}
	if variant != nil || !inHoldout || hv != 1 || !gotTS.Equal(ts) || source != "client" {
		t.Errorf("holdout row: variant %v in_holdout %v version %d ts %v source %q", variant, inHoldout, hv, gotTS, source)
	}
	err = db.SQL().QueryRow(`SELECT ts, holdout_version FROM exposures WHERE unit = 'late'`).Scan(&gotTS, &hv)
	if err != nil {
		t.Fatal(err)
	}
	if hv != 2 || !gotTS.Equal(c.Now()) {
		t.Errorf("late row: version %d (want 2 after rotation), ts %v (want the clock's %v)", hv, gotTS, c.Now())
	}
	if _, err := db.ExposureCounts(ctx, "nope"); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("counts of unknown experiment: got %v, want NotFound", err)
	}
}

func TestLogExposuresInvalid(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, newClock())
	setupExposures(t, db)
	tests := []struct {
		name string
		row  experiment.Exposure
		want string
	}{
		{"empty unit", experiment.Exposure{Experiment: "btn", Variant: "control"}, "exposures[3].unit: must not be empty"},
		{"empty experiment", experiment.Exposure{Unit: "u", Variant: "control"}, "exposures[3].experiment: must not be empty"},
		{"unknown experiment", experiment.Exposure{Experiment: "nope", Unit: "u", Variant: "control"}, `exposures[3].experiment: unknown experiment "nope"`},
		{"unknown variant", experiment.Exposure{Experiment: "btn", Unit: "u", Variant: "blue"}, `exposures[3].variant: "blue" is not a variant of experiment "btn"`},
		{"empty variant", experiment.Exposure{Experiment: "btn", Unit: "u"}, "exposures[3].variant: must not be empty"},
		{"holdout with variant", experiment.Exposure{Experiment: "btn", Unit: "u", Variant: "control", InHoldout: true}, "exposures[3].variant: must be empty for a holdout unit"},
		{"holdout without holdout", experiment.Exposure{Experiment: "plain", Unit: "u", InHoldout: true}, `exposures[3].in_holdout: experiment "plain" names no holdout`},
		{"NUL in unit", experiment.Exposure{Experiment: "btn", Unit: "a\x00b", Variant: "control"}, "exposures[3].unit: must not contain control characters (U+0000 at offset 1)"},
		{"NUL in experiment", experiment.Exposure{Experiment: "btn\x00x", Unit: "u", Variant: "control"}, "exposures[3].experiment: must not contain control characters (U+0000 at offset 3)"},
		{"control character in variant", experiment.Exposure{Experiment: "btn", Unit: "u", Variant: "control\x1b"}, "exposures[3].variant: must not contain control characters (U+001B at offset 7)"},
		{"C1 control in source", experiment.Exposure{Experiment: "btn", Unit: "u", Variant: "control", Source: "s\u0085"}, "exposures[3].source: must not contain control characters (U+0085 at offset 1)"},
		{"line break in unit", experiment.Exposure{Experiment: "btn", Unit: "u\n", Variant: "control"}, "exposures[3].unit: must not contain control characters (U+000A at offset 1)"},
		{"invalid UTF-8 unit", experiment.Exposure{Experiment: "btn", Unit: "a\xffb", Variant: "control"}, "exposures[3].unit: must be valid UTF-8"},
		{"negative version", experiment.Exposure{Experiment: "btn", Unit: "u", Variant: "control", HoldoutVersion: -1}, "exposures[3].holdout_version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xs := batch("ok", 5, time.Time{})
			xs[3] = tt.row
			err := db.LogExposures(ctx, xs)
			if !experiment.Is(err, experiment.Invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want Invalid containing %q", err, tt.want)
			}
		})
	}
	if n := count(t, db, `SELECT count(*) FROM exposures`); n != 0 {
		t.Errorf("rejected batches stored %d rows", n)
	}
}

func TestLogExposuresConcurrent(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t, nil)
	setupExposures(t, db)
	const goroutines, calls, rows = 16, 10, 250
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*calls)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				errs <- db.LogExposures(ctx, batch(fmt.Sprintf("g%d-c%d", g, c), rows, time.Time{}))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err := Open(ctx, path, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := count(t, db, `SELECT count(*) FROM exposures`); n != goroutines*calls*rows {
		t.Errorf("%d rows stored, want %d", n, goroutines*calls*rows)
	}
	if n := count(t, db, `SELECT count(DISTINCT unit) FROM exposures`); n != goroutines*calls*rows {
		t.Errorf("%d distinct units, want %d (rows lost or duplicated)", n, goroutines*calls*rows)
	}
}

func TestCloseFlushesQueue(t *testing.T) {
	ctx := context.Background()
	opt := DefaultOptions()
	opt.FlushEvery = time.Hour // the writer would wait an hour for more: only Close commits
	path := t.TempDir() + "/lift.duckdb"
	db, err := Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	setupExposures(t, db)
	const callers = 8
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.LogExposures(ctx, batch(fmt.Sprintf("c%d", i), 100, time.Time{}))
		}()
	}
	// Wait (without a deadline) until every call is queued or held by the writer.
	for st := db.w.gc.Stats(); st.Taken+int64(st.Queued) < callers; st = db.w.gc.Stats() {
		time.Sleep(time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if err := db.LogExposures(ctx, batch("after", 1, time.Time{})); !experiment.Is(err, experiment.Unavailable) {
		t.Errorf("LogExposures after Close: got %v, want Unavailable", err)
	}
	db, err = Open(ctx, path, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := count(t, db, `SELECT count(*) FROM exposures`); n != callers*100 {
		t.Errorf("%d rows after Close, want %d", n, callers*100)
	}
}

func TestFailedGroupStoresNothing(t *testing.T) {
	ctx := context.Background()
	opt := DefaultOptions()
	opt.FlushEvery = 50 * time.Millisecond
	opt.Logger = slog.New(slog.DiscardHandler)
	path := t.TempDir() + "/lift.duckdb"
	db, err := Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	setupExposures(t, db)
	boom := errors.New("disk on fire")
	visible := -1
	db.w.failCommit = func([][]experiment.Exposure) error { // called after the rows are appended and flushed
		// Another connection must not see the group before COMMIT: the appender
		// writes into the writer's transaction, not in autocommit.
		visible = count(t, db, `SELECT count(*) FROM exposures`)
		return boom
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.LogExposures(ctx, batch(fmt.Sprintf("f%d", i), 3000, time.Time{}))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) || !experiment.Is(err, experiment.Internal) {
			t.Errorf("waiter %d: got %v, want the commit's error", i, err)
		}
	}
	if visible != 0 {
		t.Errorf("%d appended rows visible before COMMIT", visible)
	}
	if n := count(t, db, `SELECT count(*) FROM exposures`); n != 0 {
		t.Errorf("failed groups left %d rows", n)
	}
	db.w.failCommit = nil
	if err := db.LogExposures(ctx, batch("ok", 10, time.Time{})); err != nil {
		t.Fatalf("writer unusable after a failed group: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM exposures`); n != 10 {
		t.Errorf("%d rows, want 10", n)
	}
}

// holdEnv names the file a child test process opens and holds.
const holdEnv = "LIFT_STORE_TEST_HOLD"

func TestFileHeldByAnotherProcess(t *testing.T) {
	if p := os.Getenv(holdEnv); p != "" {
		// Child: hold the file until the parent closes our stdin.
		db, err := Open(context.Background(), p, DefaultOptions())
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		db.Close()
		os.Exit(0)
	}
	path := t.TempDir() + "/lift.duckdb"
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileHeldByAnotherProcess$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q, %v", line, err)
	}
	_, err = Open(context.Background(), path, DefaultOptions())
	if !experiment.Is(err, experiment.Unavailable) {
		t.Fatalf("got %v, want Unavailable", err)
	}
	for _, want := range []string{"held by another process", "lift serve", "--server URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

// Variant names and unit ids are free text: quotes, delimiters, edge spaces and
// non-ASCII must arrive intact whichever append strategy a group takes (control
// characters are refused: TestLogExposuresInvalid).
func TestLogExposuresOddNames(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, nil)
	names := []string{"it's", "用户 ☕", "a''b", `back\slash`, "]::INT"}
	e := &experiment.Experiment{Key: "odd"}
	for _, n := range names {
		e.Variants = append(e.Variants, experiment.Variant{Name: n, Weight: 1 / float64(len(names))})
	}
	e.Variants[0].Weight += 1 - sumWeights(e.Variants)
	if _, err := db.CreateExperiment(ctx, "alice", e); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []appendMode{appendCSV, appendCoded, appendRows} {
		db.w.mode = mode
		for i, n := range names {
			// Units with quotes, commas and edge spaces.
			unit := fmt.Sprintf(" m%d-%d,\"%s\" ;%s ", mode, i, n, []string{"", "'"}[i%2])
			xs := []experiment.Exposure{{Experiment: "odd", Unit: unit, Variant: n, Source: "src'" + n}}
			if err := db.LogExposures(ctx, xs); err != nil {
				t.Fatalf("mode %d, variant %q: %v", mode, n, err)
			}
			var v, src string
			err := db.SQL().QueryRow(`SELECT variant, source FROM exposures WHERE unit = ?`, xs[0].Unit).Scan(&v, &src)
			if err != nil || v != n || src != "src'"+n {
				t.Errorf("mode %d: stored (%q, %q), %v; want (%q, %q)", mode, v, src, err, n, "src'"+n)
			}
		}
	}
}

func sumWeights(vs []experiment.Variant) float64 {
	s := 0.0
	for _, v := range vs {
		s += v.Weight
	}
	return s
}

// A full queue pushes back: a call that cannot enqueue before its context ends
// gets Unavailable and stores nothing, while queued calls still commit.
func TestQueueFullPushesBack(t *testing.T) {
	ctx := context.Background()
	opt := DefaultOptions()
	opt.QueueSize = 1
	opt.FlushEvery = -1 // commit what is queued, wait for nothing
	path := t.TempDir() + "/lift.duckdb"
	db, err := Open(ctx, path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	setupExposures(t, db)
	entered, release := make(chan struct{}), make(chan struct{})
	db.w.failCommit = func([][]experiment.Exposure) error { // holds the writer inside the first group's commit
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
		return nil
	}
	first := make(chan error, 1)
	go func() { first <- db.LogExposures(ctx, batch("first", 10, time.Time{})) }()
	<-entered // the writer holds "first"; the queue (1 batch) is empty
	second := make(chan error, 1)
	go func() { second <- db.LogExposures(ctx, batch("second", 10, time.Time{})) }()
	for db.w.gc.Stats().Queued == 0 { // wait until "second" fills the queue
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err = db.LogExposures(short, batch("third", 10, time.Time{}))
	cancel()
	if !experiment.Is(err, experiment.Unavailable) || !strings.Contains(err.Error(), "queue full") {
		t.Errorf("third call: got %v, want Unavailable (queue full)", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first: %v", err)
	}
	if err := <-second; err != nil {
		t.Errorf("second: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM exposures`); n != 20 {
		t.Errorf("%d rows, want 20 (first and second, not third)", n)
	}
}

// Issue 15, item 3: Options.MemoryLimit and TempDir become DuckDB's
// memory_limit and temp_directory; a query that cannot fit (a list aggregate
// cannot spill) fails with DuckDB's out-of-memory error naming the limit, and
// the database keeps serving afterwards.
func TestMemoryLimit(t *testing.T) {
	ctx := context.Background()
	opt := DefaultOptions()
	opt.MemoryLimit = 32 << 20
	opt.TempDir = t.TempDir()
	db, err := Open(ctx, t.TempDir()+"/lift.duckdb", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, err := db.MemoryLimit(ctx); err != nil || got != "32.0 MiB" {
		t.Errorf("memory_limit %q, %v; want 32.0 MiB", got, err)
	}
	var dir string
	if err := db.SQL().QueryRow(`SELECT current_setting('temp_directory')`).Scan(&dir); err != nil || dir != opt.TempDir {
		t.Errorf("temp_directory %q, %v; want %q", dir, err, opt.TempDir)
	}
	var n int
	err = db.SQL().QueryRow(`SELECT len(list(i)) FROM range(10000000) t(i)`).Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "Out of Memory Error") || !strings.Contains(err.Error(), "32.0 MiB") {
		t.Errorf("a list of 10^7 integers under 32 MiB: %v; want an out-of-memory error naming 32.0 MiB", err)
	}
	// IsOutOfMemory goes by DuckDB's error type, through wrapping, and not by
	// the text: another DuckDB error, or any error that only quotes the
	// words, is not one.
	var binder error
	if _, err := db.SQL().ExecContext(ctx, `SELECT no_such_column FROM range(1)`); err != nil {
		binder = err
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"DuckDB's error", err, true},
		{"wrapped", experiment.E("store.Results", experiment.Internal, fmt.Errorf("metric revenue: %w", err)), true},
		{"a binder error", binder, false},
		{"the words only", errors.New("Out of Memory Error: failed to allocate data of size 1.0 MiB (32.0 MiB/32.0 MiB used)"), false},
		{"nil", nil, false},
	} {
		if c.err == nil && c.name != "nil" {
			t.Fatalf("%s: no error to classify", c.name)
		}
		if got := IsOutOfMemory(c.err); got != c.want {
			t.Errorf("IsOutOfMemory(%s: %v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	// A sort of the same size spills to temp_directory and succeeds.
	var last int64
	if err := db.SQL().QueryRow(`SELECT i FROM (SELECT i FROM range(3000000) t(i) ORDER BY hash(i)) ORDER BY i DESC LIMIT 1`).Scan(&last); err != nil || last != 2999999 {
		t.Errorf("spilling sort: %d, %v; want 2999999", last, err)
	}
	if err := db.LogExposures(ctx, nil); err != nil {
		t.Errorf("after the failed query: %v", err)
	}
}
