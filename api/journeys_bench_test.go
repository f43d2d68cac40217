package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/journey"
	"github.com/liftlab/lift/scorer"
	"github.com/liftlab/lift/store"
)

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkJourneyDecideHTTP is the journey speed scenario: a catalog of
// LIFT_BENCH_ITEMS (default 1,000,000) items × 64 dimensions served by the cpu
// scorer behind the HTTP API, and an open-loop load generator that sends
// LIFT_BENCH_RATE (default 500) decisions per second for LIFT_BENCH_SECONDS
// (default 10) through 64 concurrent HTTP clients. 90% of units are in the
// personalized arm; half of them are known to the model, half are folded in from
// 3 recent items. Latency is measured from each request's scheduled send time,
// so a server that falls behind is charged for the queueing (no coordinated
// omission). LIFT_BENCH_BATCH (default 64, lift serve's) is the Batcher's largest batch and
// LIFT_BENCH_WORKERS (default 0: one per core) the cpu scorer's workers. Run once:
//
//	go test ./api -run '^$' -bench JourneyDecideHTTP -benchtime 1x -timeout 30m
func BenchmarkJourneyDecideHTTP(b *testing.B) {
	items := benchEnvInt("LIFT_BENCH_ITEMS", 1_000_000)
	rate := benchEnvInt("LIFT_BENCH_RATE", 500)
	seconds := benchEnvInt("LIFT_BENCH_SECONDS", 10)
	maxBatch := benchEnvInt("LIFT_BENCH_BATCH", 64)
	const clients, d, users = 64, 64, 10_000
	ctx := context.Background()

	rng := rand.New(rand.NewPCG(1, 2))
	m := &scorer.Model{Dim: d, Meta: scorer.Metadata{Name: "bench", Version: "1"},
		ItemIDs: make([]string, items), Items: make([]float32, items*d), UserIDs: make([]string, users), Users: make([]float32, users*d)}
	for i := range items {
		m.ItemIDs[i] = "i" + strconv.Itoa(i)
	}
	for i := range m.Items {
		m.Items[i] = rng.Float32() - 0.5
	}
	for u := range users {
		m.UserIDs[u] = "u-" + strconv.Itoa(u)
	}
	for i := range m.Users {
		m.Users[i] = rng.Float32() - 0.5
	}
	if err := m.Validate(); err != nil {
		b.Fatal(err)
	}
	m.PrepareFoldIn()
	cpu, err := scorer.NewCPU(m, scorer.Options{Workers: benchEnvInt("LIFT_BENCH_WORKERS", 0)})
	if err != nil {
		b.Fatal(err)
	}
	ms, err := journey.NewModels(scorer.BatchOptions{MaxBatch: maxBatch, MaxWait: 2 * time.Millisecond}, &journey.Model{Name: "bench", Model: m, Scorer: cpu})
	if err != nil {
		b.Fatal(err)
	}
	defer ms.Close()

	sopt := store.DefaultOptions()
	sopt.Logger = slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "lift.duckdb"), sopt)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.EnsureAdminKey(ctx, testAdminKey); err != nil {
		b.Fatal(err)
	}
	if _, err := db.CreateExperiment(ctx, "b", &experiment.Experiment{Key: "feed",
		Variants: []experiment.Variant{{Name: "control", Weight: 0.1}, {Name: "personalized", Weight: 0.9}}}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.StartExperiment(ctx, "b", "feed"); err != nil {
		b.Fatal(err)
	}
	if _, err := db.CreateJourney(ctx, "b", &experiment.Journey{Key: "home", Experiment: "feed", Model: "bench", K: 10,
		ControlPolicy: experiment.ControlPolicy{Kind: experiment.ControlFixed, Items: []string{"i1", "i2", "i3"}}}); err != nil {
		b.Fatal(err)
	}
	dec := journey.New(db, ms, journey.Options{Logger: slog.New(slog.DiscardHandler)})
	defer dec.Close()
	opt := DefaultOptions()
	opt.Store, opt.Logger, opt.Journeys = db, slog.New(slog.DiscardHandler), dec
	srv, err := New(opt)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}

	bodies := make([][]byte, 4096)
	for i := range bodies {
		unit := "u-" + strconv.Itoa(rng.IntN(users))
		var recent []string
		if i%2 == 1 {
			unit = "new-" + strconv.Itoa(i)
			for range 3 {
				recent = append(recent, m.ItemIDs[rng.IntN(items)])
			}
		}
		bodies[i], _ = json.Marshal(map[string]any{"unit": unit, "context": map[string]any{"recent_items": recent, "consent_tier": 2}})
	}
	// Warm-up (not measured): the first scoring pass pages the item matrix in.
	for i := range 2 * clients {
		req, _ := http.NewRequest("POST", hs.URL+"/v1/journeys/home/decide", bytes.NewReader(bodies[i]))
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	type result struct {
		lat    time.Duration
		policy string
		err    bool
	}
	for b.Loop() {
		total := rate * seconds
		jobs := make(chan time.Time, total)
		results := make([]result, total)
		var next int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var d journey.Decision
				for due := range jobs {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					req, _ := http.NewRequest("POST", hs.URL+"/v1/journeys/home/decide", bytes.NewReader(bodies[i%len(bodies)]))
					req.Header.Set("Authorization", "Bearer "+testAdminKey)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					r := result{err: err != nil}
					if err == nil {
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						r.err = resp.StatusCode != 200 || json.Unmarshal(body, &d) != nil
						r.policy = d.Policy
					}
					r.lat = time.Since(due)
					results[i] = r
				}
			}()
		}
		start := time.Now()
		interval := time.Second / time.Duration(rate)
		for i := range total {
			due := start.Add(time.Duration(i) * interval)
			time.Sleep(time.Until(due))
			jobs <- due
		}
		close(jobs)
		wg.Wait()
		elapsed := time.Since(start)

		var all, pers []float64
		errs, fallbacks := 0, 0
		for _, r := range results {
			if r.err {
				errs++
				continue
			}
			ms := float64(r.lat.Microseconds()) / 1000
			all = append(all, ms)
			if r.policy == experiment.PolicyPersonalized {
				pers = append(pers, ms)
			}
			if r.policy == experiment.PolicyFallback {
				fallbacks++
			}
		}
		slices.Sort(all)
		slices.Sort(pers)
		q := func(x []float64, p float64) float64 {
			if len(x) == 0 {
				return 0
			}
			return x[min(len(x)-1, int(p*float64(len(x))))]
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "decisions/s")
		b.ReportMetric(float64(len(pers))/elapsed.Seconds(), "users-scored/s")
		b.ReportMetric(q(all, 0.5), "p50-ms")
		b.ReportMetric(q(all, 0.99), "p99-ms")
		b.ReportMetric(q(pers, 0.5), "personalized-p50-ms")
		b.ReportMetric(q(pers, 0.99), "personalized-p99-ms")
		b.ReportMetric(float64(fallbacks)/float64(len(all)), "fallback-rate")
		b.ReportMetric(float64(errs), "errors")
	}
	g := dec.Guardrails()
	if len(g) == 1 {
		b.Logf("server-side decision latency (last 4096 decisions) p50 %.1f ms p95 %.1f ms p99 %.1f ms; fallbacks %v", g[0].LatencyP50, g[0].LatencyP95, g[0].LatencyP99, g[0].Fallbacks)
	}
}
