// Top-k selection kernels of the scorer's CUDA backend, compiled at run time by
// NVRTC. A score row S[u, 0..n) is the u-th user's scores (cuBLAS SGEMM output,
// row-major batch × n). Order: higher score first, then lower item index.
//
// Phase 1 (topk_partial_K): block (u, p) scans part p of user u's row; each thread
// keeps its best k in a sorted register/local list (insertion), skipping excluded
// items (binary search in the user's sorted exclusion list, only for candidates
// that would enter), then the block merges the per-thread lists in k rounds of a
// shared-memory arg-max reduction. Phase 2 (topk_merge_K) merges the parts'
// candidates of each user the same way. Empty slots carry item −1.

#define NEG_INF __int_as_float(0xff800000)
#define NO_ITEM 0x7fffffff

__device__ __forceinline__ bool better(float sa, int ia, float sb, int ib) {
	return sa > sb || (sa == sb && ia < ib);
}

__device__ __forceinline__ bool excluded(const int* __restrict__ ex, int lo, int hi, int item) {
	while (lo < hi) {
		int mid = (lo + hi) >> 1;
		int v = ex[mid];
		if (v == item) return true;
		if (v < item) lo = mid + 1; else hi = mid;
	}
	return false;
}

template <int KMAX>
__device__ __forceinline__ void insert(float* hs, int* hi, int& cnt, int k, float s, int id) {
	int p;
	if (cnt < k) {
		p = cnt++;
	} else {
		if (!better(s, id, hs[k - 1], hi[k - 1])) return;
		p = k - 1;
	}
	while (p > 0 && better(s, id, hs[p - 1], hi[p - 1])) {
		hs[p] = hs[p - 1];
		hi[p] = hi[p - 1];
		p--;
	}
	hs[p] = s;
	hi[p] = id;
}

// blockMerge writes the block's best k (from each thread's sorted list) to outS/outI.
template <int KMAX, int BLOCK>
__device__ void blockMerge(const float* hs, const int* hi, int cnt, int k, float* outS, int* outI) {
	__shared__ float ss[BLOCK];
	__shared__ int si[BLOCK];
	__shared__ int st[BLOCK];
	int t = threadIdx.x;
	int head = 0;
	for (int r = 0; r < k; r++) {
		ss[t] = head < cnt ? hs[head] : NEG_INF;
		si[t] = head < cnt ? hi[head] : NO_ITEM;
		st[t] = t;
		__syncthreads();
		for (int off = BLOCK / 2; off > 0; off >>= 1) {
			if (t < off && better(ss[t + off], si[t + off], ss[t], si[t])) {
				ss[t] = ss[t + off];
				si[t] = si[t + off];
				st[t] = st[t + off];
			}
			__syncthreads();
		}
		bool empty = si[0] == NO_ITEM;
		if (!empty && st[0] == t) head++;
		if (t == 0) {
			outS[r] = empty ? NEG_INF : ss[0];
			outI[r] = empty ? -1 : si[0];
		}
		__syncthreads();
	}
}

template <int KMAX, int BLOCK>
__device__ void topkPartial(const float* __restrict__ S, const float* __restrict__ bias, int n, int k, int parts,
                            const int* __restrict__ exOff, const int* __restrict__ exItems,
                            float* __restrict__ candS, int* __restrict__ candI) {
	int u = blockIdx.x / parts;
	int p = blockIdx.x % parts;
	long long lo = (long long)p * n / parts;
	long long hiEnd = (long long)(p + 1) * n / parts;
	const float* row = S + (long long)u * n;
	int exLo = exOff[u], exHi = exOff[u + 1];
	float hs[KMAX];
	int hi[KMAX];
	int cnt = 0;
	for (long long i = lo + threadIdx.x; i < hiEnd; i += BLOCK) {
		float s = row[i];
		if (bias) s += bias[i];
		if (cnt == k && !better(s, (int)i, hs[k - 1], hi[k - 1])) continue;
		if (exLo < exHi && excluded(exItems, exLo, exHi, (int)i)) continue;
		insert<KMAX>(hs, hi, cnt, k, s, (int)i);
	}
	long long o = (long long)blockIdx.x * k;
	blockMerge<KMAX, BLOCK>(hs, hi, cnt, k, candS + o, candI + o);
}

template <int KMAX, int BLOCK>
__device__ void topkMerge(const float* __restrict__ candS, const int* __restrict__ candI, int m, int k,
                          float* __restrict__ outS, int* __restrict__ outI) {
	int u = blockIdx.x;
	const float* cs = candS + (long long)u * m;
	const int* ci = candI + (long long)u * m;
	float hs[KMAX];
	int hi[KMAX];
	int cnt = 0;
	for (int j = threadIdx.x; j < m; j += BLOCK) {
		if (ci[j] < 0) continue;
		insert<KMAX>(hs, hi, cnt, k, cs[j], ci[j]);
	}
	blockMerge<KMAX, BLOCK>(hs, hi, cnt, k, outS + (long long)u * k, outI + (long long)u * k);
}

// scoresTile is the GEMM used when cuBLAS cannot be loaded: S[u, i] = q_u·y_i for
// 8 users per block row (their vectors in shared memory), one item per thread.
extern "C" __global__ void scores_tile(const float* __restrict__ Y, const float* __restrict__ Q,
                                       float* __restrict__ S, int n, int d, int b) {
	extern __shared__ float q[]; // 8 × d
	int u0 = blockIdx.y * 8;
	for (int j = threadIdx.x; j < 8 * d; j += blockDim.x) {
		int u = u0 + j / d;
		q[j] = u < b ? Q[(long long)u * d + j % d] : 0.0f;
	}
	__syncthreads();
	long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n) return;
	const float* y = Y + i * d;
	float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	for (int j = 0; j < d; j++) {
		float v = y[j];
		for (int r = 0; r < 8; r++) acc[r] += q[r * d + j] * v;
	}
	for (int r = 0; r < 8; r++) {
		if (u0 + r < b) S[(long long)(u0 + r) * n + i] = acc[r];
	}
}

#define TOPK_KERNELS(K)                                                                                     \
	extern "C" __global__ void __launch_bounds__(256) topk_partial_##K(                                      \
		const float* S, const float* bias, int n, int k, int parts, const int* exOff, const int* exItems,  \
		float* candS, int* candI) {                                                                         \
		topkPartial<K, 256>(S, bias, n, k, parts, exOff, exItems, candS, candI);                           \
	}                                                                                                       \
	extern "C" __global__ void __launch_bounds__(256) topk_merge_##K(                                       \
		const float* candS, const int* candI, int m, int k, float* outS, int* outI) {                      \
		topkMerge<K, 256>(candS, candI, m, k, outS, outI);                                                 \
	}

TOPK_KERNELS(16)
TOPK_KERNELS(64)
TOPK_KERNELS(256)
