"""benchmarks/gpu.py and benchmarks/gpu_check.sh: what can be checked without a GPU.

The check script's environment probe, dry run and argument handling run anywhere; its whole
flow -- pytest -m gpu, benchmarks/gpu.py (every mode: per layer, step, train.py-like), the
summary -- runs on tests/fake_cupy.py, where the figures mean nothing but every code path runs.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinyalex.backend import gpu_available

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu.py"
CHECK = ROOT / "benchmarks" / "gpu_check.sh"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_set_tf32_sets_cupys_float32_compute_type(fake_cupy):
    from tinyalex.cuda.layers import set_tf32

    set_tf32(True)
    assert fake_cupy.COMPUTE_TYPES["float32"] == 7  # COMPUTE_TYPE_TF32
    set_tf32(False)
    assert fake_cupy.COMPUTE_TYPES["float32"] == 1  # COMPUTE_TYPE_DEFAULT


@pytest.mark.skipif(gpu_available(), reason="checks the message of a machine without a GPU")
def test_without_a_gpu_it_exits_with_one_line(capsys):
    assert load_benchmark().main([]) == 1
    err = capsys.readouterr().err.strip()
    assert "no usable CUDA GPU" in err and "\n" not in err


def run_check(*args, timeout=600):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["bash", str(CHECK), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_gpu_check_dry_run_reports_the_environment_and_the_plan():
    result = run_check("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"python {sys.version.split()[0]}" in out and "tinyalex from" in out
    assert ("cupy: " in out and "would FAIL" in out) or "environment: ready" in out
    assert "would run: timeout 170 " in out and "-m pytest -v -rs -p no:cacheprovider -m gpu" in out
    assert "would run: timeout 120 " in out
    assert "benchmarks/gpu.py --config paper --batch 128 --repeat 10" in out
    bad = run_check("--no-such-option")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown argument")


def test_gpu_check_runs_through_on_the_fake_cupy():
    """The whole script on tests/fake_cupy.py: pytest -m gpu, the benchmark, the summary."""
    result = run_check("--fake", "--config", "mini", "--batch", "4", "--repeat", "1")
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    summary = out[out.index("== summary"):]
    for line in ("PASS  environment: cupy 0+fake", "PASS  pytest -m gpu:",
                 "PASS  train.py --device gpu vs cpu",
                 "PASS  GPU crops vs the CPU loader, bit for bit",
                 "PASS  dropout numbers vs NumPy, bit for bit",
                 "SKIP  paper preset, batch 128", "SKIP  indexing within 458752 of 2^31",
                 "PASS  benchmarks/gpu.py ran (mini, batch 4)",
                 "train.py-like / step with the batch on GPU", "RESULT: PASS"):
        assert line in summary, line
    assert "failed" not in summary
    # only what cannot run on the fake is skipped, and each skip says why: the two big
    # kernel cases and the three multi-GPU (NCCL) runs of tests/test_distributed.py
    reasons = [line for line in out.splitlines() if line.startswith("SKIPPED [")]
    assert sum(int(line.split("[")[1].split("]")[0]) for line in reasons) == 5, reasons
    assert all("needs a real GPU" in line for line in reasons), reasons
