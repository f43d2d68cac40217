package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	const machine = 8 << 30
	cases := []struct {
		in   string
		want int64 // -1: an error
	}{
		{"50%", 4 << 30},
		{"12.5%", 1 << 30},
		{"4GiB", 4 << 30},
		{"512MiB", 512 << 20},
		{"2GB", 2e9},
		{"1073741824", 1 << 30},
		{"100MB", 1e8},
		{"0%", -1},
		{"150%", -1},
		{"1MiB", -1}, // under the 16 MiB floor
		{"lots", -1},
		{"-4GiB", -1},
		{"", -1},
	}
	for _, c := range cases {
		got, err := parseMemoryLimit(c.in, machine)
		if c.want < 0 {
			if err == nil {
				t.Errorf("%q: %d, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestMemTotal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(p, []byte("MemFree:  1000 kB\nMemTotal:       16318412 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := memTotal(p); got != 16318412<<10 {
		t.Errorf("memTotal = %d, want %d", got, 16318412<<10)
	}
	if got := memTotal(filepath.Join(t.TempDir(), "absent")); got != 0 {
		t.Errorf("memTotal of an absent file = %d, want 0", got)
	}
	if m := machineMemory(); m <= 0 {
		t.Errorf("machineMemory() = %d on this machine, want a positive size", m)
	}
}
