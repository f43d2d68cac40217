package assign_test

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// rusageThread is RUSAGE_THREAD of getrusage(2): the calling thread's usage.
const rusageThread = 1

// threadCPU returns the CPU time (user + system) the calling OS thread has used.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// cpuPerOp locks the benchmark goroutine to its thread and returns a function,
// to defer, that reports the thread's CPU time per operation as "cpu-ns/op",
// next to the wall-clock ns/op. On a shared machine wall time also counts the
// time the thread waited for a core; CPU time does not, which makes it the
// steadier of the two figures.
func cpuPerOp(b *testing.B) (stop func()) {
	runtime.LockOSThread()
	start, ok := threadCPU()
	return func() {
		end, ok2 := threadCPU()
		runtime.UnlockOSThread()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}
