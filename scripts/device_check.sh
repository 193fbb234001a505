#!/usr/bin/env bash
# The GPU check for a lent device machine (see /work/.library/device/README.md): the CUDA tests,
# then `make bench`'s workload on CUDA, results into $OUT. The device image has its own python3
# and torch and no network, so this uses them directly instead of `make` (which would install).
# Usage (from the repository root, on the device): OUT=/some/dir scripts/device_check.sh
set -uo pipefail
OUT=${OUT:-results}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
python3 -m pytest -q tests/test_cuda.py -p no:cacheprovider 2>&1 | tail -20 | tee "$OUT/cuda-tests.txt"
for preset in seed large; do
  python3 -m kanbench run --device all --preset "$preset" --impl mlp,splines-better_kan,rbf-better_kan,inkan-eager,pykan-speed \
    --out "$OUT/gpu-$preset.json" --format full 2>&1 | tee "$OUT/gpu-$preset.txt"
done
