"""The CUDA path on a real GPU (CuPy): every kernel, the paper network, staging and train.py.

Marked ``gpu``: skipped, with the reason shown, where ``tinyalex.backend.gpu_available()`` is
False (see conftest.py); run them with ``pytest -m gpu`` on a machine with CuPy and a GPU. CuPy
is imported inside the tests, so collecting this file never needs it. No test returns early:
what cannot run here is skipped with its reason.

Every test starts from a memory pool whose new blocks are filled with 0xFF bytes (NaN as
float32, -1 as int32): an output element that a kernel forgets to write fails the comparison
instead of passing as a lucky zero. Shapes span many blocks of 256 threads, so a kernel that
gets the block arithmetic wrong fails too; the paper preset runs at batch 128; an index case
comes within 0.03% of 2^31 elements.

``TINYALEX_FAKE_CUPY=1 pytest -m gpu`` runs this file on tests/fake_cupy.py (CI does, through
tests/test_fake_cupy.py): there the tests marked ``real_gpu_only`` skip, saying why.
"""

import sys

import numpy as np
import pytest
from conftest import make_tiny_folder
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

from tinyalex import data, layers
from tinyalex.impl import resolve_impl
from tinyalex.noise import philox_uniform

pytestmark = pytest.mark.gpu

ON_FAKE = getattr(sys.modules.get("cupy"), "FAKE", False)
real_gpu_only = pytest.mark.skipif(
    ON_FAKE, reason="needs a real GPU: too large for the CPU emulator behind tests/fake_cupy.py")

# Cases that span many blocks (LRN: 38 blocks; pooling: 48 and 190).
LRN_MANY_BLOCKS = (3, 13, 9, 27, 5, 2.0, 1e-4, 0.75)
POOL_MANY_BLOCKS = (4, 12, 27, 27, 3, 2)


@pytest.fixture
def cp(monkeypatch):
    """The cupy module, with TINYALEX_KERNELS at its default (CuPy float32 takes the kernels)."""
    import cupy

    monkeypatch.delenv("TINYALEX_KERNELS", raising=False)
    return cupy


@pytest.fixture(autouse=True)
def memory_full_of_nan(cp):
    """New device memory holds 0xFF bytes (NaN, -1) during each test; the pool is emptied first.

    (tests/fake_cupy.py fills every new array so already.)
    """
    if ON_FAKE:
        yield
        return
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()

    def allocate(nbytes):
        memory = pool.malloc(nbytes)
        memory.memset_async(0xFF, nbytes)
        return memory

    cp.cuda.set_allocator(allocate)
    try:
        yield
    finally:
        cp.cuda.Device().synchronize()
        cp.cuda.set_allocator(pool.malloc)
        pool.free_all_blocks()


@pytest.fixture
def gpu_ops(cp):
    from tinyalex.cuda import ops

    return ops.for_device("gpu")


@pytest.fixture
def cuda_layers(cp):
    from tinyalex.cuda import layers as cuda_layers

    return cuda_layers


def test_the_pool_really_is_full_of_nan(cp):
    """The fixture's promise, checked: a fresh array that nobody wrote is all NaN."""
    assert np.isnan(cp.empty(1000, dtype=cp.float32).get()).all()


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


@pytest.mark.parametrize("case", [*LRN_CASES, LRN_MANY_BLOCKS])
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
@pytest.mark.parametrize("case", [*POOL_CASES, POOL_MANY_BLOCKS])
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


def test_philox_kernel_equals_numpy_bit_for_bit(cp, gpu_ops):
    """fc6's dropout numbers at batch 128 (512 blocks), odd offsets, a 64-bit seed."""
    args = (2**33 + 5, 1234, 6, 128, 4096, 256, 3)
    got = gpu_ops.philox_uniform(*args)
    assert isinstance(got, cp.ndarray)
    np.testing.assert_array_equal(got.get().view(np.uint32),
                                  philox_uniform(*args).view(np.uint32))


