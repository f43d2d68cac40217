package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/store"
)

// benchServer runs the API on a real http.Server on 127.0.0.1:0 over a DuckDB
// file with a running experiment (layer, 5% holdout, 50/50) and returns its base
// URL, an ingest key and a client whose pool keeps connections open.
func benchServer(b *testing.B) (string, string, *http.Client) {
	b.Helper()
	ctx := context.Background()
	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.duckdb"), sopt)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.EnsureAdminKey(ctx, testAdminKey); err != nil {
		b.Fatal(err)
	}
	opt := DefaultOptions()
	opt.Store = db
	opt.Logger = slog.New(slog.DiscardHandler)
	srv, err := New(opt)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	b.Cleanup(func() {
		hs.Close()
		db.Close()
	})
	if _, err := db.CreateLayer(ctx, "bench", &experiment.Layer{Name: "site"}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.CreateHoldout(ctx, "bench", &experiment.Holdout{Name: "global", Fraction: 0.05}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.CreateExperiment(ctx, "bench", &experiment.Experiment{Key: "checkout",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.5}, {Name: "treatment", Weight: 0.5}},
		Layer:    "site", LayerRange: &experiment.Range{Start: 0, End: 1}, Holdout: "global"}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.StartExperiment(ctx, "bench", "checkout"); err != nil {
		b.Fatal(err)
	}
	secret, _, err := db.CreateKey(ctx, "bench", "svc", experiment.RoleIngest)
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	return "http://" + ln.Addr().String(), secret, client
}

// post sends a pre-encoded body and reads the whole answer.
func post(b *testing.B, client *http.Client, url, key string, body []byte) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("status %d (%d bytes)", resp.StatusCode, n)
	}
}

// BenchmarkHTTPAssignBatch measures POST /v1/assign with 1,000 units per request
// over loopback, several client goroutines (RunParallel: 4 per GOMAXPROCS), and
// reports units/s. Goal: >= 300,000 units/s with -cpu 2.
func BenchmarkHTTPAssignBatch(b *testing.B) {
	for _, expose := range []bool{false, true} {
		b.Run(fmt.Sprintf("expose=%v", expose), func(b *testing.B) {
			base, key, client := benchServer(b)
			const perRequest = 1000
			bodies := make([][]byte, 64)
			for i := range bodies {
				units := make([]string, perRequest)
				for j := range units {
					units[j] = fmt.Sprintf("user-%d-%d", i, j)
				}
				bodies[i], _ = json.Marshal(assignBatchRequest{Experiment: "checkout", Units: units, Expose: expose})
			}
			var seq atomic.Uint64
			b.SetParallelism(4)
			cpu0 := cpuSeconds()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					post(b, client, base+"/v1/assign", key, bodies[seq.Add(1)%uint64(len(bodies))])
				}
			})
			b.ReportMetric(float64(b.N*perRequest)/b.Elapsed().Seconds(), "units/s")
			b.ReportMetric(float64(b.N*perRequest)/(cpuSeconds()-cpu0), "units/cpu-s")
		})
	}
}

// BenchmarkHTTPExposures measures POST /v1/exposures: decoding, validation and
// the committed write into DuckDB through the store's writer, and reports
// exposures/s. Goal: >= 500,000 exposures/s with -cpu 2. The clients are
// LIFT_BENCH_PARALLELISM (default 4) goroutines per GOMAXPROCS, each posting in
// a closed loop.
func BenchmarkHTTPExposures(b *testing.B) {
	par := benchEnvInt("LIFT_BENCH_PARALLELISM", 4)
	for _, perRequest := range []int{1000, 10_000} {
		b.Run(fmt.Sprintf("batch=%d", perRequest), func(b *testing.B) {
			base, key, client := benchServer(b)
			ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			bodies := make([][]byte, 16)
			for i := range bodies {
				xs := make([]exposureIn, perRequest)
				for j := range xs {
					xs[j] = exposureIn{Experiment: "checkout", Unit: fmt.Sprintf("user-%d-%d", i, j),
						Variant: []string{"control", "treatment"}[j%2], TS: ts.Add(time.Duration(j) * time.Millisecond)}
				}
				bodies[i], _ = json.Marshal(exposureBatch{Exposures: xs})
			}
			var seq atomic.Uint64
			b.SetParallelism(par)
			cpu0 := cpuSeconds()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					post(b, client, base+"/v1/exposures", key, bodies[seq.Add(1)%uint64(len(bodies))])
				}
			})
			b.ReportMetric(float64(b.N*perRequest)/b.Elapsed().Seconds(), "exposures/s")
			b.ReportMetric(float64(b.N*perRequest)/(cpuSeconds()-cpu0), "exposures/cpu-s")
		})
	}
}

// cpuSeconds is the CPU time (user + system) the process has used so far, all
// threads (Go and DuckDB) together. Throughput per CPU-second does not depend on
// how busy the rest of the machine is; times the cores available it bounds the
// throughput on a dedicated machine.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
