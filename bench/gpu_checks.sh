#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one go, for a machine lent for a few minutes
# (about 6-8 minutes on an H100 or H200, most of it torch.compile and the baselines):
#
#   bash bench/gpu_checks.sh [OUT_DIR]     # default OUT_DIR: bench/results
#
#  1. bench/sigreg.py on the paper's table 6 grid, every path (auto, recurrence,
#     materialised, compiled) and the baselines -> OUT_DIR/sigreg-cuda.txt;
#  2. tests/test_cuda.py: each path on the GPU against brute force on the CPU;
#  3. table 6 on the GPU with the Algorithm 1 column (tables/table6-cuda.{csv,md}).
# Each step runs even when one before it failed; the exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
status=0

# run COMMAND...: run it; on failure say so and keep the first failure's status
run() {
    "$@" && return
    local code=$?
    echo "gpu_checks: failed with status $code: $*" >&2
    [ "$status" -ne 0 ] || status=$code
}

python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'" || exit 1
run python bench/sigreg.py --device cuda --out "$out/sigreg-cuda.txt"
run python -m pytest -q -ra tests/test_cuda.py
run python -m snakemake --cores 2 tables/table6-cuda.csv --forcerun table6_cuda
exit "$status"
