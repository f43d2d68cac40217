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

// TestServeEndToEnd builds the binary, runs "lift serve" on a free port,
// registers an experiment over HTTP, assigns with expose=true and posts
// exposures from several goroutines, sends SIGTERM while requests are in flight,
// waits for exit status 0, reopens the DuckDB file and checks that every
// acknowledged exposure is in it.
func TestServeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "lift")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dbPath := filepath.Join(dir, "lift.duckdb")
	const adminKey = "lift_E2EADMINKEYE2EADMINKEY000000"
	cmd := exec.Command(bin, "serve", "--db", dbPath, "--addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "LIFT_ADMIN_KEY="+adminKey)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	lines := bufio.NewScanner(stdout)
	base := ""
	for lines.Scan() {
		line := lines.Text()
		if strings.Contains(line, "Bootstrap admin key") {
			t.Errorf("printed a bootstrap key although LIFT_ADMIN_KEY was set: %q", line)
		}
		if rest, ok := strings.CutPrefix(line, "lift serving on "); ok {
			base, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	if base == "" {
		t.Fatalf("the server printed no address; stderr:\n%s", stderr.String())
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		done <- cmd.Wait()
	}()

	client := &http.Client{Timeout: 20 * time.Second}
	call := func(method, path, key string, body any, out any) (int, error) {
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, r)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(b, out); err != nil {
				return 0, fmt.Errorf("decoding %s: %w", b, err)
			}
		}
		if resp.StatusCode >= 300 {
			return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, nil
	}
	mustCall := func(method, path string, body any, out any) {
		t.Helper()
		if _, err := call(method, path, adminKey, body, out); err != nil {
			t.Fatal(err)
		}
	}
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
				okCalls.Add(1)
				if sent.Load() {
					late.Add(1)
				}
				mu.Lock()
				for _, u := range got {
					acked[u] = true
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
	sent.Store(true)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lift serve exited with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("lift serve did not exit within 60s of SIGTERM; stderr:\n%s", stderr.String())
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
	t.Logf("%d calls acknowledged (%d answered after SIGTERM), %d exposures acknowledged, %d stored",
		okCalls.Load(), late.Load(), len(acked), len(stored))
}
