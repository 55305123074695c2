"""tinyalex.backend: array-module dispatch and the choice of device."""

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
    assert (backend.gpu_problem() is None) == backend.gpu_available()


def test_device_override(monkeypatch):
    monkeypatch.setenv("TINYALEX_DEVICE", "cpu")
    assert backend.resolve_device() == "cpu"
    assert backend.resolve_device("auto") in ("cpu", "gpu")
    monkeypatch.setenv("TINYALEX_DEVICE", "tpu")
    with pytest.raises(backend.SettingError, match="unknown device 'tpu'"):
        backend.resolve_device()


@pytest.mark.skipif(backend.gpu_available(), reason="checks the message of a machine without GPU")
def test_gpu_error_tells_a_missing_cupy_from_a_missing_gpu(monkeypatch):
    with pytest.raises(backend.SettingError, match="device 'gpu' asked for") as error:
        backend.resolve_device("gpu")
    assert "\n" not in str(error.value)
    # here: CuPy is not installed, and the advice is what works from a checkout
    if backend._cupy() is None:
        assert 'pip install -e ".[gpu]"' in str(error.value)
        assert "tinyalex[gpu]" not in str(error.value)


def test_cupy_installed_without_a_gpu_says_so(monkeypatch):
    """A CuPy whose runtime finds no device must not be told to install CuPy."""

    class NoDevice(Exception):
        pass

    def no_device():
        raise NoDevice("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = type(sys)("cupy")
    fake.__version__ = "14.2.0"
    fake.cuda = type(sys)("cupy.cuda")
    fake.cuda.runtime = type(sys)("cupy.cuda.runtime")
    fake.cuda.runtime.getDeviceCount = no_device
    monkeypatch.setitem(sys.modules, "cupy", fake)
    backend.gpu_problem.cache_clear()
    try:
        problem = backend.gpu_problem()
    finally:
        backend.gpu_problem.cache_clear()
    assert "CuPy 14.2.0 is installed but finds no usable CUDA GPU or driver" in problem
    assert "pip install" not in problem


def test_import_works_without_cupy():
    """CuPy is optional: block its import and the package still loads and computes."""
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import numpy as np, tinyalex.layers as L, tinyalex.backend as B\n"
        "assert B.gpu_available() is False and B.resolve_device('auto') == 'cpu'\n"
        "assert 'CuPy is not installed' in B.gpu_problem()\n"
        "out, _ = L.conv_forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), np.zeros(1))\n"
        "assert out.item() == 9.0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
