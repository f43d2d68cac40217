#!/usr/bin/env bash
# The scorer's GPU checks, as one script for a machine with an NVIDIA GPU:
# the CPU/CUDA parity tests and the CUDA and CPU scoring benchmarks (1M items x 64).
#
#   go test -c -ldflags='-s -w' -o scorer.test ./scorer   # build where Go is (no DuckDB inside)
#   bench/gpu.sh [OUTDIR]                                   # run on the GPU machine
#
# Results go to OUTDIR (default $OUT, else the current folder): gpu.txt (the card),
# parity.txt, bench.txt. Compare itemGB/s of BenchmarkCUDAScore/batch=1 with the
# card's memory bandwidth (gpu.txt) for the fraction of the bandwidth limit.
set -euo pipefail
out=${1:-${OUT:-.}}
bin=${SCORER_TEST:-./scorer.test}
mkdir -p "$out"
if [ ! -x "$bin" ]; then
	go test -c -ldflags='-s -w' -o "$bin" ./scorer
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv > "$out/gpu.txt" 2>&1 || echo "nvidia-smi failed" >> "$out/gpu.txt"
"$bin" -test.run 'Parity|CUDA|PyTorch' -test.v 2>&1 | tee "$out/parity.txt"
"$bin" -test.run '^$' -test.bench 'CUDAScore|CPUScore|MemCopy' -test.benchtime 20x 2>&1 | tee "$out/bench.txt"
