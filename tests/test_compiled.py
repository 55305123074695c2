"""The compiled kernels of the fast path (tinyalex/fast/kernels.c) against their textbook twins.

test_implementations.py already compares every fast layer with the textbook; with a C
compiler present those layers run the compiled kernels. Here: that the kernels really are
built and used (unless ``TINYALEX_COMPILED=0``, the switch CI runs these tests with a second
time), the cases the generic tests do not reach (NaN in a pooling window, every padding and
stride of im2col/col2im, beta other than the paper's, the SGD update bit for bit), and what a
user without a compiler gets.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from tinyalex import fast
from tinyalex import layers as textbook
from tinyalex.fast import compiled, parallel
from tinyalex.optim import sgd_update

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close(got, want, backward=False):
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 1e-12 if want.dtype == np.float64 else (1e-4 if backward else 1e-5)
    scale = 1 + np.nanmax(np.abs(want), initial=0)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got.astype(np.float64) - want), initial=0) <= tol * scale


@pytest.fixture(params=["whole batch", "one image per chunk"])
def chunks(request, monkeypatch):
    """Every kernel call covers either the whole batch or one image, on the threads."""
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 1 << 40 if request.param == "whole batch" else 1)


def test_the_kernels_are_built_unless_switched_off():
    for dtype in (np.float32, np.float64):
        if compiled.switched_off():
            assert compiled.kernels(dtype) is None
        else:  # CI installs a C compiler: a failed build here is a failure, not a skip
            assert compiled.kernels(dtype) is not None, "kernels.c did not build"
    assert compiled.kernels(np.int32) is None  # other dtypes: the NumPy code


@pytest.mark.skipif(compiled.switched_off(), reason="TINYALEX_COMPILED=0: no kernels")
@pytest.mark.parametrize("name", ["maxpool_forward", "lrn_backward", "col2im"])
def test_a_kernel_without_scratch_memory_raises_memory_error(name):
    """The kernels that allocate scratch return -1 without it: the call raises MemoryError
    naming the kernel, not a result computed from nothing."""
    fn = getattr(compiled.kernels(np.float32), name)
    assert fn.errcheck(0, fn, ()) == 0
    with pytest.raises(MemoryError, match=f"^{name}: no memory for"):
        fn.errcheck(-1, fn, ())


@DTYPES
def test_maxpool_first_maximum_and_first_nan(dtype, chunks):
    x = np.maximum(np.round(rand(3, 4, 11, 9, seed=1)), 0).astype(dtype)  # many ties
    x[0, 0, 2, 3] = np.nan  # one window, then its overlapping neighbours, see a NaN
    x[1, 2, 4:7, 4:7] = np.nan
    out, cache = fast.maxpool_forward(x, 3, 2)
    out_ref, cache_ref = textbook.maxpool_forward(x, 3, 2)
    assert_close(out, out_ref)
    np.testing.assert_array_equal(cache[1], cache_ref[1])  # positions: the first max / NaN
    dout = rand(*out.shape, seed=2, dtype=dtype)
    assert_close(fast.maxpool_backward(dout, cache), textbook.maxpool_backward(dout, cache_ref),
                 backward=True)


@DTYPES
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 1), (3, 3), (4, 3), (5, 2)])
def test_maxpool_every_size_and_stride(dtype, size, stride, chunks):
    """The separable sweeps pick each window's first maximum (or first NaN) in row-major
    order for any window and stride, rows that the windows do not reach included."""
    x = np.round(rand(2, 3, 13, 10, seed=5) * 2).astype(dtype)  # values in -2..2: many ties
    x[0, 1, 5, 2], x[1, 0, 0, 9], x[1, 2, 12, 0] = np.nan, np.nan, np.nan
    out, cache = fast.maxpool_forward(x, size, stride)
    out_ref, cache_ref = textbook.maxpool_forward(x, size, stride)
    assert_close(out, out_ref)
    np.testing.assert_array_equal(cache[1], cache_ref[1])


@DTYPES
@pytest.mark.parametrize("kh, kw, stride, pad", [
    (3, 4, 1, 1), (5, 6, 1, 2), (11, 12, 4, 0), (3, 4, 2, 0), (2, 3, 3, 1),
    (3, 4, 1, 4),  # pad > kernel: empty rows
    (3, 3, 1, 1), (5, 5, 1, 2), (5, 3, 1, 1),  # rows as long as the image's: one shifted copy
    (1, 1, 1, 0), (3, 7, 1, 3), (2, 5, 1, 2), (3, 21, 1, 10)])  # ... windows wider than it
def test_im2col_and_col2im_every_stride_and_padding(dtype, kh, kw, stride, pad, chunks):
    x = rand(3, 2, 13, 10, seed=3, dtype=dtype)
    cols = fast.im2col(x, kh, kw, stride, pad)
    assert_close(cols, textbook.im2col(x, kh, kw, stride, pad))
    dcols = rand(*cols.shape, seed=4, dtype=dtype)
    assert_close(fast.col2im(dcols, x.shape, kh, kw, stride, pad),
                 textbook.col2im(dcols, x.shape, kh, kw, stride, pad), backward=True)


@DTYPES
@pytest.mark.parametrize("n, k, alpha, beta", [(5, 2.0, 1e-4, 0.75), (3, 1.0, 0.3, 0.6),
                                               (7, 0.5, 0.05, 1.0)])
def test_lrn_any_constants(dtype, n, k, alpha, beta, chunks):
    x = rand(2, 9, 17, 19, seed=5, dtype=dtype) * 3  # 323 pixels: a full and a partial block
    out, cache = fast.lrn_forward(x, n, k, alpha, beta)
    out_ref, cache_ref = textbook.lrn_forward(x, n, k, alpha, beta)
    assert_close(out, out_ref)
    dout = rand(*x.shape, seed=6, dtype=dtype)
    assert_close(fast.lrn_backward(dout, cache), textbook.lrn_backward(dout, cache_ref),
                 backward=True)


@DTYPES
def test_sgd_update_bit_for_bit(dtype, chunks):
    w, v, g = (rand(301, 7, seed=s, dtype=dtype) for s in (7, 8, 9))
    w_ref, v_ref = w.copy(), v.copy()
    fast.sgd_update(w, v, g, 0.013, 0.9, 5e-4)
    sgd_update(w_ref, v_ref, g, 0.013, 0.9, 5e-4)
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(w, w_ref)


def test_without_a_compiler_one_line_and_the_numpy_path(tmp_path):
    """CC names no compiler, and the cache is empty: the layers still equal the textbook, and
    standard error holds exactly one line saying why the compiled kernels are not used."""
    code = ("import numpy as np; from tinyalex import fast, layers\n"
            "from tinyalex.fast import compiled\n"
            "x = np.random.default_rng(0).standard_normal((2, 6, 9, 9)).astype(np.float32)\n"
            "assert compiled.kernels(np.float32) is None\n"
            "for f, t in ((fast.lrn_forward, layers.lrn_forward),"
            " (fast.maxpool_forward, layers.maxpool_forward)):\n"
            "    assert np.allclose(f(x)[0], t(x)[0], atol=1e-6)\n")
    env = dict(os.environ, CC=str(tmp_path / "no-such-compiler"),
               TINYALEX_COMPILED_CACHE=str(tmp_path / "fast"))
    env.pop("TINYALEX_COMPILED", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "compiled kernels unavailable" in lines[0], result.stderr
    assert "no C compiler" in lines[0] and "NumPy fast path" in lines[0]


def test_the_switch_forces_the_numpy_path_silently(tmp_path):
    code = ("import numpy as np; from tinyalex.fast import compiled\n"
            "assert compiled.kernels(np.float32) is None\n")
    env = dict(os.environ, TINYALEX_COMPILED="0", TINYALEX_COMPILED_CACHE=str(tmp_path / "fast"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert not (tmp_path / "fast").exists()  # nothing was compiled


@pytest.mark.slow
def test_the_wheel_ships_the_c_source(tmp_path):
    """kernels.c is compiled on the user's machine, so an installed tinyalex must carry it."""
    import shutil
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    source = tmp_path / "source"  # a copy, so that build/ and egg-info never land in the checkout
    shutil.copytree(root, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("tinyalex-*.whl")
    assert "tinyalex/fast/kernels.c" in zipfile.ZipFile(wheel).namelist()
