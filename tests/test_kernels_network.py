"""The whole mini AlexNet, forward and backward, on the emulated CUDA kernels vs the textbook.

``AlexNet(..., impl="cuda")`` on NumPy arrays sends every im2col/col2im, LRN and max-pool of
the network through the CUDA source compiled by the CPU emulator; matrix products stay NumPy.
The loss, the logits, every gradient and the parameters after one SGD step must match the
textbook run, and the fast path's too. ``TINYALEX_KERNELS=emulate`` makes ``impl="auto"``
choose the emulated kernels.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from kernel_cases import scaled_close

import tinyalex
from tinyalex.cuda import ops as kernel_module
from tinyalex.model import AlexNet
from tinyalex.optim import SGD

REPO_ROOT = Path(tinyalex.__file__).resolve().parent.parent
OPS = ("im2col", "col2im", "lrn_forward", "lrn_backward", "maxpool_forward", "maxpool_backward")


def train_step(impl: str, batch: int = 4, seed: int = 0):
    """One SGD step of the mini net on a fixed random batch: (loss, logits, grads, params)."""
    net = AlexNet("mini", seed=seed, impl=impl)
    assert net.impl == impl or impl == "auto"
    rng = np.random.default_rng(seed)
    x = (64 * rng.standard_normal((batch, 3, 63, 63))).astype(np.float32)  # centred 0..255 units
    labels = rng.integers(0, net.config.num_classes, size=batch)
    loss, logits, dlogits = net.loss(x, labels, train=True)  # same seed: same dropout masks
    grads = net.backward(dlogits)
    SGD(net.params, lr=0.01, impl=net.impl).step(net.params, grads)
    return float(loss), logits, grads, net.params


def count_launches(monkeypatch) -> dict:
    """Count the emulated kernel launches, so that a silent fallback to array code cannot pass."""
    emulated = kernel_module.for_device("emulate")
    calls = dict.fromkeys(OPS, 0)
    for name in OPS:
        method = getattr(emulated, name)

        def counted(*args, _name=name, _method=method, **kwargs):
            calls[_name] += 1
            return _method(*args, **kwargs)

        monkeypatch.setattr(emulated, name, counted)
    return calls


def assert_same_step(got, want, what):
    loss, logits, grads, params = got
    loss_ref, logits_ref, grads_ref, params_ref = want
    assert abs(loss - loss_ref) <= 1e-5 * (1 + abs(loss_ref)), what
    ok, error = scaled_close(logits, logits_ref, 1e-5)
    assert ok, f"{what}: logits differ by {error}"
    for name in grads_ref:
        assert grads[name].dtype == np.float32
        ok, error = scaled_close(grads[name], grads_ref[name], 1e-4)
        assert ok, f"{what}: d{name} differs by {error}"
        ok, error = scaled_close(params[name], params_ref[name], 1e-5)
        assert ok, f"{what}: {name} after the SGD step differs by {error}"


def test_mini_network_train_step_on_emulated_kernels(monkeypatch):
    textbook = train_step("textbook")
    assert_same_step(train_step("fast"), textbook, "fast")
    calls = count_launches(monkeypatch)
    start = time.perf_counter()
    cuda = train_step("cuda")
    seconds = time.perf_counter() - start
    # col2im 4, not 5: AlexNet.backward skips conv1's input gradient (the images need none)
    assert calls == {"im2col": 5, "col2im": 4, "lrn_forward": 2, "lrn_backward": 2,
                     "maxpool_forward": 3, "maxpool_backward": 3}, calls
    assert_same_step(cuda, textbook, "cuda (emulated)")
    # "Seconds, not minutes" (the first run includes compiling the three .cu files).
    assert seconds < 60, f"emulated train step took {seconds:.1f} s"


def test_kernels_variable_makes_auto_choose_the_emulated_kernels(monkeypatch):
    monkeypatch.setenv("TINYALEX_KERNELS", "emulate")
    assert AlexNet("mini", impl="auto").impl == "cuda"
    assert AlexNet("mini", impl="auto", dtype=np.float64).impl == "fast"  # kernels: float32
    assert AlexNet("mini", impl="textbook").impl == "textbook"  # an explicit choice wins
    monkeypatch.setenv("TINYALEX_KERNELS", "off")
    assert AlexNet("mini", impl="auto").impl == "fast"


@pytest.mark.slow
def test_mini_network_is_clean_under_address_sanitizer():
    """The same train step with every kernel built with ASan: no out-of-bounds access anywhere."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    test = f"{Path(__file__).resolve()}::test_mini_network_train_step_on_emulated_kernels"
    result = subprocess.run(
        [sys.executable, "-m", "tinyalex.cuda.emulator", "--debug", "--",
         sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
