"""tinyalex.impl: the one place where the implementation of the layers is chosen."""

import numpy as np
import pytest

from tinyalex import backend, impl


def test_kernel_mode_is_checked(monkeypatch):
    monkeypatch.setenv("TINYALEX_KERNELS", "emulat")
    with pytest.raises(backend.SettingError, match="TINYALEX_KERNELS='emulat' is not one of"):
        impl.kernel_mode()


@pytest.mark.parametrize("name,dtype,kernels,expected", [
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
def test_resolve_impl_on_numpy(monkeypatch, name, dtype, kernels, expected):
    if kernels is None:
        monkeypatch.delenv("TINYALEX_KERNELS", raising=False)
    else:
        monkeypatch.setenv("TINYALEX_KERNELS", kernels)
    assert impl.resolve_impl(name, np.zeros(1, dtype)) == expected


def test_resolve_impl_refuses_what_cannot_run():
    with pytest.raises(backend.SettingError, match="unknown implementation 'quick'"):
        impl.resolve_impl("quick", np.zeros(1, np.float32))
    with pytest.raises(backend.SettingError, match="runs float32 kernels"):
        impl.resolve_impl("cuda", np.zeros(1, np.float64))


def test_implementation_modules():
    import tinyalex.cuda.layers
    import tinyalex.fast
    import tinyalex.layers

    assert impl.impl_module("textbook") is tinyalex.layers
    assert impl.impl_module("fast") is tinyalex.fast
    assert impl.impl_module("cuda") is tinyalex.cuda.layers
    assert impl.describe_impl("fast", np.zeros(1)).startswith("fast (NumPy + C kernels, ")
    assert impl.describe_impl("textbook", np.zeros(1)) == "textbook (NumPy)"
    assert "emulator" in impl.describe_impl("cuda", np.zeros(1, np.float32))


def test_the_start_up_phrase_says_when_the_fast_path_runs_without_its_c_kernels(monkeypatch):
    monkeypatch.setenv("TINYALEX_COMPILED", "0")
    assert impl.describe_impl("fast", np.zeros(1, np.float32)).startswith("fast (NumPy, ")
