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
# LIFT_REQUIRE_CUDA=1 makes a cuda backend that cannot start (a kernel that does not
# compile or load, a missing library) fail the tests and benchmarks instead of
# skipping them. The benchmarks run even when a parity test fails; the script's exit
# status is then 1.
set -euo pipefail
export LIFT_REQUIRE_CUDA=1
out=${1:-${OUT:-.}}
bin=${SCORER_TEST:-./scorer.test}
mkdir -p "$out"
if [ ! -x "$bin" ]; then
	go test -c -ldflags='-s -w' -o "$bin" ./scorer
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv > "$out/gpu.txt" 2>&1 || echo "nvidia-smi failed" >> "$out/gpu.txt"
status=0
"$bin" -test.run 'Parity|CUDA|PyTorch' -test.v 2>&1 | tee "$out/parity.txt" || status=1
"$bin" -test.run '^$' -test.bench 'CUDAScore|CPUScore|MemCopy' -test.benchtime 20x 2>&1 | tee "$out/bench.txt" || status=1
exit $status
