"""The CUDA kernels of kernels/*.cu, run by the CPU emulator, against the textbook layers.

Every comparison is float32 against float32, with ``|kernel - numpy| <= tol + eps * |numpy|``
(1e-5 forward, 1e-4 backward); integer outputs (the pool argmax) must match exactly. The
reference is ``tinyalex.layers`` (the textbook); the kernels run either through their
launchers (``tinyalex.cuda.ops``) directly or through ``tinyalex.cuda.layers``, which is how
a network with ``impl="cuda"`` uses them.
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
)

from tinyalex import data, layers
from tinyalex.cuda import layers as cuda_layers
from tinyalex.cuda import ops as kernel_module
from tinyalex.cuda.sources import block_size


@pytest.fixture
def emulated():
    """The launchers of the emulated kernels (NumPy arrays)."""
    return kernel_module.for_device("emulate")


def test_numpy_arrays_go_to_the_emulator():
    assert kernel_module.for_array(rand(1, 1, 2, 2)) is kernel_module.for_device("emulate")


def test_every_kernel_declares_its_block_size():
    for filename, kernel in [("im2col.cu", "im2col_kernel"), ("im2col.cu", "col2im_kernel"),
                             ("lrn.cu", "lrn_forward_kernel"), ("lrn.cu", "lrn_backward_kernel"),
                             ("maxpool.cu", "maxpool_forward_kernel"),
                             ("maxpool.cu", "maxpool_backward_kernel"),
                             ("philox.cu", "philox_uniform_kernel"),
                             ("augment.cu", "crop_kernel"), ("sgd.cu", "sgd_update_kernel")]:
        assert block_size(filename, kernel) == 256


# ---- im2col / col2im ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", IM2COL_CASES)
def test_im2col_matches_layers(emulated, case):
    N, C, H, W, kh, kw, stride, pad = case
    x = rand(N, C, H, W)
    cols = emulated.im2col(x, kh, kw, stride, pad)
    expected = layers.im2col(x, kh, kw, stride, pad)
    assert cols.shape == expected.shape and cols.dtype == np.float32
    np.testing.assert_allclose(cols, expected, **FWD)


@pytest.mark.parametrize("case", IM2COL_CASES)
def test_col2im_matches_layers(emulated, case):
    N, C, H, W, kh, kw, stride, pad = case
    OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    cols = rand(C * kh * kw, N * OH * OW, seed=1)
    dx = emulated.col2im(cols, (N, C, H, W), kh, kw, stride, pad)
    expected = layers.col2im(cols, (N, C, H, W), kh, kw, stride, pad)
    assert dx.shape == (N, C, H, W) and dx.dtype == np.float32
    np.testing.assert_allclose(dx, expected, **BWD)


@pytest.mark.parametrize("case", IM2COL_CASES[:4])
def test_col2im_is_the_adjoint_of_im2col(emulated, case):
    """<im2col(x), y> = <x, col2im(y)>: the defining property, independent of the reference."""
    N, C, H, W, kh, kw, stride, pad = case
    x = rand(N, C, H, W, seed=2)
    cols = emulated.im2col(x, kh, kw, stride, pad)
    y = rand(*cols.shape, seed=3)
    lhs = np.dot(cols.ravel().astype(np.float64), y.ravel())
    rhs = np.dot(x.ravel().astype(np.float64), emulated.col2im(y, x.shape, kh, kw, stride, pad)
                 .ravel())
    assert abs(lhs - rhs) <= 1e-4 * (1 + abs(lhs))



@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_layer_through_kernels(case):
    """tinyalex.cuda.layers' conv_forward / conv_backward (emulated) against the textbook."""
    N, C, H, W, F, K, stride, pad, groups = case
    x, w, b = rand(N, C, H, W, seed=1), rand(F, C // groups, K, K, seed=2), rand(F, seed=3)
    out_ref, cache_ref = layers.conv_forward(x, w, b, stride, pad, groups)
    dout = rand(*out_ref.shape, seed=4)
    grads_ref = layers.conv_backward(dout, cache_ref)
    out, cache = cuda_layers.conv_forward(x, w, b, stride, pad, groups)
    np.testing.assert_allclose(out, out_ref, **FWD)
    for got, ref in zip(cuda_layers.conv_backward(dout, cache), grads_ref, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, **BWD)


# ---- local response normalization ---------------------------------------------------------------


@pytest.mark.parametrize("case", LRN_CASES)
def test_lrn_matches_layers(emulated, case):
    N, C, H, W, n, k, alpha, beta = case
    x = rand(N, C, H, W, seed=5) * 3  # big enough that the window sum moves the scale
    dout = rand(N, C, H, W, seed=6)
    out, scale = emulated.lrn_forward(x, n, k, alpha, beta)
    dx = emulated.lrn_backward(dout, x, out, scale, n, alpha, beta)
    out_ref, cache_ref = layers.lrn_forward(x, n, k, alpha, beta)
    dx_ref = layers.lrn_backward(dout, cache_ref)
    np.testing.assert_allclose(out, out_ref, **FWD)
    np.testing.assert_allclose(scale, cache_ref[2], **FWD)
    np.testing.assert_allclose(dx, dx_ref, **BWD)


def test_lrn_layer_through_kernels():
    x, dout = rand(2, 9, 4, 5, seed=7) * 2, rand(2, 9, 4, 5, seed=8)
    out_ref, cache_ref = layers.lrn_forward(x, 5, 2.0, 0.2, 0.75)
    dx_ref = layers.lrn_backward(dout, cache_ref)
    out, cache = cuda_layers.lrn_forward(x, 5, 2.0, 0.2, 0.75)
    np.testing.assert_allclose(out, out_ref, **FWD)
    np.testing.assert_allclose(cuda_layers.lrn_backward(dout, cache), dx_ref, **BWD)


def test_lrn_uses_the_papers_alpha(emulated):
    """One channel pair by hand: scale = k + alpha * (a^2 + b^2), alpha NOT divided by n."""
    x = np.zeros((1, 2, 1, 1), np.float32)
    x[0, :, 0, 0] = [1.0, 2.0]
    out, scale = emulated.lrn_forward(x, 5, 2.0, 0.1, 0.75)
    np.testing.assert_allclose(scale.ravel(), [2.5, 2.5], rtol=1e-6)
    np.testing.assert_allclose(out.ravel(), [1.0 * 2.5**-0.75, 2.0 * 2.5**-0.75], rtol=1e-6)


# ---- max-pooling --------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_matches_layers(emulated, case, ties):
    N, C, H, W, size, stride = case
    x = pool_input(N, C, H, W, 9, ties)
    out, argmax = emulated.maxpool_forward(x, size, stride)
    dout = rand(*out.shape, seed=10)
    dx = emulated.maxpool_backward(dout, argmax, x.shape, size, stride)
    out_ref, cache_ref = layers.maxpool_forward(x, size, stride)
    dx_ref = layers.maxpool_backward(dout, cache_ref)
    np.testing.assert_array_equal(out, out_ref)  # a max is exact
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(argmax, cache_ref[1])  # first max on ties, exactly
    np.testing.assert_allclose(dx, dx_ref, **BWD)


def test_maxpool_layer_through_kernels():
    x = rand(2, 4, 11, 9, seed=11)
    out_ref, cache_ref = layers.maxpool_forward(x, 3, 2)
    dout = rand(*out_ref.shape, seed=12)
    dx_ref = layers.maxpool_backward(dout, cache_ref)
    out, cache = cuda_layers.maxpool_forward(x, 3, 2)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_allclose(cuda_layers.maxpool_backward(dout, cache), dx_ref, **BWD)


# ---- training crops ------------------------------------------------------------------------------


def crop_kernel_inputs(parts):
    """The crop kernel's arguments from a loader's BatchParts (what tinyalex.cuda.staging sends)."""
    windows = np.stack([parts.top, parts.left, parts.flip], axis=1).astype(np.int32)  # (B, 3)
    lighting = parts.lighting if parts.lighting is not None else np.zeros((len(windows), 3),
                                                                          np.float32)
    return windows, lighting


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_crop_kernel_equals_the_loader_bit_for_bit(emulated, train):
    """Random windows, flips and PCA lighting (train) or centre crops (eval), odd sizes."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (23, 15, 15, 3), dtype=np.uint8)
    image_set = data.ImageSet(images, rng.integers(0, 4, 23), ["a", "b", "c", "d"])
    stats = data.compute_stats(image_set)
    loader = data.BatchLoader(image_set, 6, 11, stats, train=train, seed=3)
    flips = 0
    for i in range(len(loader)):  # 4 batches, the last one short
        x_ref, y_ref = loader.batch(i)
        parts = loader.parts(i)
        np.testing.assert_array_equal(parts.labels, y_ref)
        x = emulated.crop_batch(parts.images, stats["mean"], 11, *crop_kernel_inputs(parts))
        assert x.shape == x_ref.shape and x.dtype == np.float32
        np.testing.assert_array_equal(x.view(np.uint32), x_ref.view(np.uint32))
        flips += int(parts.flip.sum())
    assert (flips > 0) == train and ((loader.parts(0).lighting is not None) == train)


def test_crop_kernel_rejects_bad_arguments(emulated):
    images, mean = np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8), np.float32)
    windows, lighting = np.zeros((2, 3), np.int32), np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="uint8"):
        emulated.crop_batch(images.astype(np.float32), mean, 5, windows, lighting)
    with pytest.raises(ValueError, match="mean must have shape"):
        emulated.crop_batch(images, np.zeros((3, 7, 8), np.float32), 5, windows, lighting)
    with pytest.raises(ValueError, match="int32"):
        emulated.crop_batch(images, mean, 5, windows.astype(np.int64), lighting)
    with pytest.raises(ValueError, match="larger than"):
        emulated.crop_batch(images, mean, 9, windows, lighting)


# ---- the SGD update ------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_decay", [5e-4, 0.0], ids=["weights", "biases"])
def test_sgd_kernel_equals_the_textbook_update_bit_for_bit(emulated, weight_decay):
    from tinyalex.optim import sgd_update

    w, v, g = rand(7, 3, 5, seed=20), rand(7, 3, 5, seed=21) * 0.01, rand(7, 3, 5, seed=22)
    w_ref, v_ref = w.copy(), v.copy()
    for lr in (0.01, 0.0037):  # two steps, the second at another rate
        sgd_update(w_ref, v_ref, g, lr, 0.9, weight_decay)
        emulated.sgd_update(w, v, g, lr, 0.9, weight_decay)
    np.testing.assert_array_equal(w.view(np.uint32), w_ref.view(np.uint32))
    np.testing.assert_array_equal(v.view(np.uint32), v_ref.view(np.uint32))
    with pytest.raises(ValueError, match="shape"):
        emulated.sgd_update(w, v, g[:3], 0.01, 0.9, 0.0)


# ---- argument checks: before any launch ---------------------------------------------------------


def test_ops_reject_bad_arguments(emulated):
    x = rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="float32"):
        emulated.im2col(x.astype(np.float64), 3, 3, 1, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        emulated.im2col(x.transpose(0, 1, 3, 2), 3, 3, 1, 1)
    with pytest.raises(ValueError, match="4-d"):
        emulated.lrn_forward(x[0], 5, 2.0, 1e-4, 0.75)
    with pytest.raises(ValueError, match="odd"):
        emulated.lrn_forward(x, 4, 2.0, 1e-4, 0.75)
    with pytest.raises(ValueError, match="shape"):
        emulated.col2im(rand(27, 2 * 63), (2, 3, 8, 8), 3, 3, 1, 1)  # 64 positions, not 63
    with pytest.raises(ValueError, match="larger than"):
        emulated.maxpool_forward(x, 9, 2)
    _, argmax = emulated.maxpool_forward(x, 3, 2)
    with pytest.raises(ValueError, match="int32"):
        emulated.maxpool_backward(rand(2, 3, 3, 3), argmax.astype(np.int64), x.shape, 3, 2)
    with pytest.raises(ValueError, match="shape"):
        emulated.maxpool_backward(rand(2, 3, 4, 3), argmax, x.shape, 3, 2)
    with pytest.raises(ValueError, match="shape"):
        emulated.lrn_backward(x, x, x, x[:1], 5, 1e-4, 0.75)
    with pytest.raises(ValueError, match="must be an array"):
        emulated.im2col([[1.0]], 1, 1, 1, 0)


def test_outputs_of_2_31_elements_are_refused_before_allocation(emulated):
    """The kernels index with int: 2^31 elements or more is a clear error, and no 8 GiB array."""
    x = np.zeros((1, 1, 1480, 1480), np.float32)  # 8.8 MB; its 32x32 columns: 2.15e9 floats
    with pytest.raises(ValueError, match="cols would have 2149991424 elements"):
        emulated.im2col(x, 32, 32, 1, 0)
    with pytest.raises(ValueError, match="fewer than 2"):
        emulated.philox_uniform(0, 0, 6, 2**16, 2**15)


def test_ops_do_not_modify_inputs(emulated):
    x, dout = rand(2, 6, 7, 7, seed=13), rand(2, 6, 7, 7, seed=14)
    keep_x, keep_dout = x.copy(), dout.copy()
    out, scale = emulated.lrn_forward(x, 5, 2.0, 0.3, 0.75)
    keep_out, keep_scale = out.copy(), scale.copy()
    emulated.lrn_backward(dout, x, out, scale, 5, 0.3, 0.75)
    pooled, argmax = emulated.maxpool_forward(x, 3, 2)
    keep_argmax = argmax.copy()
    emulated.maxpool_backward(pooled, argmax, x.shape, 3, 2)
    cols = emulated.im2col(x, 3, 3, 1, 1)
    keep_cols = cols.copy()
    emulated.col2im(cols, x.shape, 3, 3, 1, 1)
    for now, before in [(x, keep_x), (dout, keep_dout), (out, keep_out), (scale, keep_scale),
                        (argmax, keep_argmax), (cols, keep_cols)]:
        np.testing.assert_array_equal(now, before)
