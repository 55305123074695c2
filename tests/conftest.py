"""Shared test setup: GPU tests are skipped, with the reason shown, where no GPU can be used;
no test writes into the user's real cache; a tiny image folder and a finished run on it.

``TINYALEX_FAKE_CUPY=1 pytest -m gpu`` runs the GPU tests on ``fake_cupy`` (NumPy arrays
dressed as CuPy's, kernels on the CPU emulator; see tests/fake_cupy.py) instead: the tests
that need a real GPU say so and skip. The ``fake_cupy`` fixture installs it for one test.
"""

import os
import sys
from pathlib import Path

import pytest

if os.environ.get("TINYALEX_FAKE_CUPY", "").strip() not in ("", "0"):
    import fake_cupy

    sys.modules["cupy"] = fake_cupy  # before tinyalex first looks for CuPy

from tinyalex.backend import gpu_available  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CuPy and a CUDA GPU (tinyalex.backend.gpu_available()"
                                       " is False); run `pytest -m gpu` on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


def _forget_cupy():
    """Drop every cached answer to "is there a CuPy, and which?"."""
    from tinyalex import backend
    from tinyalex.cuda import ops

    backend._cupy.cache_clear()
    backend.gpu_problem.cache_clear()
    ops.for_device.cache_clear()


@pytest.fixture
def fake_cupy(monkeypatch):
    """tests/fake_cupy.py installed as ``cupy`` for one test (and removed after it)."""
    import fake_cupy as module

    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.delenv("TINYALEX_KERNELS", raising=False)
    _forget_cupy()
    module.reset_counters()
    yield module
    monkeypatch.undo()
    _forget_cupy()


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """One temporary cache for the whole test session: $TINYALEX_CACHE and the emulator's and
    the fast path's compiled caches point into it before any fixture or test runs
    (session-wide and autouse, so even module-scoped fixtures see it), and nothing a test
    runs can write into ~/.cache/tinyalex. What the tests generate, decode and compile is
    built once per session. A test may point the variables elsewhere with monkeypatch; they
    come back afterwards."""
    root = tmp_path_factory.mktemp("tinyalex-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYALEX_CACHE", str(root))
        mp.setenv("TINYALEX_EMULATOR_CACHE", str(root / "emulator"))
        mp.setenv("TINYALEX_COMPILED_CACHE", str(root / "fast"))  # the fast path's C kernels
        yield root


TINY_CLASSES = ("blue", "red", "green")


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``: what a test compares, byte for
    byte, to show that nothing a user made changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file()}


def make_tiny_folder(root, classes=TINY_CLASSES, n_train=10, n_val=3, seed=0):
    """train/ and val/ under ``root``: 72x72 images of noise with a bright square whose colour
    channel is the class (one channel per class, so at most three classes)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 60, (72, 72, 3), dtype=np.uint8)
                top, left = rng.integers(5, 35, 2)
                image[top : top + 30, left : left + 30, c % 3] = 230
                Image.fromarray(image).save(root / split / name / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A three-class image folder (see make_tiny_folder); tests must not change it."""
    return make_tiny_folder(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_run(tiny_folder, tmp_path_factory, session_cache):
    """A finished 2-epoch run of the mini preset on tiny_folder; tests must not change it
    (copy it first)."""
    from tinyalex import train

    out = tmp_path_factory.mktemp("tiny-run") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYALEX_DEVICE", "cpu")
        assert train.main(["--data", str(tiny_folder), "--out", str(out), "--epochs", "2",
                           "--batch-size", "8", "--no-progress", "--num-workers", "0"]) == 0
    return out
