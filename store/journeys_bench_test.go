package store

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkDecisionLog measures decisions committed per second through the
// group-committing DecisionLog from 64 concurrent callers (each waits for its commit).
func BenchmarkDecisionLog(b *testing.B) {
	db, _ := openTest(b, nil)
	ctx := context.Background()
	l := db.NewDecisionLog(DecisionLogOptions{})
	defer l.Close()
	items := json.RawMessage(`[{"id":"i1","score":1.5,"reason":"because you viewed i9"},{"id":"i2","score":1.2,"reason":"because you viewed i9"}]`)
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := strconv.FormatInt(seq.Add(1), 10)
			if err := l.Log(ctx, Decision{ID: "d" + id, Journey: "home", Experiment: "feed", Unit: "u" + id, Policy: "personalized", Items: items, LatencyMS: 3}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
