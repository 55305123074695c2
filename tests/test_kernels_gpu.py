"""The CUDA kernels on a real GPU (CuPy): the comparisons of test_kernels.py, plus a training step.

Marked ``gpu``: skipped, with the reason shown, where ``tinyalex.backend.gpu_available()`` is
False (see conftest.py); run them with ``pytest -m gpu`` on a machine with CuPy and a GPU. CuPy
is imported inside the tests so that collecting this file never needs it.
"""

import numpy as np
import pytest
from kernel_cases import (
    BWD,
    CONV_CASES,
    FWD,
    IM2COL_CASES,
    LRN_CASES,
    POOL_CASES,
    pool_input,
    rand,
    scaled_close,
)

from tinyalex import layers
from tinyalex.backend import resolve_impl

pytestmark = pytest.mark.gpu


@pytest.fixture
def cp(monkeypatch):
    """The cupy module, with TINYALEX_KERNELS at its default (CuPy float32 takes the kernels)."""
    import cupy

    monkeypatch.delenv("TINYALEX_KERNELS", raising=False)
    return cupy


@pytest.fixture
def gpu_ops(cp):
    from tinyalex.cuda import ops

    return ops.for_device("gpu")


@pytest.fixture
def cuda_layers(cp):
    from tinyalex.cuda import layers as cuda_layers

    return cuda_layers


def test_auto_chooses_the_kernels_for_cupy_float32(cp, gpu_ops):
    from tinyalex.cuda import ops

    assert resolve_impl("auto", cp.zeros(1, cp.float32)) == "cuda"
    assert resolve_impl("auto", cp.zeros(1, cp.float64)) == "textbook"
    assert ops.for_array(cp.zeros(1, cp.float32)) is gpu_ops


@pytest.mark.parametrize("case", IM2COL_CASES)
def test_im2col_col2im_on_gpu(cp, gpu_ops, case):
    N, C, H, W, kh, kw, stride, pad = case
    x = rand(N, C, H, W)
    cols = gpu_ops.im2col(cp.asarray(x), kh, kw, stride, pad)
    assert isinstance(cols, cp.ndarray)
    np.testing.assert_allclose(cols.get(), layers.im2col(x, kh, kw, stride, pad), **FWD)
    dcols = rand(*cols.shape, seed=1)
    dx = gpu_ops.col2im(cp.asarray(dcols), x.shape, kh, kw, stride, pad)
    np.testing.assert_allclose(dx.get(), layers.col2im(dcols, x.shape, kh, kw, stride, pad),
                               **BWD)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_layer_on_gpu(cp, cuda_layers, case):
    N, C, H, W, F, K, stride, pad, groups = case
    x, w, b = rand(N, C, H, W, seed=1), rand(F, C // groups, K, K, seed=2), rand(F, seed=3)
    out_ref, cache_ref = layers.conv_forward(x, w, b, stride, pad, groups)
    dout = rand(*out_ref.shape, seed=4)
    grads_ref = layers.conv_backward(dout, cache_ref)
    out, cache = cuda_layers.conv_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), stride,
                                          pad, groups)
    np.testing.assert_allclose(out.get(), out_ref, **FWD)
    for got, ref in zip(cuda_layers.conv_backward(cp.asarray(dout), cache), grads_ref,
                        strict=True):
        np.testing.assert_allclose(got.get(), ref, **BWD)


@pytest.mark.parametrize("case", LRN_CASES)
def test_lrn_on_gpu(cp, gpu_ops, case):
    N, C, H, W, n, k, alpha, beta = case
    x, dout = rand(N, C, H, W, seed=5) * 3, rand(N, C, H, W, seed=6)
    out, scale = gpu_ops.lrn_forward(cp.asarray(x), n, k, alpha, beta)
    dx = gpu_ops.lrn_backward(cp.asarray(dout), cp.asarray(x), out, scale, n, alpha, beta)
    out_ref, cache_ref = layers.lrn_forward(x, n, k, alpha, beta)
    np.testing.assert_allclose(out.get(), out_ref, **FWD)
    np.testing.assert_allclose(scale.get(), cache_ref[2], **FWD)
    np.testing.assert_allclose(dx.get(), layers.lrn_backward(dout, cache_ref), **BWD)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_on_gpu(cp, gpu_ops, case, ties):
    N, C, H, W, size, stride = case
    x = pool_input(N, C, H, W, 9, ties)
    out, argmax = gpu_ops.maxpool_forward(cp.asarray(x), size, stride)
    dout = rand(*out.shape, seed=10)
    dx = gpu_ops.maxpool_backward(cp.asarray(dout), argmax, x.shape, size, stride)
    out_ref, cache_ref = layers.maxpool_forward(x, size, stride)
    np.testing.assert_array_equal(out.get(), out_ref)
    np.testing.assert_array_equal(argmax.get(), cache_ref[1])
    np.testing.assert_allclose(dx.get(), layers.maxpool_backward(dout, cache_ref), **BWD)


def test_gpu_ops_refuse_numpy_arrays(gpu_ops):
    with pytest.raises(ValueError, match="cupy arrays"):
        gpu_ops.im2col(rand(1, 1, 4, 4), 3, 3, 1, 0)


def test_training_step_on_gpu_matches_numpy(cp):
    """One SGD step of the mini net: CuPy (kernels + cuBLAS) vs NumPy (the textbook)."""
    from tinyalex.model import AlexNet
    from tinyalex.optim import SGD

    def step(device):
        net = AlexNet("mini", seed=0, impl="textbook" if device == "cpu" else "auto").to(device)
        assert net.impl == ("textbook" if device == "cpu" else "cuda")
        rng = np.random.default_rng(0)
        x = (64 * rng.standard_normal((8, 3, 63, 63))).astype(np.float32)
        labels = rng.integers(0, 10, size=8)
        if device == "gpu":
            x, labels = cp.asarray(x), cp.asarray(labels)
        loss, logits, dlogits = net.loss(x, labels, train=True)
        grads = net.backward(dlogits)
        SGD(net.params, lr=0.01, impl=net.impl).step(net.params, grads)
        host = (lambda a: a.get()) if device == "gpu" else (lambda a: a)
        return (float(loss), host(logits), {k: host(v) for k, v in grads.items()},
                {k: host(v) for k, v in net.params.items()})

    loss_ref, logits_ref, grads_ref, params_ref = step("cpu")
    loss, logits, grads, params = step("gpu")
    # cuBLAS sums the matrix products in another order than NumPy: allow 1e-4 through 8 layers.
    assert abs(loss - loss_ref) <= 1e-4 * (1 + abs(loss_ref))
    assert scaled_close(logits, logits_ref, 1e-4)[0]
    for name in grads_ref:
        ok, error = scaled_close(grads[name], grads_ref[name], 1e-4)
        assert ok, f"d{name} differs by {error}"
        ok, error = scaled_close(params[name], params_ref[name], 1e-5)
        assert ok, f"{name} after the step differs by {error}"
