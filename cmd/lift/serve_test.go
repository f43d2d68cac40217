package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/api"
	"github.com/liftlab/lift/privacy"
	"github.com/liftlab/lift/store"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var servingRE = regexp.MustCompile(`lift serving on (http://\S+)`)

// serveInProcess runs "lift serve" in process until stop is called, which
// cancels its context (as SIGTERM does) and returns the exit code.
func serveInProcess(t *testing.T, getenv func(string) string, args ...string) (base string, out *lockedBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &lockedBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, &env{args: append([]string{"serve"}, args...), stdin: strings.NewReader(""), stdout: out, stderr: io.Discard, getenv: getenv})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case c := <-code:
			t.Fatalf("serve exited with %d: %s", c, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if base == "" {
		cancel()
		t.Fatalf("serve printed no address: %s", out.String())
	}
	return base, out, func() int { cancel(); return <-code }
}

func getWithKey(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeBootstrapKey checks that the first start prints an admin key that
// works, a second start prints none, and a canceled context exits 0.
func TestServeBootstrapKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "lift.duckdb")
	noEnv := func(string) string { return "" }
	base, out, stop := serveInProcess(t, noEnv, "--db", db, "--addr", "127.0.0.1:0")
	m := regexp.MustCompile(`(lift_\S+)`).FindStringSubmatch(out.String())
	if !strings.Contains(out.String(), "Bootstrap admin key") || m == nil {
		t.Fatalf("first start printed no bootstrap key:\n%s", out.String())
	}
	if got := getWithKey(t, base+"/v1/keys", m[1]); got != http.StatusOK {
		t.Errorf("the printed key got %d on GET /v1/keys, want 200", got)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d after cancel, want 0", code)
	}

	base, out, stop = serveInProcess(t, noEnv, "--db", db, "--addr", "127.0.0.1:0")
	if strings.Contains(out.String(), "Bootstrap admin key") {
		t.Errorf("second start printed a key again:\n%s", out.String())
	}
	if got := getWithKey(t, base+"/v1/keys", m[1]); got != http.StatusOK {
		t.Errorf("the bootstrap key got %d after a restart, want 200", got)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}

	// LIFT_ADMIN_KEY is an admin key from the start.
	const envKey = "lift_FROMTHEENVIRONMENT0000000000"
	env := func(k string) string {
		if k == "LIFT_ADMIN_KEY" {
			return envKey
		}
		return ""
	}
	base, _, stop = serveInProcess(t, env, "--db", filepath.Join(t.TempDir(), "other.duckdb"), "--addr", "127.0.0.1:0")
	if got := getWithKey(t, base+"/v1/keys", envKey); got != http.StatusOK {
		t.Errorf("LIFT_ADMIN_KEY got %d, want 200", got)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

func TestServeFlags(t *testing.T) {
	code, stdout, _ := runLift(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, flag := range []string{"-db", "-addr", "-drain", "-request-timeout", "-body-limit", "-log-level", "-log-format", "-exposure-writers", "-models", "-scorer", "-scorer-precision", "LIFT_ADMIN_KEY"} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("serve --help does not document %s", flag)
		}
	}
	if code, _, stderr := runLift(t, "serve", "--log-level", "loud", "--db", filepath.Join(t.TempDir(), "x.duckdb")); code != 1 || !strings.Contains(stderr, "--log-level") {
		t.Errorf("bad --log-level: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runLift(t, "serve", "--exposure-writers", "0", "--db", filepath.Join(t.TempDir(), "x.duckdb")); code != 1 || !strings.Contains(stderr, "--exposure-writers") {
		t.Errorf("bad --exposure-writers: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runLift(t, "serve", "--models", t.TempDir(), "--scorer-precision", "int4", "--db", filepath.Join(t.TempDir(), "x.duckdb")); code != 1 || !strings.Contains(stderr, "--scorer-precision") {
		t.Errorf("bad --scorer-precision: exit %d, %q", code, stderr)
	}
}

// TestDemo runs the demo on a small population and checks its printout against
// the file it wrote and the SRM p-value computed from the stored counts.
func TestDemo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.duckdb")
	const units = 20_000
	code, stdout, stderr := runLift(t, "demo", "--db", db, "--units", fmt.Sprint(units), "--seed", "7")
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, stderr)
	}
	s, err := store.Open(context.Background(), db, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	counts, err := s.ExposureCounts(context.Background(), "checkout-button")
	if err != nil {
		t.Fatal(err)
	}
	// The demo sets privacy budgets, so a viewer (DP numbers only) reads results.
	if _, err := api.PrivateExperimentResults(context.Background(), s, api.ResultsOver(s), "checkout-button", "viewer", privacy.Options{}); err != nil {
		t.Errorf("the demo's private results: %v", err)
	}
	// The whole layer and coverage 1: every unit is in an arm or in the holdout.
	if n := counts["control"] + counts["treatment"] + counts[""]; n != units {
		t.Fatalf("stored %d exposures (%v), want %d", n, counts, units)
	}
	// A 5% holdout: 1,000 expected, binomial sd sqrt(20000·0.05·0.95) ≈ 30.8; allow 5 sd.
	if h := counts[""]; h < 846 || h > 1154 {
		t.Errorf("holdout %d units, want about 1000", h)
	}
	for _, want := range []string{
		fmt.Sprintf("control %9d", counts["control"]),
		fmt.Sprintf("treatment %9d", counts["treatment"]),
		fmt.Sprintf("holdout %9d", counts[""]),
		fmt.Sprintf("p = %.4f", analysis.SRM([]float64{float64(counts["control"]), float64(counts["treatment"])}, []float64{0.5, 0.5})),
	} {
		if !strings.Contains(strings.Join(strings.Fields(stdout), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// The journey stage served every simulated user (4,000), then one shopper
	// twice more (after a stored consent and after its withdrawal), and left its
	// model beside the database, for "lift serve --models".
	var decisions int64
	if err := s.SQL().QueryRowContext(context.Background(), `SELECT count(*) FROM journey_decisions WHERE journey = 'home'`).Scan(&decisions); err != nil || decisions != 4000+2 {
		t.Errorf("journey decisions %d (%v), want 4,000 + 2", decisions, err)
	}
	models := strings.TrimSuffix(db, ".duckdb") + "-models"
	if _, err := os.Stat(filepath.Join(models, "demo-shop.safetensors")); err != nil {
		t.Errorf("the demo's model: %v", err)
	}
	if !strings.Contains(stdout, "personalized vs control") || !strings.Contains(stdout, "--models "+models) {
		t.Errorf("output lacks the journey stage:\n%s", stdout)
	}
	// The demo refuses to reuse a file.
	if code, _, stderr := runLift(t, "demo", "--db", db); code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("reusing the file: exit %d, %q", code, stderr)
	}
}

// TestEngineFlags: the engine flags of lift serve and lift report are checked
// before anything is served, each error naming its flag.
func TestEngineFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		flag string
	}{
		{"unknown engine", []string{"--engine", "bigquery"}, "--engine"},
		{"no servers", []string{"--engine", "clickhouse"}, "--clickhouse"},
		{"not host:port", []string{"--engine", "clickhouse", "--clickhouse", "localhost"}, "--clickhouse"},
		{"shards without a cluster", []string{"--engine", "clickhouse", "--clickhouse", "a:9000,b:9000"}, "--clickhouse-cluster"},
		{"servers for DuckDB", []string{"--clickhouse", "a:9000"}, "--clickhouse"},
		{"columns without a table", []string{"--engine", "clickhouse", "--clickhouse", "a:9000", "--clickhouse-event-columns", "unit=user_id"}, "--clickhouse-event-columns"},
		{"a column that is not col=expr", []string{"--engine", "clickhouse", "--clickhouse", "a:9000", "--clickhouse-events", "shop", "--clickhouse-event-columns", "unit"}, "--clickhouse-event-columns"},
	} {
		for _, cmd := range []string{"serve", "report"} {
			args := append([]string{cmd, "--db", filepath.Join(t.TempDir(), "x.duckdb")}, c.args...)
			if cmd == "report" {
				args = append(args, "--experiment", "x", "--out", t.TempDir())
			}
			code, _, stderr := runLift(t, args...)
			if code != 1 || !strings.Contains(stderr, c.flag+":") {
				t.Errorf("%s, lift %s: exit %d, %q; want 1 naming %s", c.name, cmd, code, stderr, c.flag)
			}
		}
	}
}
