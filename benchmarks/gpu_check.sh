#!/usr/bin/env bash
# gpu_check.sh -- tinyalex's one-command GPU check, run from a checkout on a machine with an
# NVIDIA GPU; expected to take 2-3 minutes, and stopped after 5 (pytest 170 s, benchmark 120 s;
# $GPU_CHECK_TEST_LIMIT and $GPU_CHECK_BENCH_LIMIT change those limits).
#
#   bash benchmarks/gpu_check.sh              # check and measure; exit 0 when every check passed
#   bash benchmarks/gpu_check.sh --dry-run    # anywhere: report the environment, print the plan
#   bash benchmarks/gpu_check.sh --install    # when CuPy is missing, pip-install the gpu extra
#
# 1. environment: Python, NumPy, CuPy and its CUDA, PyTorch and its CUDA, the GPU. tinyalex runs
#    from this checkout (PYTHONPATH); with CuPy present nothing is installed, and without it
#    nothing is installed unless --install says so (then `pip install -e ".[gpu]"` or
#    ".[gpu-cuda13]", chosen by the driver's CUDA version, plus CuPy's [ctk] CUDA wheels).
# 2. pytest -m gpu: every kernel against the textbook in NaN-filled memory, the paper preset at
#    batch 128 against the NumPy fast path, indexing near 2^31 elements, train.py gpu vs cpu.
# 3. benchmarks/gpu.py: the paper step against PyTorch + cuDNN, TF32 off and on, and the
#    train.py-like loop; the ratios against the goals (0.7x PyTorch; train.py within 10%).
# The last lines: PASS/FAIL per check, the ratios, RESULT. (The goals are reported, not checked.)
#
# For tests and quick looks: --config NAME --batch N --repeat N pass to the benchmark; --fake
# runs steps 2 and 3 on tests/fake_cupy.py (no GPU: it checks this script, measures nothing).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
PY=${PYTHON:-python3}
DRY_RUN=0 INSTALL=0 FAKE=0 CONFIG=paper BATCH=128 REPEAT=10
TEST_LIMIT=${GPU_CHECK_TEST_LIMIT:-170} BENCH_LIMIT=${GPU_CHECK_BENCH_LIMIT:-120}
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --install) INSTALL=1 ;;
        --fake) FAKE=1 ;;
        --config) CONFIG=$2; shift ;;
        --batch) BATCH=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RUN=("$PY")                       # how a Python script runs here
if [ "$FAKE" = 1 ]; then
    export TINYALEX_FAKE_CUPY=1   # conftest.py installs the fake for pytest
    RUN=("$PY" "$ROOT/tests/fake_cupy.py")
fi
export TINYALEX_CACHE="$WORK/cache"  # the tests' data sets, never the user's cache
declare -a RESULTS=()
record() { RESULTS+=("$(printf '%-4s  %s' "$1" "$2")"); echo "== $1: $2"; }

# ---- 1. environment ---------------------------------------------------------------------------
cat > "$WORK/probe.py" <<'EOF'
import platform, sys
import numpy
print(f"python {platform.python_version()} ({sys.executable}); numpy {numpy.__version__}")
from tinyalex.backend import gpu_problem
import tinyalex
print(f"tinyalex from {tinyalex.__file__}")
problem = gpu_problem()
if problem is None:
    import cupy
    runtime = cupy.cuda.runtime.runtimeGetVersion()
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    print(f"cupy {cupy.__version__} (CUDA {runtime // 1000}.{runtime % 1000 // 10}) on {name}")
else:
    print(f"cupy: {problem}")
try:
    import torch
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}; "
          f"{'sees the GPU' if cuda else 'no GPU: no PyTorch comparison'})")
except ImportError:
    print("torch: not installed (no PyTorch comparison)")
try:
    import pytest
    print(f"pytest {pytest.__version__}")
except ImportError:
    print("pytest: not installed")
sys.exit(0 if problem is None else 3)
EOF
echo "== tinyalex GPU check in $ROOT"
"${RUN[@]}" "$WORK/probe.py" | tee "$WORK/env.txt"
ENV_STATUS=${PIPESTATUS[0]}
if [ "$ENV_STATUS" = 3 ] && [ "$INSTALL" = 1 ] && [ "$DRY_RUN" = 0 ]; then
    major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: \([0-9]*\).*/\1/p' | head -1)
    if [ "$major" = 13 ]; then extra=gpu-cuda13; else extra=gpu; major=12; fi
    echo "== installing: $PY -m pip install -e \".[$extra,test]\" \"cupy-cuda${major}x[ctk]\""
    "$PY" -m pip install -q -e ".[$extra,test]" "cupy-cuda${major}x[ctk]>=14,<15"
    "${RUN[@]}" "$WORK/probe.py" | tee "$WORK/env.txt"
    ENV_STATUS=${PIPESTATUS[0]}
fi
if ! grep -q "^pytest " "$WORK/env.txt"; then ENV_STATUS=4; fi

