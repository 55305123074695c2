"""Array-module dispatch and device selection."""

import subprocess
import sys

import numpy as np
import pytest

from tinyalex import backend


def test_numpy_arrays_use_numpy():
    assert backend.get_array_module(np.zeros(3)) is np
    assert backend.is_gpu_array(np.zeros(3)) is False


def test_gpu_available_never_raises_and_is_a_bool():
    assert isinstance(backend.gpu_available(), bool)


def test_device_override(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")
    assert backend.resolve_device() == "cpu"
    assert backend.resolve_device("auto") in ("cpu", "gpu")
    monkeypatch.setenv("TINYALEX_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        backend.resolve_device()
    if not backend.gpu_available():
        with pytest.raises(ValueError, match="no CUDA GPU is usable"):
            backend.resolve_device("gpu")


def test_kernel_mode_is_checked(monkeypatch):
    monkeypatch.setenv("TINYALEX_KERNELS", "fast")
    with pytest.raises(ValueError, match="TINYALEX_KERNELS='fast'"):
        backend.kernel_mode()
    monkeypatch.setenv("TINYALEX_KERNELS", "off")
    assert backend.kernel_ops(np.zeros(3, dtype=np.float32)) is None


def test_plain_numpy_path_for_float64_and_by_default(monkeypatch):
    monkeypatch.delenv("TINYALEX_KERNELS", raising=False)
    assert backend.kernel_ops(np.zeros(3, dtype=np.float32)) is None  # NumPy arrays: array code
    monkeypatch.setenv("TINYALEX_KERNELS", "emulate")
    assert backend.kernel_ops(np.zeros(3, dtype=np.float64)) is None  # kernels are float32 only


def test_import_works_without_cupy():
    """CuPy is optional: block its import and the package still loads and computes."""
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import numpy as np, tinyalex.layers as L, tinyalex.backend as B\n"
        "assert B.gpu_available() is False and B.resolve_device('auto') == 'cpu'\n"
        "out, _ = L.conv_forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), np.zeros(1))\n"
        "assert out.item() == 9.0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
