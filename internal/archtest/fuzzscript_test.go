package archtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestFuzzScriptClassifier: .ci/fuzz reruns a fuzz target only when its log
// shows nothing but Go's fuzz-coordinator deadline race (go.dev/issue/75804);
// every real failure fails the run. The first log is CI's own output for that
// race (go1.26.8, FuzzParseDuration at -fuzztime 5s); the others are the
// shapes go test prints for a failing input and for a panicking target.
func TestFuzzScriptClassifier(t *testing.T) {
	script, err := filepath.Abs("../../.ci/fuzz")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, log string
		race      bool
	}{
		{"deadline race", `fuzz: elapsed: 0s, gathering baseline coverage: 109/109 completed, now fuzzing with 2 workers
fuzz: elapsed: 5s, execs: 246844 (57419/sec), new interesting: 13 (total: 122)
--- FAIL: FuzzParseDuration (5.09s)
    context deadline exceeded
FAIL
exit status 1
FAIL	github.com/liftlab/lift/experiment	5.101s
`, true},
		{"failing input", `fuzz: elapsed: 2s, execs: 1000 (500/sec), new interesting: 1 (total: 10)
--- FAIL: FuzzParseDuration (2.01s)
    --- FAIL: FuzzParseDuration (0.00s)
        duration_test.go:41: ParseDuration("9999999d") = -1h; want an error

    Failing input written to testdata/fuzz/FuzzParseDuration/3f2a
    To re-run:
    go test -run=FuzzParseDuration/3f2a
FAIL
`, false},
		{"panic", `--- FAIL: FuzzLoad (0.10s)
    --- FAIL: FuzzLoad (0.00s)
        testing.go:1591: panic: runtime error: index out of range [3] with length 3
    context deadline exceeded
FAIL
`, false},
		{"other failure", "--- FAIL: FuzzHash (0.00s)\n    hash_test.go:12: seed corpus: wrong hash\nFAIL\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(log, []byte(c.log), 0o644); err != nil {
				t.Fatal(err)
			}
			err := exec.Command("bash", script, "--classify", log).Run()
			if race := err == nil; race != c.race {
				t.Errorf("classified as deadline race: %v (%v); want %v", race, err, c.race)
			}
		})
	}
}
