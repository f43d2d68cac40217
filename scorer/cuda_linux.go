//go:build linux

package scorer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/liftlab/lift/experiment"
)

// CUDA driver API constants (cuda.h).
const (
	cuDevAttrMultiprocessorCount = 16
	cuDevAttrComputeCapMajor     = 75
	cuDevAttrComputeCapMinor     = 76
	cublasOpN                    = 0
	cublasOpT                    = 1
	cudaBlock                    = 256 // threads per top-k block; the kernels assume it
)

// driverAPI holds the libcuda entry points the backend uses. CUresult is an int.
type driverAPI struct {
	cuInit                       func(flags uint32) int32
	cuGetErrorName               func(res int32, name **byte) int32
	cuDeviceGetCount             func(n *int32) int32
	cuDeviceGet                  func(dev *int32, ordinal int32) int32
	cuDeviceGetName              func(name *byte, size int32, dev int32) int32
	cuDeviceGetAttribute         func(v *int32, attr int32, dev int32) int32
	cuDevicePrimaryCtxRetain     func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease_v2 func(dev int32) int32
	cuCtxSetCurrent              func(ctx uintptr) int32
	cuCtxSynchronize             func() int32
	cuMemAlloc_v2                func(ptr *uint64, size uint64) int32
	cuMemFree_v2                 func(ptr uint64) int32
	cuMemcpyHtoD_v2              func(dst uint64, src unsafe.Pointer, size uint64) int32
	cuMemcpyDtoH_v2              func(dst unsafe.Pointer, src uint64, size uint64) int32
	cuModuleLoadData             func(mod *uintptr, image unsafe.Pointer) int32
	cuModuleUnload               func(mod uintptr) int32
	cuModuleGetFunction          func(f *uintptr, mod uintptr, name string) int32
	cuLaunchKernel               func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32
}

// blasAPI holds the cuBLAS entry points (cublasStatus_t is an int).
type blasAPI struct {
	cublasCreate_v2  func(h *uintptr) int32
	cublasDestroy_v2 func(h uintptr) int32
	cublasSgemm_v2   func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uint64, lda int32, b uint64, ldb int32, beta *float32, c uint64, ldc int32) int32
}

// nvrtcAPI holds the NVRTC entry points (nvrtcResult is an int).
type nvrtcAPI struct {
	nvrtcCreateProgram     func(prog *uintptr, src string, name string, nHeaders int32, headers unsafe.Pointer, names unsafe.Pointer) int32
	nvrtcCompileProgram    func(prog uintptr, nOpts int32, opts unsafe.Pointer) int32
	nvrtcGetPTXSize        func(prog uintptr, size *uint64) int32
	nvrtcGetPTX            func(prog uintptr, ptx *byte) int32
	nvrtcGetProgramLogSize func(prog uintptr, size *uint64) int32
	nvrtcGetProgramLog     func(prog uintptr, log *byte) int32
	nvrtcDestroyProgram    func(prog *uintptr) int32
	// Optional (NVRTC ≥ 11.1): device code for one real architecture, which a driver
	// older than this NVRTC can still load (PTX it cannot).
	nvrtcGetCUBINSize func(prog uintptr, size *uint64) int32
	nvrtcGetCUBIN     func(prog uintptr, cubin *byte) int32
}

