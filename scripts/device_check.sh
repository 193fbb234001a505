#!/usr/bin/env bash
# kanbench's GPU check, for a machine with an NVIDIA GPU where nothing of ours is installed and no
# package registry can be reached: a system python3 with a CUDA build of torch, pytest,
# pytest-timeout, pandas, scipy, tabulate, jinja2 and nvidia-ml-py (e.g. Python 3.12, torch 2.11).
#
# Run it from the repository root; it takes under 8 minutes (each step has its own limit, below):
#
#   bash scripts/device_check.sh                      # results in ./device-check/
#   OUT=/some/dir bash scripts/device_check.sh        # or in a folder of your choice
#
# Optional:
#   WHEELS=DIR          wheels installed first into a private folder on PYTHONPATH (--no-index --no-deps),
#                       e.g. pykan and inkan for their seed-table rows: `pip download --no-deps
#                       --python-version 3.12 --only-binary=:all: -d DIR pykan==0.2.8 inkan==0.5.2`
#   KANBENCH_HOME=DIR   a kanbench cache whose sources/ holds `kanbench install effkan fastkan` checkouts
#                       (made on any machine and copied along), for the effkan and fastkan rows
#   PYTHON=python3      the interpreter
#   REHEARSE=cpu        everything but the GPU: no CUDA required, every step on the CPU (a dry run of the
#                       imports, wheels, sources and files on a machine without a GPU)
#   BF16=1              also the seed workload in bfloat16 (gpu-seed-bf16.json; measured 2026-11-30, kept
#                       out of the default run to leave time for the native-operator steps)
#
# better_kan's native operator is built in place first (setup.py build_ext --inplace: g++ and the Python
# headers, ~30 s); its CUDA kernels are Triton's, registered when the extension and Triton import.
#
# It writes the files below into $OUT. Each step runs under its own limit (465 s together); a step
# that runs over is interrupted (SIGINT) and its results file keeps the rows it measured. Measured on an H200 (2026-11-30, torch 2.11): tests 42 s, seed
# (18 rows, CPU and CUDA) 153 s before its then 150 s limit stopped its memory pass, large 59 s, bf16
# 51 s before its then 50 s limit (8 of 9 rows), compile 30 s; the limits below are set from that:
#   nvidia-smi-before.txt, nvidia-smi-after.txt   the GPU's state around the runs
#   cuda-tests.txt                                tests/test_cuda.py, test_device_consistency.py, test_triton_kernels.py
#   build.txt              the extension's build
#   gpu-native.json        seed workload, CUDA: the MLP, our layers on the native operator and on
#                          their PyTorch path (benchmarks/variants)
#   gpu-seed.json          seed workload, fp32, every seed-table row that imports, CPU and CUDA
#   gpu-large.json         [1000,1000,1] batch 100, CUDA
#   gpu-seed-bf16.json     seed workload in bfloat16, CUDA
#   gpu-seed-compile.json  seed workload under torch.compile, CUDA
#   check.log              everything printed (the tables), step by step, with each step's time
# Exit status: 3 when no CUDA device is usable, else non-zero when a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-check}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
LOG="$OUT/check.log"
: >"$LOG"

# kanbench and better_kan import from this tree without installing anything
export PYTHONPATH="$PWD:$PWD/implementations${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
GPU=cuda ALL=all
if [ "${REHEARSE:-}" = cpu ]; then GPU=cpu ALL=cpu; else export KANBENCH_REQUIRE_CUDA=1; fi
if [ -n "${WHEELS:-}" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  site=$(mktemp -d /tmp/kanbench-site.XXXXXX)
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$site" "$WHEELS"/*.whl \
    && export PYTHONPATH="$PYTHONPATH:$site" || echo "device_check: the wheels in $WHEELS did not install; their rows are skipped" | tee -a "$LOG"
fi

say() { echo "== $* ($(date -u +%H:%M:%S))" | tee -a "$LOG"; }
status=0
step() {  # step SECONDS NAME COMMAND...: run under a limit, interrupt (not kill) past it, log everything
  local limit=$1 name=$2 t0 rc
  shift 2
  say "$name: $*"
  t0=$(date +%s)
  timeout -s INT -k 15 "$limit" "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  say "$name: exit $rc after $(($(date +%s) - t0)) s"
  [ "$rc" -eq 0 ] || status=1
}

nvidia-smi >"$OUT/nvidia-smi-before.txt" 2>&1 || echo "nvidia-smi failed" >>"$OUT/nvidia-smi-before.txt"
if ! "$PYTHON" -c "
import os, sys, torch
if not torch.cuda.is_available() and os.environ.get('KANBENCH_REQUIRE_CUDA') == '1':
    built = f'built with CUDA {torch.version.cuda}' if torch.version.cuda else 'a CPU-only build'
    sys.exit(f'device_check: no usable CUDA device: torch {torch.__version__} ({built}) sees none')
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU (rehearsal)'
print('torch', torch.__version__, 'CUDA', torch.version.cuda, gpu, 'python', sys.version.split()[0])
" 2>&1 | tee -a "$LOG"; then
  exit 3
fi

SEED_IMPLS=mlp,splines-better_kan,rbf-better_kan,effkan,fastkan,pykan,pykan-speed,inkan,inkan-eager
LARGE_IMPLS=mlp,splines-better_kan,rbf-better_kan,effkan,fastkan,inkan
OURS=mlp,splines-better_kan,rbf-better_kan
RUN=("$PYTHON" -m kanbench run --format full)

step 60 build "$PYTHON" setup.py -q build_ext --inplace
cp "$LOG" "$OUT/build.txt"
"$PYTHON" -c "from better_kan import native; print('better_kan:', native.STATUS.describe())" 2>&1 | tee -a "$LOG"
step 90 tests "$PYTHON" -m pytest -q -p no:cacheprovider --timeout 70 tests/test_cuda.py tests/test_device_consistency.py \
  tests/test_triton_kernels.py
cp "$LOG" "$OUT/cuda-tests.txt"
NATIVE=mlp,splines-better_kan,rbf-better_kan,splines-torch-path,rbf-torch-path
step 150 seed "${RUN[@]}" --device "$ALL" --impl "$SEED_IMPLS" --processes 2 --rounds 6 --max-live 18 --out "$OUT/gpu-seed.json"
step 60 native "${RUN[@]}" --device "$GPU" --implementations benchmarks/variants --impl "$NATIVE" --processes 1 --rounds 6 \
  --min-time 0.5 --out "$OUT/gpu-native.json"
step 60 large "${RUN[@]}" --device "$GPU" --preset large --impl "$LARGE_IMPLS" --processes 2 --rounds 6 --out "$OUT/gpu-large.json"
[ "${BF16:-}" = 1 ] && step 70 bf16 "${RUN[@]}" --device "$GPU" --dtype bfloat16 --impl "$SEED_IMPLS" --processes 2 --rounds 6 \
  --out "$OUT/gpu-seed-bf16.json"
step 45 compile "${RUN[@]}" --device "$GPU" --compile --impl "$OURS" --processes 1 --rounds 6 --out "$OUT/gpu-seed-compile.json"
nvidia-smi >"$OUT/nvidia-smi-after.txt" 2>&1 || echo "nvidia-smi failed" >>"$OUT/nvidia-smi-after.txt"
say "done, status $status"
exit "$status"
