package scorer

import (
	"context"
	_ "embed"
)

// topkSource is the CUDA C source of the top-k kernels (and the fallback GEMM),
// compiled at run time by NVRTC.
//
//go:embed topk.cu
var topkSource string

// cudaMaxK is the largest k the cuda backend serves (its per-thread lists are
// sized at compile time: 16, 64 or 256).
const cudaMaxK = 256

// NewCUDA returns the cuda backend over m: the item matrix (and bias) copied once
// into GPU memory, scores by cuBLAS SGEMM (a built-in kernel when cuBLAS is not
// installed), top-k on the GPU, and only k results per query copied back. The
// CUDA driver (libcuda), cuBLAS and NVRTC are loaded at run time; without them or
// without a device, NewCUDA returns an error of kind experiment.Unavailable.
// Options.CUDALibDirs lists extra folders to look for the libraries in.
func NewCUDA(ctx context.Context, m *Model, opts Options) (Scorer, error) {
	opts.fill()
	return newCUDA(ctx, m, opts)
}
