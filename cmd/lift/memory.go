package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/liftlab/lift/experiment"
)

// machineMemory returns the memory this process may use in bytes: the
// machine's (MemTotal in /proc/meminfo), or the cgroup's limit when it is lower
// (cgroup v2 memory.max, v1 memory.limit_in_bytes); 0 when none can be read.
func machineMemory() int64 {
	total := memTotal("/proc/meminfo")
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
		if err != nil || v <= 0 { // "max": no limit
			continue
		}
		if total == 0 || v < total {
			total = v
		}
	}
	return total
}

// memTotal reads MemTotal (in bytes) from a meminfo file, 0 when absent.
func memTotal(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// parseMemoryLimit reads --duckdb-memory-limit: a percentage of machine bytes
// ("50%"), a size with a unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB) or bytes. A
// percentage with machine unknown (0) gives 0: DuckDB's own default.
func parseMemoryLimit(s string, machine int64) (int64, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(f > 0 && f <= 100) {
			return 0, experiment.Errorf("a percentage must be in (0, 100], got %q", s)
		}
		return int64(float64(machine) * f / 100), nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || !(f > 0) {
		return 0, experiment.Errorf("must be a size such as 4GiB, 512MiB or 1073741824, or a percentage such as 50%%, got %q", s)
	}
	v := f * float64(mult)
	if v < 16<<20 {
		return 0, experiment.Errorf("must be at least 16MiB, got %q", s)
	}
	if v > 1<<62 {
		return 0, experiment.Errorf("is too large: %q", s)
	}
	return int64(v), nil
}