PYTEST=("$PY" -m pytest -v -rs -p no:cacheprovider -m gpu tests/)
BENCH=("${RUN[@]}" benchmarks/gpu.py --config "$CONFIG" --batch "$BATCH" --repeat "$REPEAT"
       --json "$WORK/bench.json")
if [ "$DRY_RUN" = 1 ]; then
    case "$ENV_STATUS" in
        0) echo "== environment: ready" ;;
        3) echo "== environment: would FAIL (no usable GPU; see the cupy line); --install may"
           echo "   pip-install the gpu extra where a network is reachable" ;;
        *) echo "== environment: would FAIL (pytest is missing: pip install pytest)" ;;
    esac
    echo "would run: timeout $TEST_LIMIT ${PYTEST[*]}"
    echo "would run: timeout $BENCH_LIMIT ${BENCH[*]}"
    exit 0
fi
if [ "$ENV_STATUS" != 0 ]; then
    record FAIL "environment: $(grep -E '^(cupy|pytest):' "$WORK/env.txt" | head -1)"
    printf '%s\n' "${RESULTS[@]}"
    echo "RESULT: FAIL"
    exit 1
fi
record PASS "environment: $(grep '^cupy ' "$WORK/env.txt")"

# ---- 2. pytest -m gpu -------------------------------------------------------------------------
echo "== ${PYTEST[*]}"
timeout "$TEST_LIMIT" "${PYTEST[@]}" 2>&1 | tee "$WORK/pytest.txt"
PYTEST_STATUS=${PIPESTATUS[0]}
summary=$(tail -1 "$WORK/pytest.txt")
if [ "$PYTEST_STATUS" = 0 ]; then record PASS "pytest -m gpu: $summary"
elif [ "$PYTEST_STATUS" = 124 ]; then record FAIL "pytest -m gpu: stopped after $TEST_LIMIT s"
else record FAIL "pytest -m gpu: $summary"; fi
for check in "test_paper_preset_at_batch_128:paper preset, batch 128: GPU step vs NumPy fast path" \
             "test_indexing_near_2_31:indexing within 458752 of 2^31 elements" \
             "test_train_py_on_gpu_matches_the_cpu:train.py --device gpu vs cpu" \
             "test_crop_kernel_equals_the_loader:GPU crops vs the CPU loader, bit for bit" \
             "test_philox_kernel_equals_numpy:dropout numbers vs NumPy, bit for bit"; do
    name=${check%%:*} what=${check#*:}
    line=$(grep -E "::$name.* (PASSED|FAILED|SKIPPED|ERROR)" "$WORK/pytest.txt" | head -1)
    case "$line" in
        *PASSED*) record PASS "$what" ;;
        *SKIPPED*) record SKIP "$what (pytest's skip reason is above)" ;;
        *) record FAIL "$what" ;;
    esac
done

# ---- 3. the benchmark -------------------------------------------------------------------------
echo "== ${BENCH[*]}"
timeout "$BENCH_LIMIT" "${BENCH[@]}" 2>&1 | tee "$WORK/bench.txt"
BENCH_STATUS=${PIPESTATUS[0]}
if [ "$BENCH_STATUS" = 0 ] && [ -s "$WORK/bench.json" ]; then
    record PASS "benchmarks/gpu.py ran ($CONFIG, batch $BATCH)"
else
    record FAIL "benchmarks/gpu.py (status $BENCH_STATUS$([ "$BENCH_STATUS" = 124 ] &&
                 echo ": stopped after $BENCH_LIMIT s"))"
fi

echo
echo "== summary"
printf '%s\n' "${RESULTS[@]}"
if [ -s "$WORK/bench.json" ]; then
    "$PY" - "$WORK/bench.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
def line(text, value, goal=None):
    verdict = "" if goal is None else f"  (goal >= {goal}: {'met' if value >= goal else 'NOT met'})"
    print(f"      {text:44s}{value:6.2f}{verdict}")
print(f"      on {r['device']}, {r['config']} preset, batch {r['batch']}; images/s: tinyalex "
      f"{r['tinyalex_fp32']:,.0f} (TF32 {r['tinyalex_tf32']:,.0f}), train.py-like "
      f"{r['train_like_staged']:,.0f}" + (f", PyTorch {r['torch_fp32']:,.0f} (TF32 "
      f"{r['torch_tf32']:,.0f})" if "torch_fp32" in r else ", no PyTorch"))
if "ratio_fp32" in r:
    line("tinyalex / PyTorch + cuDNN, float32", r["ratio_fp32"], 0.7)
    line("tinyalex / PyTorch + cuDNN, TF32 on", r["ratio_tf32"])
line("train.py-like / step with the batch on GPU", r["ratio_train_like"], 0.9)
line("staged uint8 / host float32 loop", r["train_like_staged"] / r["train_like_host"])
EOF
fi
if printf '%s\n' "${RESULTS[@]}" | grep -q '^FAIL'; then echo "RESULT: FAIL"; exit 1; fi
echo "RESULT: PASS"
