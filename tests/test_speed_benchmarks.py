"""benchmarks/layers.py and benchmarks/train_step.py run, on a tiny batch of the mini net."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script, *args):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_layers_benchmark_prints_every_layer():
    out = run("layers.py", "--preset", "mini", "--batch", "2", "--repeats", "1")
    for name in ("conv1", "norm1", "pool1", "conv5", "fc6", "fc8", "total"):
        assert f"\n{name}" in out, out


def test_train_step_benchmark_without_pytorch():
    out = run("train_step.py", "--preset", "mini", "--batch", "2", "--steps", "1",
              "--no-torch", "--peak-size", "256")
    assert "images/s" in out and "GFLOP/s" in out, out
    assert "peak memory" in out and "tinyalex" in out, out
