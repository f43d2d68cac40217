package store

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

// BenchmarkLogExposures measures exposure ingest through LogExposures: batches of
// 1,000 rows from G concurrent goroutines, each call waiting for its group's
// commit, into a file with W writer lanes, for the append strategies (coded: the
// query appender with per-group codes, the default; csv: a staging file read by
// read_csv; rows:
// the table appender; values: multi-row INSERT ... VALUES). One op is one batch;
// exposures/s is the figure to compare with the goal of 500,000/s. See
// docs/bench/store.md.
func BenchmarkLogExposures(b *testing.B) {
	cases := []struct {
		name                      string
		mode                      appendMode
		goroutines, writers, thrd int
	}{
		{"csv/G=64/W=1", appendCSV, 64, 1, 0},
		{"csv/G=64/W=1/threads=1", appendCSV, 64, 1, 1},
		{"coded/G=8/W=1", appendCoded, 8, 1, 0},
		{"coded/G=16/W=1", appendCoded, 16, 1, 0},
		{"coded/G=64/W=1", appendCoded, 64, 1, 0},
		{"coded/G=256/W=1", appendCoded, 256, 1, 0},
		{"coded/G=64/W=2", appendCoded, 64, 2, 0},
		{"coded/G=64/W=1/threads=1", appendCoded, 64, 1, 1},
		{"rows/G=16/W=1", appendRows, 16, 1, 0},
		{"rows/G=64/W=1", appendRows, 64, 1, 0},
		{"values/G=64/W=1", appendValues, 64, 1, 0},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { benchLog(b, c.mode, c.goroutines, c.writers, c.thrd) })
	}
}

func benchLog(b *testing.B, mode appendMode, goroutines, writers, threads int) {
	ctx := context.Background()
	opt := DefaultOptions()
	opt.Writers = writers
	opt.Threads = threads
	path := b.TempDir() + "/lift.duckdb"
	db, err := Open(ctx, path, opt)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.w.mode = mode
	setupExposures(b, db)
	const rows = 1000
	ts := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	batches := make([][]experiment.Exposure, 64) // prepared outside the timer
	for i := range batches {
		batches[i] = batch(fmt.Sprintf("b%d", i), rows, ts)
	}
	var next atomic.Int64
	b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if err := db.LogExposures(ctx, batches[i%int64(len(batches))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	n := float64(b.N) * rows
	b.ReportMetric(n/elapsed.Seconds(), "exposures/s")
	// CPU time of the whole process (Go and DuckDB threads) per exposure: on a
	// shared machine this is steadier than wall time; 1e6/(it) is the rate one
	// dedicated core would sustain.
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/exposure")
}

// cpuTime returns the user plus system CPU time consumed by this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExposureGroupPhases splits the cost of one group commit (64 batches of
// 1,000 rows, one lane, no queue) into its phases: appending the rows inside the
// transaction, and the COMMIT (write-ahead log, and DuckDB's automatic checkpoint
// whenever the log passes its threshold; the final CHECKPOINT is counted too).
// Each phase reports wall and CPU nanoseconds per row. "floor" inserts rows that
// DuckDB generates itself (INSERT ... SELECT FROM range): no strategy of ours can
// append for less. See docs/bench/store.md.
func BenchmarkExposureGroupPhases(b *testing.B) {
	const floor appendMode = -1
	cases := []struct {
		name    string
		mode    appendMode
		threads int
	}{
		{"coded", appendCoded, 0},
		{"csv", appendCSV, 0},
		{"rows", appendRows, 0},
		{"floor", floor, 0},
		{"coded/threads=1", appendCoded, 1},
		{"csv/threads=1", appendCSV, 1},
		{"floor/threads=1", floor, 1},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			opt := DefaultOptions()
			opt.Threads = c.threads
			db, err := Open(ctx, b.TempDir()+"/lift.duckdb", opt)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			setupExposures(b, db)
			ts := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
			group := make([][]experiment.Exposure, 64)
			for i := range group {
				rows, err := db.prepareExposures(ctx, batch(fmt.Sprintf("b%d", i), 1000, ts))
				if err != nil {
					b.Fatal(err)
				}
				group[i] = rows
			}
			w, l := db.w, db.w.lanes[0]
			var appendWall, appendCPU, commitWall, commitCPU time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
					b.Fatal(err)
				}
				t0, c0 := time.Now(), cpuTime()
				switch c.mode {
				case floor:
					_, err = l.conn.ExecContext(ctx, `INSERT INTO exposures SELECT 'btn', 'b'||(i//1000)||'-'||(i%1000),
						'control', make_timestamptz(1772409600000000), false, 1, 'client', i FROM range(64000) t(i)`)
				case appendCSV:
					err = w.appendCSV(ctx, l, group, w.seqs.reserve(64000))
				case appendCoded:
					err = w.appendCoded(l, group, w.seqs.reserve(64000))
				default:
					err = w.appendRows(l, group, w.seqs.reserve(64000))
				}
				if err != nil {
					b.Fatal(err)
				}
				t1, c1 := time.Now(), cpuTime()
				if _, err := l.conn.ExecContext(ctx, "COMMIT"); err != nil {
					b.Fatal(err)
				}
				t2, c2 := time.Now(), cpuTime()
				appendWall += t1.Sub(t0)
				appendCPU += c1 - c0
				commitWall += t2.Sub(t1)
				commitCPU += c2 - c1
			}
			t1, c1 := time.Now(), cpuTime()
			if _, err := l.conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
				b.Fatal(err)
			}
			commitWall += time.Since(t1)
			commitCPU += cpuTime() - c1
			b.StopTimer()
			rows := float64(b.N) * 64_000
			b.ReportMetric(float64(appendWall.Nanoseconds())/rows, "append-ns/row")
			b.ReportMetric(float64(appendCPU.Nanoseconds())/rows, "append-cpu-ns/row")
			b.ReportMetric(float64(commitWall.Nanoseconds())/rows, "commit-ns/row")
			b.ReportMetric(float64(commitCPU.Nanoseconds())/rows, "commit-cpu-ns/row")
		})
	}
}