// libNames are the sonames tried for each library, newest first.
var libNames = map[string][]string{
	"cuda":   {"libcuda.so.1", "libcuda.so"},
	"cublas": {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"},
	"nvrtc":  {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so.11.1", "libnvrtc.so"},
}

var libTitle = map[string]string{"cuda": "CUDA driver", "cublas": "cuBLAS", "nvrtc": "NVRTC"}

// libDirs returns the folders searched: the caller's, "" (the loader's own search:
// LD_LIBRARY_PATH, ld.so.cache), the CUDA toolkit's and pip wheels' folders.
func libDirs(extra []string) []string {
	dirs := append(append([]string(nil), extra...), "",
		"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/cuda/targets/sbsa-linux/lib",
		"/usr/local/nvidia/lib64", "/usr/local/nvidia/lib",
		"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64")
	for _, pat := range []string{
		"/usr/local/cuda-*/lib64",
		"/usr/local/lib/python3*/*-packages/nvidia/*/lib",
		"/usr/lib/python3/dist-packages/nvidia/*/lib",
		"/opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib",
	} {
		m, _ := filepath.Glob(pat)
		dirs = append(dirs, m...)
	}
	return dirs
}

// loadLib dlopens the first of kind's sonames found in dirs. Companion libraries
// in the same folder (libcublasLt, libnvrtc-builtins) are loaded first so that the
// library's own dependencies resolve.
func loadLib(kind string, dirs []string) (uintptr, string, error) {
	var tried []string
	for _, dir := range dirs {
		for _, name := range libNames[kind] {
			path := name
			if dir != "" {
				path = filepath.Join(dir, name)
				var companions []string
				switch kind {
				case "cublas":
					companions, _ = filepath.Glob(filepath.Join(dir, "libcublasLt.so*"))
				case "nvrtc":
					companions, _ = filepath.Glob(filepath.Join(dir, "libnvrtc-builtins.so*"))
				}
				for _, c := range companions {
					purego.Dlopen(c, purego.RTLD_NOW|purego.RTLD_GLOBAL)
				}
			}
			h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			if err == nil {
				return h, path, nil
			}
			if dir == "" {
				tried = append(tried, name)
			}
		}
	}
	return 0, "", fmt.Errorf("%s library (lib%s) not found (tried %s in the loader's path and the CUDA folders)", libTitle[kind], kind, strings.Join(tried, ", "))
}

// bindAll resolves each field of the struct pointed to by api (func fields named
// after their C symbols) in lib.
func bindAll(lib uintptr, fields map[string]any) error {
	for name, fptr := range fields {
		sym, err := purego.Dlsym(lib, name)
		if err != nil {
			return fmt.Errorf("symbol %s: %v", name, err)
		}
		purego.RegisterFunc(fptr, sym)
	}
	return nil
}

func (a *driverAPI) bind(lib uintptr) error {
	return bindAll(lib, map[string]any{
		"cuInit": &a.cuInit, "cuGetErrorName": &a.cuGetErrorName, "cuDeviceGetCount": &a.cuDeviceGetCount,
		"cuDeviceGet": &a.cuDeviceGet, "cuDeviceGetName": &a.cuDeviceGetName, "cuDeviceGetAttribute": &a.cuDeviceGetAttribute,
		"cuDevicePrimaryCtxRetain": &a.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRelease_v2": &a.cuDevicePrimaryCtxRelease_v2,
		"cuCtxSetCurrent": &a.cuCtxSetCurrent, "cuCtxSynchronize": &a.cuCtxSynchronize,
		"cuMemAlloc_v2": &a.cuMemAlloc_v2, "cuMemFree_v2": &a.cuMemFree_v2,
		"cuMemcpyHtoD_v2": &a.cuMemcpyHtoD_v2, "cuMemcpyDtoH_v2": &a.cuMemcpyDtoH_v2,
		"cuModuleLoadData": &a.cuModuleLoadData, "cuModuleUnload": &a.cuModuleUnload,
		"cuModuleGetFunction": &a.cuModuleGetFunction, "cuLaunchKernel": &a.cuLaunchKernel,
	})
}

func (a *blasAPI) bind(lib uintptr) error {
	return bindAll(lib, map[string]any{
		"cublasCreate_v2": &a.cublasCreate_v2, "cublasDestroy_v2": &a.cublasDestroy_v2, "cublasSgemm_v2": &a.cublasSgemm_v2,
	})
}

func (a *nvrtcAPI) bind(lib uintptr) error {
	if err := bindAll(lib, map[string]any{
		"nvrtcCreateProgram": &a.nvrtcCreateProgram, "nvrtcCompileProgram": &a.nvrtcCompileProgram,
		"nvrtcGetPTXSize": &a.nvrtcGetPTXSize, "nvrtcGetPTX": &a.nvrtcGetPTX,
		"nvrtcGetProgramLogSize": &a.nvrtcGetProgramLogSize, "nvrtcGetProgramLog": &a.nvrtcGetProgramLog,
		"nvrtcDestroyProgram": &a.nvrtcDestroyProgram,
	}); err != nil {
		return err
	}
	if bindAll(lib, map[string]any{"nvrtcGetCUBINSize": &a.nvrtcGetCUBINSize, "nvrtcGetCUBIN": &a.nvrtcGetCUBIN}) != nil {
		a.nvrtcGetCUBINSize, a.nvrtcGetCUBIN = nil, nil
	}
	return nil
}

// cstring reads a NUL-terminated C string.
func cstring(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

// check turns a CUresult into an error naming the call.
func (a *driverAPI) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	var name *byte
	a.cuGetErrorName(r, &name)
	return fmt.Errorf("%s: %s (CUresult %d)", call, cstring(name), r)
}

// dbuf is a device allocation that grows on demand.
type dbuf struct {
	ptr  uint64
	size uint64
}

func (c *cudaScorer) ensure(b *dbuf, size uint64) error {
	size = max(size, 4)
	if b.size >= size {
		return nil
	}
	if b.ptr != 0 {
		c.drv.cuMemFree_v2(b.ptr)
		b.ptr, b.size = 0, 0
	}
	if err := c.drv.check("cuMemAlloc", c.drv.cuMemAlloc_v2(&b.ptr, size)); err != nil {
		return err
	}
	b.size = size
	return nil
}

// cudaScorer is the cuda backend (see NewCUDA).
type cudaScorer struct {
	mu      sync.Mutex
	drv     *driverAPI
	blas    *blasAPI // nil: the built-in scores_tile kernel is used
	dev     int32
	ctx     uintptr
	name    string
	sms     int
	mod     uintptr
	partial map[int]uintptr // by list size 16, 64, 256
	merge   map[int]uintptr
	tile    uintptr
	handle  uintptr
	n, d    int
	bias    bool
	chunk   int // users per GEMM + top-k pass

	dY, dBias, dQ, dS, dExOff, dExItems, dCandS, dCandI, dOutS, dOutI dbuf
	closed                                                            bool
}

var _ Scorer = (*cudaScorer)(nil)

func newCUDA(ctx context.Context, m *Model, opts Options) (s Scorer, err error) {
	const op = "scorer.NewCUDA"
	unavailable := func(err error) error { return experiment.E(op, experiment.Unavailable, err) }
	if err := m.Validate(); err != nil {
		return nil, experiment.E(op, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dirs := libDirs(opts.CUDALibDirs)
	lib, _, err := loadLib("cuda", dirs)
	if err != nil {
		return nil, unavailable(err)
	}
	drv := &driverAPI{}
	if err := drv.bind(lib); err != nil {
		return nil, unavailable(fmt.Errorf("libcuda: %v", err))
	}
	if err := drv.check("cuInit", drv.cuInit(0)); err != nil {
		return nil, unavailable(err)
	}
	var count int32
	if err := drv.check("cuDeviceGetCount", drv.cuDeviceGetCount(&count)); err != nil {
		return nil, unavailable(err)
	}
	if int(count) <= opts.Device {
		return nil, unavailable(fmt.Errorf("CUDA device %d requested, %d present", opts.Device, count))
	}
	c := &cudaScorer{drv: drv, n: m.NItems(), d: m.Dim, bias: m.Bias != nil, partial: map[int]uintptr{}, merge: map[int]uintptr{}}
	if err := drv.check("cuDeviceGet", drv.cuDeviceGet(&c.dev, int32(opts.Device))); err != nil {
		return nil, unavailable(err)
	}
	var nameBuf [256]byte
	drv.cuDeviceGetName(&nameBuf[0], int32(len(nameBuf)), c.dev)
	devName := cstring(&nameBuf[0])
	var sms, major, minor int32
	drv.cuDeviceGetAttribute(&sms, cuDevAttrMultiprocessorCount, c.dev)
	drv.cuDeviceGetAttribute(&major, cuDevAttrComputeCapMajor, c.dev)
	drv.cuDeviceGetAttribute(&minor, cuDevAttrComputeCapMinor, c.dev)
	c.sms = max(int(sms), 1)
	if err := drv.check("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&c.ctx, c.dev)); err != nil {
		return nil, unavailable(err)
	}
	defer func() {
		if err != nil {
			c.release()
		}
	}()
	if err := drv.check("cuCtxSetCurrent", drv.cuCtxSetCurrent(c.ctx)); err != nil {
		return nil, unavailable(err)
	}

	// Kernels: NVRTC → a CUBIN for the device (loads on a driver older than NVRTC),
	// else PTX → the driver's JIT.
	nvLib, _, err := loadLib("nvrtc", dirs)
	if err != nil {
		return nil, unavailable(err)
	}
	nv := &nvrtcAPI{}
	if err := nv.bind(nvLib); err != nil {
		return nil, unavailable(fmt.Errorf("libnvrtc: %v", err))
	}
	cc := int(major)*10 + int(minor)
	var cubinErr error
	if nv.nvrtcGetCUBIN != nil {
		var cubin []byte
		if cubin, cubinErr = compileCUDA(nv, topkSource, "sm_"+strconv.Itoa(cc), true); cubinErr == nil {
			cubinErr = drv.check("cuModuleLoadData", drv.cuModuleLoadData(&c.mod, unsafe.Pointer(&cubin[0])))
		}
		if cubinErr != nil {
			c.mod = 0
			opts.Logger.Warn("scorer: no CUBIN for the device, trying PTX", "arch", "sm_"+strconv.Itoa(cc), "err", cubinErr)
		}
	}
	if c.mod == 0 {
		ptx, err := compilePTX(nv, topkSource, cc)
		if err != nil {
			return nil, unavailable(err)
		}
		if err := drv.check("cuModuleLoadData", drv.cuModuleLoadData(&c.mod, unsafe.Pointer(&ptx[0]))); err != nil {
			return nil, unavailable(fmt.Errorf("%v (is the driver older than NVRTC?)", err))
		}
	}
	for _, kb := range []int{16, 64, 256} {
		var f, g uintptr
		if err := drv.check("cuModuleGetFunction", drv.cuModuleGetFunction(&f, c.mod, "topk_partial_"+strconv.Itoa(kb))); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		if err := drv.check("cuModuleGetFunction", drv.cuModuleGetFunction(&g, c.mod, "topk_merge_"+strconv.Itoa(kb))); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
		c.partial[kb], c.merge[kb] = f, g
	}
	if err := drv.check("cuModuleGetFunction", drv.cuModuleGetFunction(&c.tile, c.mod, "scores_tile")); err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}

	gemm := "cuBLAS SGEMM"
	if blasLib, _, berr := loadLib("cublas", dirs); berr == nil {
		b := &blasAPI{}
		if berr = b.bind(blasLib); berr == nil {
			if r := b.cublasCreate_v2(&c.handle); r == 0 {
				c.blas = b
			} else {
				berr = fmt.Errorf("cublasCreate: status %d", r)
			}
		}
		if berr != nil {
			opts.Logger.Warn("scorer: cuBLAS unusable, using the built-in GEMM kernel", "err", berr)
			gemm = "built-in GEMM"
		}
	} else {
		opts.Logger.Warn("scorer: cuBLAS not found, using the built-in GEMM kernel", "err", berr)
		gemm = "built-in GEMM"
	}

	// The item matrix and bias, resident for the scorer's life.
	if err := c.ensure(&c.dY, uint64(len(m.Items))*4); err != nil {
		return nil, unavailable(err)
	}
	if err := drv.check("cuMemcpyHtoD", drv.cuMemcpyHtoD_v2(c.dY.ptr, unsafe.Pointer(&m.Items[0]), uint64(len(m.Items))*4)); err != nil {
		return nil, experiment.E(op, experiment.Internal, err)
	}
	if m.Bias != nil {
		if err := c.ensure(&c.dBias, uint64(len(m.Bias))*4); err != nil {
			return nil, unavailable(err)
		}
		if err := drv.check("cuMemcpyHtoD", drv.cuMemcpyHtoD_v2(c.dBias.ptr, unsafe.Pointer(&m.Bias[0]), uint64(len(m.Bias))*4)); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
	}
	c.chunk = int(max(1, opts.MaxGPUScoreBytes/(int64(c.n)*4)))
	c.name = fmt.Sprintf("cuda (%s, sm_%d%d, %s)", devName, major, minor, gemm)
	return c, nil
}

// compilePTX compiles src to PTX with NVRTC for the device's compute capability,
// falling back to older virtual architectures only when this NVRTC refuses the
// option (it does not know the device's architecture); any other failure is the
// first compile's error, with its log.
func compilePTX(nv *nvrtcAPI, src string, cc int) ([]byte, error) {
	var first error
	tried := map[int]bool{}
	for _, arch := range []int{cc, 90, 80, 75} {
		if arch > cc || tried[arch] {
			continue
		}
		tried[arch] = true
		out, err := compileCUDA(nv, src, "compute_"+strconv.Itoa(arch), false)
		if err == nil {
			return out, nil
		}
		if first == nil {
			first = err
		}
		var ce *nvrtcError
		if !errors.As(err, &ce) || ce.result != nvrtcErrorInvalidOption {
			return nil, first
		}
	}
	return nil, first
}

// nvrtcErrorInvalidOption is NVRTC_ERROR_INVALID_OPTION: the compiler does not
// accept an option (here: an architecture it does not know).
const nvrtcErrorInvalidOption = 5

// nvrtcError is a failed NVRTC compile, with the compiler's log.
type nvrtcError struct {
	arch   string
	result int32
	log    string
}

func (e *nvrtcError) Error() string {
	return fmt.Sprintf("nvrtcCompileProgram (%s): result %d: %s", e.arch, e.result, e.log)
}

// compileCUDA compiles src with NVRTC for arch ("compute_90" → PTX, or "sm_90"
// with cubin → a CUBIN) and returns the code, NUL-terminated for PTX.
func compileCUDA(nv *nvrtcAPI, src, arch string, cubin bool) ([]byte, error) {
	var prog uintptr
	if r := nv.nvrtcCreateProgram(&prog, src, "topk.cu", 0, nil, nil); r != 0 {
		return nil, fmt.Errorf("nvrtcCreateProgram: result %d", r)
	}
	defer nv.nvrtcDestroyProgram(&prog)
	opts := []string{"--gpu-architecture=" + arch}
	cstrs := make([][]byte, len(opts))
	ptrs := make([]*byte, len(opts))
	var pin runtime.Pinner
	for i, o := range opts {
		cstrs[i] = append([]byte(o), 0)
		pin.Pin(&cstrs[i][0])
		ptrs[i] = &cstrs[i][0]
	}
	pin.Pin(&ptrs[0])
	r := nv.nvrtcCompileProgram(prog, int32(len(opts)), unsafe.Pointer(&ptrs[0]))
	pin.Unpin()
	if r != 0 {
		var n uint64
		nv.nvrtcGetProgramLogSize(prog, &n)
		log := make([]byte, n+1)
		nv.nvrtcGetProgramLog(prog, &log[0])
		return nil, &nvrtcError{arch: arch, result: r, log: strings.TrimRight(string(log), "\x00\n")}
	}
	var n uint64
	get, getSize, what := nv.nvrtcGetPTX, nv.nvrtcGetPTXSize, "nvrtcGetPTX"
	if cubin {
		get, getSize, what = nv.nvrtcGetCUBIN, nv.nvrtcGetCUBINSize, "nvrtcGetCUBIN"
	}
	if r := getSize(prog, &n); r != 0 || n == 0 {
		return nil, fmt.Errorf("%sSize: result %d, size %d", what, r, n)
	}
	out := make([]byte, n+1)
	if r := get(prog, &out[0]); r != 0 {
		return nil, fmt.Errorf("%s: result %d", what, r)
	}
	return out, nil
}

// launch starts kernel f with 1-D blocks of block threads. Each argument is a
// uint64 (device pointer) or int32; the driver reads each parameter's size from
// the kernel, so every value sits in its own 8-byte little-endian slot.
func (c *cudaScorer) launch(f uintptr, gx, gy, block, shmem uint32, args ...any) error {
	vals := make([]uint64, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case uint64:
			vals[i] = v
		case int32:
			vals[i] = uint64(uint32(v))
		default:
			panic(fmt.Sprintf("scorer: launch: argument %d has type %T", i, a))
		}
	}
	ptrs := make([]unsafe.Pointer, len(vals))
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&vals[0])
	for i := range vals {
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	pin.Pin(&ptrs[0])
	return c.drv.check("cuLaunchKernel", c.drv.cuLaunchKernel(f, gx, gy, 1, block, 1, 1, shmem, 0, unsafe.Pointer(&ptrs[0]), nil))
}

// Name implements Scorer.
func (c *cudaScorer) Name() string { return c.name }

// Score implements Scorer.
func (c *cudaScorer) Score(ctx context.Context, queries [][]float32, k int, exclude [][]int32) ([][]Scored, error) {
	const op = "scorer.CUDA.Score"
	if err := checkRequest(op, c.d, c.n, queries, k, exclude); err != nil {
		return nil, err
	}
	k = min(k, c.n)
	if k > cudaMaxK {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field("k"), experiment.Errorf("the cuda backend serves k ≤ %d, got %d", cudaMaxK, k))
	}
	kb := 16
	for kb < k {
		kb *= 4
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, experiment.E(op, experiment.Unavailable, ErrClosed)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.drv.check("cuCtxSetCurrent", c.drv.cuCtxSetCurrent(c.ctx)); err != nil {
		return nil, experiment.E(op, experiment.Unavailable, err)
	}
	out := make([][]Scored, len(queries))
	for lo := 0; lo < len(queries); lo += c.chunk {
		if err := ctx.Err(); err != nil {
			return nil, experiment.E(op, experiment.Unavailable, err)
		}
		hi := min(lo+c.chunk, len(queries))
		var ex [][]int32
		if exclude != nil {
			ex = exclude[lo:hi]
		}
		if err := c.scoreChunk(queries[lo:hi], k, kb, ex, out[lo:hi]); err != nil {
			return nil, experiment.E(op, experiment.Internal, err)
		}
	}
	return out, nil
}

// scoreChunk scores b ≤ c.chunk queries: GEMM into S (b × n), partial top-k over
// parts of each row, merge, and copy back b·k results.
func (c *cudaScorer) scoreChunk(queries [][]float32, k, kb int, exclude [][]int32, out [][]Scored) error {
	b, n, d := len(queries), c.n, c.d
	q := make([]float32, b*d)
	for u, v := range queries {
		copy(q[u*d:], v)
	}
	exOff := make([]int32, b+1)
	var exItems []int32
	for u := range b {
		if exclude != nil {
			exItems = append(exItems, sortedCopy(exclude[u])...)
		}
		exOff[u+1] = int32(len(exItems))
	}
	if len(exItems) == 0 {
		exItems = []int32{-1}
	}
	// Enough blocks to fill the GPU twice over, each thread scanning ≥ 16 items.
	parts := max(1, min((2*c.sms+b-1)/b, n/(cudaBlock*16)))
	drv := c.drv
	for _, a := range []struct {
		buf  *dbuf
		size uint64
	}{
		{&c.dQ, uint64(b*d) * 4}, {&c.dS, uint64(b) * uint64(n) * 4},
		{&c.dExOff, uint64(len(exOff)) * 4}, {&c.dExItems, uint64(len(exItems)) * 4},
		{&c.dCandS, uint64(b*parts*k) * 4}, {&c.dCandI, uint64(b*parts*k) * 4},
		{&c.dOutS, uint64(b*k) * 4}, {&c.dOutI, uint64(b*k) * 4},
	} {
		if err := c.ensure(a.buf, a.size); err != nil {
			return err
		}
	}
	if err := drv.check("cuMemcpyHtoD", drv.cuMemcpyHtoD_v2(c.dQ.ptr, unsafe.Pointer(&q[0]), uint64(len(q))*4)); err != nil {
		return err
	}
	if err := drv.check("cuMemcpyHtoD", drv.cuMemcpyHtoD_v2(c.dExOff.ptr, unsafe.Pointer(&exOff[0]), uint64(len(exOff))*4)); err != nil {
		return err
	}
	if err := drv.check("cuMemcpyHtoD", drv.cuMemcpyHtoD_v2(c.dExItems.ptr, unsafe.Pointer(&exItems[0]), uint64(len(exItems))*4)); err != nil {
		return err
	}
	// S (row-major b × n) = column-major n × b = Yᵀ·Q, with Y column-major d × n
	// (the row-major item matrix) and Q column-major d × b.
	if c.blas != nil {
		one, zero := float32(1), float32(0)
		if r := c.blas.cublasSgemm_v2(c.handle, cublasOpT, cublasOpN, int32(n), int32(b), int32(d), &one, c.dY.ptr, int32(d), c.dQ.ptr, int32(d), &zero, c.dS.ptr, int32(n)); r != 0 {
			return fmt.Errorf("cublasSgemm: status %d", r)
		}
	} else {
		if err := c.launch(c.tile, uint32((n+cudaBlock-1)/cudaBlock), uint32((b+7)/8), cudaBlock, uint32(8*d*4),
			c.dY.ptr, c.dQ.ptr, c.dS.ptr, int32(n), int32(d), int32(b)); err != nil {
			return err
		}
	}
	var biasPtr uint64
	if c.bias {
		biasPtr = c.dBias.ptr
	}
	if err := c.launch(c.partial[kb], uint32(b*parts), 1, cudaBlock, 0,
		c.dS.ptr, biasPtr, int32(n), int32(k), int32(parts), c.dExOff.ptr, c.dExItems.ptr, c.dCandS.ptr, c.dCandI.ptr); err != nil {
		return err
	}
	if err := c.launch(c.merge[kb], uint32(b), 1, cudaBlock, 0,
		c.dCandS.ptr, c.dCandI.ptr, int32(parts*k), int32(k), c.dOutS.ptr, c.dOutI.ptr); err != nil {
		return err
	}
	scores := make([]float32, b*k)
	items := make([]int32, b*k)
	// The copies wait for the kernels (legacy default stream) and report their errors.
	if err := drv.check("cuMemcpyDtoH", drv.cuMemcpyDtoH_v2(unsafe.Pointer(&scores[0]), c.dOutS.ptr, uint64(len(scores))*4)); err != nil {
		return err
	}
	if err := drv.check("cuMemcpyDtoH", drv.cuMemcpyDtoH_v2(unsafe.Pointer(&items[0]), c.dOutI.ptr, uint64(len(items))*4)); err != nil {
		return err
	}
	for u := range b {
		list := make([]Scored, 0, k)
		for r := range k {
			if it := items[u*k+r]; it >= 0 {
				list = append(list, Scored{Item: it, Score: scores[u*k+r]})
			}
		}
		out[u] = list
	}
	return nil
}

// Close implements Scorer: it frees the GPU memory and releases the context.
func (c *cudaScorer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c.drv.cuCtxSetCurrent(c.ctx)
	c.release()
	return nil
}

// release frees everything newCUDA acquired (safe on a partly built scorer).
func (c *cudaScorer) release() {
	for _, b := range []*dbuf{&c.dY, &c.dBias, &c.dQ, &c.dS, &c.dExOff, &c.dExItems, &c.dCandS, &c.dCandI, &c.dOutS, &c.dOutI} {
		if b.ptr != 0 {
			c.drv.cuMemFree_v2(b.ptr)
			b.ptr, b.size = 0, 0
		}
	}
	if c.blas != nil && c.handle != 0 {
		c.blas.cublasDestroy_v2(c.handle)
		c.handle = 0
	}
	if c.mod != 0 {
		c.drv.cuModuleUnload(c.mod)
		c.mod = 0
	}
	if c.ctx != 0 {
		c.drv.cuDevicePrimaryCtxRelease_v2(c.dev)
		c.ctx = 0
	}
}
