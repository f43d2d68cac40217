package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/liftlab/lift/store"
)

// TestServeEndToEnd builds the binary, runs "lift serve" on a free port (with two
// exposure writer lanes), registers an experiment over HTTP, assigns with
// expose=true and posts exposures from several goroutines, sends SIGTERM while requests are in flight,
// waits for exit status 0, reopens the DuckDB file and checks that every
// acknowledged exposure is in it.
func TestServeEndToEnd(t *testing.T) { testServeTraffic(t, syscall.SIGTERM) }

// TestServeKilled is TestServeEndToEnd with SIGKILL, sent the moment the 40th call
// is answered: no shutdown runs, and still every acknowledged exposure is in the
// file (a call is answered only after its exposures are committed).
func TestServeKilled(t *testing.T) { testServeTraffic(t, syscall.SIGKILL) }

func testServeTraffic(t *testing.T, sig syscall.Signal) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "lift.duckdb")
	// Two writer lanes: the delivery guarantee must hold when groups commit in turn.
	srv := startServe(t, buildLift(t), "--db", dbPath, "--exposure-writers", "2")
	for _, line := range srv.printed {
		if strings.Contains(line, "Bootstrap admin key") {
			t.Errorf("printed a bootstrap key although LIFT_ADMIN_KEY was set: %q", line)
		}
	}
	call := srv.call
	mustCall := func(method, path string, body any, out any) {
		t.Helper()
		srv.mustCall(t, method, path, body, out)
	}
	cmd, done, stderr := srv.cmd, srv.done, srv.stderr
	mustCall("POST", "/v1/layers", map[string]any{"name": "site"}, nil)
	mustCall("POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.05}, nil)
	mustCall("POST", "/v1/experiments", map[string]any{
		"key": "checkout", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
		"layer": "site", "layer_range": map[string]float64{"start": 0, "end": 1}, "holdout": "global"}, nil)
	mustCall("POST", "/v1/experiments/checkout/start", nil, nil)
	var key struct {
		Secret string `json:"secret"`
	}
	mustCall("POST", "/v1/keys", map[string]any{"name": "svc", "role": "ingest"}, &key)

	// Traffic: workers alternate batch assignment with expose=true and client
	// exposures, recording each unit whose exposure was acknowledged, until the
	// server stops answering.
	type assignAnswer struct {
		Assignments []struct {
			Unit         string `json:"unit"`
			InExperiment bool   `json:"in_experiment"`
			Holdout      *struct {
				InHoldout bool `json:"in_holdout"`
			} `json:"holdout"`
		} `json:"assignments"`
	}
	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		okCalls atomic.Int64
		late    atomic.Int64 // answers received after SIGTERM: requests drained in flight
		sent    atomic.Bool  // SIGTERM was sent
		wg      sync.WaitGroup
	)
	const workers, perCall = 6, 200
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				units := make([]string, perCall)
				for j := range units {
					units[j] = fmt.Sprintf("w%d-i%d-u%d", w, i, j)
				}
				var got []string
				if i%2 == 0 {
					var ans assignAnswer
					if _, err := call("POST", "/v1/assign", key.Secret, map[string]any{"experiment": "checkout", "units": units, "expose": true}, &ans); err != nil {
						return
					}
					for _, a := range ans.Assignments {
						if a.InExperiment || (a.Holdout != nil && a.Holdout.InHoldout) {
							got = append(got, a.Unit)
						}
					}
				} else {
					xs := make([]map[string]any, len(units))
					for j, u := range units {
						xs[j] = map[string]any{"experiment": "checkout", "unit": u, "variant": []string{"control", "treatment"}[j%2]}
					}
					var acc struct {
						Accepted int `json:"accepted"`
					}
					if _, err := call("POST", "/v1/exposures", key.Secret, map[string]any{"exposures": xs}, &acc); err != nil {
						return
					}
					if acc.Accepted != len(units) {
						t.Errorf("accepted %d of %d", acc.Accepted, len(units))
					}
					got = units
				}
				n := okCalls.Add(1)
				if sent.Load() {
					late.Add(1)
				}
				mu.Lock()
				for _, u := range got {
					acked[u] = true
				}
				if sig == syscall.SIGKILL && n == 40 {
					// Kill with this answer just received and others in flight.
					sent.Store(true)
					_ = cmd.Process.Kill()
				}
				mu.Unlock()
			}
		}()
	}
	// Let traffic flow, then stop the server in the middle of it.
	deadline := time.Now().Add(10 * time.Second)
	for okCalls.Load() < 40 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if sig == syscall.SIGTERM {
		sent.Store(true)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	select {
	case err := <-done:
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("lift serve exited with %v; stderr:\n%s", err, stderr.String())
		}
		if sig == syscall.SIGKILL && err == nil {
			t.Fatalf("lift serve exited cleanly, want killed")
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("lift serve did not exit within 60s of %v; stderr:\n%s", sig, stderr.String())
	}
	if okCalls.Load() < 40 || len(acked) == 0 {
		t.Fatalf("only %d calls succeeded before the shutdown", okCalls.Load())
	}

	// Every acknowledged exposure is in the file.
	ctx := context.Background()
	db, err := store.Open(ctx, dbPath, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.SQL().QueryContext(ctx, `SELECT unit FROM exposures WHERE experiment = 'checkout'`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		stored[u] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for u := range acked {
		if !stored[u] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged exposures are missing from the file", missing, len(acked))
	}
	t.Logf("%d calls acknowledged (%d answered after %v), %d exposures acknowledged, %d stored",
		okCalls.Load(), late.Load(), sig, len(acked), len(stored))
}

// e2eAdminKey is the admin key the servers of these tests start with (LIFT_ADMIN_KEY).
const e2eAdminKey = "lift_E2EADMINKEYE2EADMINKEY000000"

// buildLift builds the lift binary into a temporary folder and returns its path.
func buildLift(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lift")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// liftServer is a "lift serve" process started by a test.
type liftServer struct {
	base    string   // http://host:port
	printed []string // stdout lines up to the address line
	cmd     *exec.Cmd
	done    chan error // receives the exit status
	stderr  *bytes.Buffer
	client  *http.Client
}

// startServe runs bin serve on a free port with e2eAdminKey as the admin key and
// the given flags, and returns once it prints its address. The process is killed
// at the end of the test unless the test stopped it.
func startServe(t testing.TB, bin string, flags ...string) *liftServer {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, flags...)
	s := &liftServer{cmd: exec.Command(bin, args...), done: make(chan error, 1), stderr: &bytes.Buffer{},
		client: &http.Client{Timeout: 20 * time.Second}}
	s.cmd.Env = append(os.Environ(), "LIFT_ADMIN_KEY="+e2eAdminKey)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		line := lines.Text()
		s.printed = append(s.printed, line)
		if rest, ok := strings.CutPrefix(line, "lift serving on "); ok {
			s.base, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		s.done <- s.cmd.Wait()
	}()
	if s.base == "" {
		<-s.done
		t.Fatalf("the server printed no address; stderr:\n%s", s.stderr.String())
	}
	return s
}

// call sends body as JSON with key and decodes a 2xx answer into out. A non-2xx
// answer is an error carrying its status and body.
func (s *liftServer) call(method, path, key string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, r)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return 0, fmt.Errorf("decoding %s: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

// mustCall is call with the admin key, failing the test on an error.
func (s *liftServer) mustCall(t testing.TB, method, path string, body any, out any) {
	t.Helper()
	if _, err := s.call(method, path, e2eAdminKey, body, out); err != nil {
		t.Fatal(err)
	}
}

// stop sends SIGTERM and waits for the exit, which must be status 0.
func (s *liftServer) stop(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("lift serve exited with %v; stderr:\n%s", err, s.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("lift serve did not exit within 60s of SIGTERM; stderr:\n%s", s.stderr.String())
	}
}

// TestServePrivateFilesAndWebhooks starts lift serve on a fresh file: the
// database and its write-ahead log are created readable by their owner only, a
// monitor's webhook to a loopback address is refused by default, and allowed with
// --webhook-allow.
func TestServePrivateFilesAndWebhooks(t *testing.T) {
	bin := buildLift(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "lift.duckdb")
	srv := startServe(t, bin, "--db", path)
	srv.mustCall(t, "POST", "/v1/holdouts", map[string]any{"name": "global", "fraction": 0.05}, nil)
	for _, f := range []string{path, path + ".wal"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", filepath.Base(f), fi.Mode().Perm())
		}
	}
	hook := map[string]any{"name": "watch", "kind": "monitor", "every": "1h", "params": map[string]any{"webhook": "http://127.0.0.1:9/hook"}}
	status, err := srv.call("POST", "/v1/jobs", e2eAdminKey, hook, nil)
	if status != 400 || !strings.Contains(err.Error(), "params.webhook") || !strings.Contains(err.Error(), "--webhook-allow") {
		t.Errorf("a loopback webhook by default: %d %v, want 400 naming params.webhook and --webhook-allow", status, err)
	}
	srv.stop(t)

	srv = startServe(t, bin, "--db", path, "--webhook-allow", "127.0.0.1")
	srv.mustCall(t, "POST", "/v1/jobs", hook, nil)
	srv.stop(t)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("after a restart: %v, %v", fi.Mode(), err)
	}
}
