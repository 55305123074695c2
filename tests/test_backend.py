"""Array-module dispatch, device selection, and the choice of implementation."""

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


def test_kernel_mode_is_checked(monkeypatch):
    monkeypatch.setenv("TINYALEX_KERNELS", "emulat")
    with pytest.raises(backend.SettingError, match="TINYALEX_KERNELS='emulat' is not one of"):
        backend.kernel_mode()


@pytest.mark.parametrize("impl,dtype,kernels,expected", [
    ("auto", np.float32, None, "fast"),
    ("auto", np.float64, None, "fast"),
    ("auto", np.float32, "emulate", "cuda"),
    ("auto", np.float64, "emulate", "fast"),  # the kernels are float32 only
    ("auto", np.float32, "off", "fast"),
    ("textbook", np.float32, "emulate", "textbook"),  # an explicit choice wins
    ("fast", np.float64, None, "fast"),
    ("cuda", np.float32, None, "cuda"),  # NumPy arrays: the emulator
    ("AUTO", np.float32, None, "fast"),
])
def test_resolve_impl_on_numpy(monkeypatch, impl, dtype, kernels, expected):
    if kernels is None:
        monkeypatch.delenv("TINYALEX_KERNELS", raising=False)
    else:
        monkeypatch.setenv("TINYALEX_KERNELS", kernels)
    assert backend.resolve_impl(impl, np.zeros(1, dtype)) == expected


def test_resolve_impl_refuses_what_cannot_run():
    with pytest.raises(backend.SettingError, match="unknown implementation 'quick'"):
        backend.resolve_impl("quick", np.zeros(1, np.float32))
    with pytest.raises(backend.SettingError, match="runs float32 kernels"):
        backend.resolve_impl("cuda", np.zeros(1, np.float64))


def test_implementation_modules():
    import tinyalex.cuda.layers
    import tinyalex.fast
    import tinyalex.layers

    assert backend.implementation("textbook") is tinyalex.layers
    assert backend.implementation("fast") is tinyalex.fast
    assert backend.implementation("cuda") is tinyalex.cuda.layers
    assert backend.describe_impl("fast", np.zeros(1)).startswith("fast (NumPy, ")
    assert backend.describe_impl("textbook", np.zeros(1)) == "textbook (NumPy)"
    assert "emulator" in backend.describe_impl("cuda", np.zeros(1, np.float32))


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
