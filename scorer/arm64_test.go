//go:build amd64 && linux

package scorer

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestArm64Kernel runs the kernel tests of an arm64 build of this package under
// qemu-aarch64 (Debian: qemu-user and libc6-arm64-cross, which .ci/run installs),
// where the scorer relies on the Go compiler fusing float32 a*b + c into FMADDS for
// its canonical FMA order (fma_arm64.go). TestFMA32 there fails if it does not.
// Skipped, saying why, without qemu or the arm64 C library.
func TestArm64Kernel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and emulates an arm64 test binary; skipped with -short")
	}
	qemu, err := exec.LookPath("qemu-aarch64")
	if err != nil {
		t.Skip("qemu-aarch64 not installed (Debian: qemu-user), test skipped")
	}
	const sysroot = "/usr/aarch64-linux-gnu"
	if _, err := os.Stat(filepath.Join(sysroot, "lib", "ld-linux-aarch64.so.1")); err != nil {
		t.Skipf("no arm64 C library in %s (Debian: libc6-arm64-cross), test skipped", sysroot)
	}
	bin := filepath.Join(t.TempDir(), "scorer-arm64.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("arm64 build: %v\n%s", err, out)
	}
	run := exec.Command(qemu, "-L", sysroot, bin, "-test.run", "^(TestFMA32|TestKernelsMatchDotLanes|TestFirstNotBelow|TestCPUMatchesNaive|TestCPUTiesByItem)$", "-test.v")
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("arm64 tests under qemu: %v\n%s", err, out)
	}
	t.Logf("arm64 under qemu:\n%s", out)
}