def test_crop_kernel_equals_the_loader_bit_for_bit(cp):
    """The paper's 227 crops of 256 images with flips and lighting, through GPU staging."""
    from tinyalex.cuda import staging

    rng = np.random.default_rng(0)
    images = data.ImageSet(rng.integers(0, 256, (10, 256, 256, 3), dtype=np.uint8),
                           rng.integers(0, 5, 10), list("abcde"))
    loader = data.BatchLoader(images, 4, 227, data.compute_stats(images), seed=7)
    expected = list(loader.iterate())
    staged = list(staging.gpu_batches(loader, 0, num_classes=5))
    assert len(staged) == len(expected) == 3  # 4 + 4 + 2: the short last batch too
    for (x, y), (x_ref, y_ref) in zip(staged, expected, strict=True):
        np.testing.assert_array_equal(x.get().view(np.uint32), x_ref.view(np.uint32))
        np.testing.assert_array_equal(y.get(), y_ref)


def test_gpu_ops_refuse_numpy_arrays(gpu_ops):
    with pytest.raises(ValueError, match="cupy arrays"):
        gpu_ops.im2col(rand(1, 1, 4, 4), 3, 3, 1, 0)


def train_step(net, x, labels, impl_check):
    """loss, logits, grads, params after one SGD step, all as NumPy arrays."""
    from tinyalex.backend import to_numpy
    from tinyalex.optim import SGD

    assert net.impl == impl_check
    loss, logits, dlogits = net.loss(x, labels, train=True)
    grads = net.backward(dlogits)
    SGD(net.params, lr=0.01, impl=net.impl).step(net.params, grads)
    return (float(loss), to_numpy(logits), {k: to_numpy(v) for k, v in grads.items()},
            {k: to_numpy(v) for k, v in net.params.items()})


def assert_same_step(got, want, tol_logits, tol_grads):
    loss, logits, grads, params = got
    loss_ref, logits_ref, grads_ref, params_ref = want
    assert abs(loss - loss_ref) <= tol_logits * (1 + abs(loss_ref))
    ok, error = scaled_close(logits, logits_ref, tol_logits)
    assert ok, f"logits differ by {error}"
    for name in grads_ref:
        ok, error = scaled_close(grads[name], grads_ref[name], tol_grads)
        assert ok, f"d{name} differs by {error}"
        ok, error = scaled_close(params[name], params_ref[name], 1e-5)
        assert ok, f"{name} after the step differs by {error}"


def test_mini_training_step_on_gpu_matches_numpy(cp):
    """One SGD step of the mini net: CuPy (kernels + cuBLAS) vs NumPy (the textbook)."""
    from tinyalex.model import AlexNet

    rng = np.random.default_rng(0)
    x = (64 * rng.standard_normal((8, 3, 63, 63))).astype(np.float32)
    labels = rng.integers(0, 10, size=8)
    want = train_step(AlexNet("mini", seed=0, impl="textbook"), x, labels, "textbook")
    got = train_step(AlexNet("mini", seed=0).to("gpu"), cp.asarray(x), cp.asarray(labels), "cuda")
    # cuBLAS sums the matrix products in another order than NumPy: allow 1e-4 through 8 layers.
    assert_same_step(got, want, 1e-4, 1e-4)


@real_gpu_only
def test_paper_preset_at_batch_128_matches_the_numpy_fast_path(cp):
    """Section 3.5's network, batch 128, forward + backward + SGD: GPU vs tinyalex.fast.

    The same dropout masks on both (tinyalex.noise); the products differ in summation order
    only, over up to 9216 terms (fc6), so the gradients get 1e-3 of their largest value.
    """
    from tinyalex.model import AlexNet

    rng = np.random.default_rng(1)
    x = (64 * rng.standard_normal((128, 3, 227, 227))).astype(np.float32)
    labels = rng.integers(0, 1000, size=128)
    want = train_step(AlexNet("paper", seed=0, impl="fast"), x, labels, "fast")
    got = train_step(AlexNet("paper", seed=0).to("gpu"), cp.asarray(x), cp.asarray(labels),
                     "cuda")
    assert_same_step(got, want, 1e-4, 1e-3)


def sample_indices(total: int, count: int = 200_000) -> np.ndarray:
    """Random flat indices plus the last 4096 (where an int overflow would show), int64."""
    rng = np.random.default_rng(2)
    return np.unique(np.concatenate([rng.integers(0, total, count),
                                     np.arange(total - 4096, total)]))


