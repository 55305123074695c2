"""benchmarks/gpu.py: its measuring code runs (on NumPy here), and without a GPU it says so."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tinyalex.backend import gpu_available
from tinyalex.model import AlexNet

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layer_times_and_train_rate_on_the_cpu():
    bench = load_benchmark()
    net = AlexNet("mini", seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 63, 63)).astype(np.float32)
    rows = bench.layer_times(net, x, repeat=1)
    assert [name for name, _, _ in rows] == [step.name for step in net.steps]
    assert all(f > 0 and b > 0 for _, f, b in rows)
    assert bench.train_images_per_second(net, x, np.array([1, 2]), repeat=1) > 0


@pytest.mark.skipif(gpu_available(), reason="checks the message of a machine without a GPU")
def test_without_a_gpu_it_exits_with_one_line(capsys):
    assert load_benchmark().main([]) == 1
    err = capsys.readouterr().err.strip()
    assert "no usable CUDA GPU" in err and "\n" not in err
