#!/usr/bin/env bash
# GPU check for any machine with an NVIDIA GPU and a CUDA build of torch: the CUDA tests, then
# the seed and large workloads on CUDA only, results files and tables into $OUT.
# Uses the python3 on PATH as it is (nothing is installed).
# Usage, from the repository root:  OUT=/some/dir scripts/device_check.sh
# Exit status: non-zero when the CUDA tests fail or a run measures nothing.
set -euo pipefail
OUT=${OUT:-results}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
status=0
python3 -m pytest -q tests/test_cuda.py -p no:cacheprovider 2>&1 | tee "$OUT/cuda-tests.txt" || status=$?
for preset in seed large; do
  python3 -m kanbench run --device cuda --preset "$preset" --impl mlp,splines-better_kan,rbf-better_kan \
    --out "$OUT/gpu-$preset.json" --format full 2>&1 | tee "$OUT/gpu-$preset.txt" || status=$?
done
exit "$status"
