//go:build linux

package scorer

import (
	"bytes"
	"testing"
)

// TestTopKCompiles compiles the embedded top-k kernels with NVRTC, which needs no
// GPU: to PTX for the oldest and newest virtual architectures the backend asks for,
// and, where this NVRTC can, to a CUBIN for sm_90 (H100/H200), so that a kernel that
// does not compile is found on any machine with libnvrtc (Debian: libnvrtc11.2 in
// non-free) rather than on the GPU machine. Skipped, saying why, without libnvrtc.
func TestTopKCompiles(t *testing.T) {
	lib, path, err := loadLib("nvrtc", libDirs(nil))
	if err != nil {
		if requireCUDA() {
			t.Fatal(err)
		}
		t.Skipf("NVRTC unavailable, test skipped: %v", err)
	}
	nv := &nvrtcAPI{}
	if err := nv.bind(lib); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Logf("NVRTC: %s", path)
	for _, arch := range []string{"compute_75", "compute_90"} {
		ptx, err := compileCUDA(nv, topkSource, arch, false)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		for _, fn := range []string{"topk_partial_16", "topk_partial_64", "topk_partial_256", "topk_merge_16", "topk_merge_64", "topk_merge_256", "scores_tile"} {
			if !bytes.Contains(ptx, []byte(".entry "+fn)) {
				t.Errorf("%s: the PTX has no entry %s", arch, fn)
			}
		}
	}
	if nv.nvrtcGetCUBIN == nil {
		t.Logf("this NVRTC has no nvrtcGetCUBIN: the CUBIN path is not exercised")
		return
	}
	cubin, err := compileCUDA(nv, topkSource, "sm_90", true)
	if err != nil {
		t.Fatalf("sm_90 CUBIN: %v", err)
	}
	if !bytes.HasPrefix(cubin, []byte("\x7fELF")) {
		t.Errorf("the sm_90 CUBIN is not an ELF image (%d bytes, starts %q)", len(cubin), cubin[:min(4, len(cubin))])
	}
	// An architecture NVRTC does not know is refused with NVRTC_ERROR_INVALID_OPTION,
	// which is what compilePTX falls back on.
	if _, err := compileCUDA(nv, topkSource, "compute_9999", false); err == nil {
		t.Errorf("compute_9999 compiled")
	} else if ce, ok := err.(*nvrtcError); !ok || ce.result != nvrtcErrorInvalidOption {
		t.Errorf("compute_9999: %v, want NVRTC_ERROR_INVALID_OPTION (%d)", err, nvrtcErrorInvalidOption)
	}
	if _, err := compilePTX(nv, topkSource, 9999); err != nil {
		t.Errorf("compilePTX for an unknown newer device should fall back to an older architecture: %v", err)
	}
}