@real_gpu_only
def test_indexing_near_2_31_elements(cp, gpu_ops):
    """im2col, col2im and LRN with outputs of 2^31 - 458752 (or fewer) elements: sampled checks.

    Flat indices are int in the kernels; the last elements are where a product overflowing
    int would write elsewhere (or fault). About 35 GB of GPU memory at the peak.
    """
    # im2col: x (1, 1, 1479, 1479), 32 x 32 windows -> cols (1024, 1448 * 1448)
    x = cp.asarray(np.random.default_rng(3).standard_normal((1, 1, 1479, 1479), np.float32))
    cols = gpu_ops.im2col(x, 32, 32, 1, 0)
    total = cols.size
    assert 2**31 - total == 458752
    flat = sample_indices(total)
    got = cols.ravel()[cp.asarray(flat)].get()
    row, column = np.divmod(flat, 1448 * 1448)
    i, j = np.divmod(row, 32)
    oh, ow = np.divmod(column, 1448)
    np.testing.assert_array_equal(got, x.get()[0, 0, oh + i, ow + j])
    del cols
    # col2im with 1x1 windows is a transposing copy: dx[n, c, h, w] = cols[c, (n, h, w)]
    N, C, H, W = 4, 8, 8191, 8191
    cols = cp.arange(C * N * H * W, dtype=cp.int32).astype(cp.float32).reshape(C, N * H * W)
    dx = gpu_ops.col2im(cols, (N, C, H, W), 1, 1, 1, 0)
    flat = sample_indices(dx.size)
    got = dx.ravel()[cp.asarray(flat)].get()
    n, rest = np.divmod(flat, C * H * W)
    c, pixel = np.divmod(rest, H * W)
    np.testing.assert_array_equal(got, (c * (N * H * W) + n * H * W + pixel).astype(np.float32))
    del cols, dx
    # LRN forward over (4, 64, 2896, 2896), 2^31 - 458752 elements; the window across c
    N, C, HW = 4, 64, 2896 * 2896
    x = cp.random.standard_normal((N, C, 2896, 2896), dtype=cp.float32)
    out, scale = gpu_ops.lrn_forward(x, 5, 2.0, 1e-4, 0.75)
    flat = sample_indices(x.size, 50_000)
    c = (flat // HW) % C
    neighbours = flat[:, None] + (np.arange(-2, 3)[None, :] * HW)  # (S, 5) channel window
    inside = (c[:, None] + np.arange(-2, 3)[None, :] >= 0) & (c[:, None] + np.arange(-2, 3) < C)
    values = x.ravel()[cp.asarray(np.where(inside, neighbours, flat[:, None]))].get()
    sum_sq = (np.where(inside, values, 0).astype(np.float64) ** 2).sum(axis=1)
    expected_scale = 2.0 + 1e-4 * sum_sq
    np.testing.assert_allclose(scale.ravel()[cp.asarray(flat)].get(), expected_scale, rtol=1e-5)
    expected = values[:, 2] * expected_scale**-0.75
    np.testing.assert_allclose(out.ravel()[cp.asarray(flat)].get(), expected, rtol=1e-5,
                               atol=1e-6)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """train/ and val/ with three classes of 72x72 images (conftest.make_tiny_folder)."""
    return make_tiny_folder(tmp_path_factory.mktemp("tiny-gpu"), n_train=8, n_val=2)


def test_train_py_on_gpu_matches_the_cpu(cp, tiny_folder, tmp_path, monkeypatch):
    """Two epochs of python -m tinyalex.train on --device gpu and cpu: the same weights.

    Staging (pinned uint8 batches, GPU crops), the device tally and GPU dropout against the
    CPU loop; cuBLAS and OpenBLAS differ in rounding only.
    """
    from tinyalex import checkpoint, train

    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    results = {}
    for device in ("cpu", "gpu"):
        out = tmp_path / device
        assert train.main(["--data", str(tiny_folder), "--out", str(out), "--epochs", "2",
                           "--batch-size", "8", "--no-progress", "--num-workers", "2",
                           "--device", device]) == 0
        results[device] = checkpoint.load(out / "last.npz")
    (cpu, cpu_meta), (gpu, gpu_meta) = results["cpu"], results["gpu"]
    assert gpu_meta["dropout_step"] == cpu_meta["dropout_step"] == 6
    for key in ("train_loss", "train_top1", "val_loss"):
        assert abs(gpu_meta["history"][-1][key] - cpu_meta["history"][-1][key]) < 1e-3, key
    for name, value in cpu["param"].items():
        ok, error = scaled_close(gpu["param"][name], value, 1e-4)
        assert ok, f"{name} differs by {error}"
