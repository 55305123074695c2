"""The fast paths of issue 6 against the plain versions they replace.

Each trick in the NumPy path (the wide im2col layout, chunked multi-core layers, the
recycling buffer pool, the chunked SGD update, the max-pool position scan) is compared
here with the straightforward code it stands for, so that the fast code can be trusted
and read against its plain twin.
"""

import os
import subprocess
import sys
import types

import numpy as np
import pytest
import reference

from tinyalex import parallel, workspace
from tinyalex.gradcheck import rel_error
from tinyalex.layers import (
    col2im,
    col2im_wide,
    conv_backward,
    conv_forward,
    conv_weight_grads,
    im2col,
    im2col_wide,
    lrn_backward,
    lrn_forward,
    maxpool_backward,
    maxpool_forward,
    relu_backward,
    relu_forward,
)
from tinyalex.layers import conv as conv_module
from tinyalex.layers.lrn import channel_window_sum
from tinyalex.model import AlexNet
from tinyalex.optim import SGD


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# (N, C, H, W, K, stride, pad)
WINDOW_CASES = [(2, 3, 7, 9, 3, 1, 0), (3, 4, 8, 7, 3, 2, 1), (2, 3, 15, 13, 5, 4, 2),
                (1, 2, 11, 11, 11, 4, 0)]


@pytest.mark.parametrize("case", WINDOW_CASES)
def test_im2col_wide_is_im2col_with_the_images_side_by_side(case):
    N, C, H, W, K, stride, pad = case
    x = rand(N, C, H, W)
    per_image = im2col(x, K, K, stride, pad)  # (N, C*K*K, P)
    wide = im2col_wide(x, K, K, stride, pad)  # (C*K*K, N*P)
    np.testing.assert_array_equal(wide, per_image.transpose(1, 0, 2).reshape(C * K * K, -1))


@pytest.mark.parametrize("case", WINDOW_CASES)
def test_col2im_wide_is_col2im_of_the_same_columns(case):
    N, C, H, W, K, stride, pad = case
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    wide = rand(C * K * K, N * OH * OW, seed=1)
    per_image = wide.reshape(C * K * K, N, OH * OW).transpose(1, 0, 2).copy()
    dx = col2im_wide(wide, (N, C, H, W), K, K, stride, pad)
    assert rel_error(dx, col2im(per_image, (N, C, H, W), K, K, stride, pad)) < 1e-14
    out = np.full((N, 2 * C, H, W), np.nan)  # writing into a view of a bigger array
    col2im_wide(wide, (N, C, H, W), K, K, stride, pad, out=out[:, C:])
    np.testing.assert_array_equal(out[:, C:], dx)
    assert np.isnan(out[:, :C]).all()


def per_image_ops():
    """A stand-in for tinyalex.cuda.ops: the kernel contract's layout, computed by the
    per-image array functions. With it, conv takes its kernel path on the CPU."""
    return types.SimpleNamespace(im2col=im2col, col2im=col2im)


CONV_CASES = [(2, 4, 8, 7, 6, 3, 2, 1, 2), (2, 3, 15, 13, 4, 5, 4, 2, 1),
              (3, 6, 5, 6, 4, 3, 1, 1, 2)]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernel_layout_path_matches_the_wide_path(case, monkeypatch):
    N, C, H, W, F, K, stride, pad, groups = case
    x, w, b = rand(N, C, H, W, seed=1), rand(F, C // groups, K, K, seed=2), rand(F, seed=3)
    out, cache = conv_forward(x, w, b, stride=stride, pad=pad, groups=groups)
    assert cache[2].ndim == 2  # wide layout on the NumPy path
    dout = rand(*out.shape, seed=4)
    grads = conv_backward(dout, cache)
    monkeypatch.setattr(conv_module, "kernel_ops", lambda a: per_image_ops())
    out_k, cache_k = conv_forward(x, w, b, stride=stride, pad=pad, groups=groups)
    assert cache_k[2].shape == (N, C * K * K, out.shape[2] * out.shape[3])  # the contract
    assert rel_error(out_k, out) < 1e-13
    assert rel_error(out_k, reference.conv(x, w, b, stride, pad, groups)) < 1e-12
    for fast, kernel_path in zip(grads, conv_backward(dout, cache_k), strict=True):
        assert rel_error(fast, kernel_path) < 1e-13


def test_conv_weight_grads_are_conv_backward_without_dx():
    x, w, b = rand(2, 4, 9, 9), rand(6, 2, 3, 3), rand(6)
    out, cache = conv_forward(x, w, b, pad=1, groups=2)
    dout = rand(*out.shape, seed=1)
    _, dw, db = conv_backward(dout, cache)
    dw2, db2 = conv_weight_grads(dout, cache)
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_channel_window_sum_matches_the_zero_padded_sum():
    a = rand(2, 7, 3, 4)
    for n in (1, 3, 5, 9, 15):  # 15 > 2 * 7: windows wider than the channel count
        half = n // 2
        padded = np.zeros((2, 7 + 2 * half, 3, 4))
        padded[:, half : half + 7] = a
        plain = sum(padded[:, offset : offset + 7] for offset in range(n))
        assert rel_error(channel_window_sum(a, n), plain) < 1e-15


def test_maxpool_positions_with_many_ties():
    """ReLU outputs are full of zeros: every tie must still go to the first maximum."""
    x = np.maximum(np.round(rand(3, 4, 11, 9), 0), 0)  # many equal values, many zeros
    out, cache = maxpool_forward(x, size=3, stride=2)
    ref_out, route = reference.maxpool(x, 3, 2)
    np.testing.assert_array_equal(out, ref_out)
    rows = route[..., 0] - 2 * np.arange(out.shape[2])[:, None]
    cols = route[..., 1] - 2 * np.arange(out.shape[3])[None, :]
    np.testing.assert_array_equal(cache[1], rows * 3 + cols)
    assert cache[1].dtype == np.int32


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of about one image, so that every chunked layer splits the batch."""
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 1)


def run_layers(x):
    """Forward and backward of the chunked layers on x (float32), as one tuple of arrays."""
    w, b = rand(8, 3, 3, 3, seed=5, dtype=np.float32), rand(8, seed=6, dtype=np.float32)
    results = []
    out, cache = conv_forward(x, w, b, pad=1, groups=2)
    results += [out, *conv_backward(rand(*out.shape, seed=7, dtype=np.float32), cache)]
    for forward, backward in ((relu_forward, relu_backward), (lrn_forward, lrn_backward),
                              (maxpool_forward, maxpool_backward)):
        out, cache = forward(x)
        results += [out, backward(rand(*out.shape, seed=8, dtype=np.float32), cache)]
    return results


def test_chunked_layers_equal_whole_batch_layers(monkeypatch):
    x = rand(7, 6, 11, 10, seed=3, dtype=np.float32)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 1 << 40)  # one chunk: the whole batch
    whole = run_layers(x)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 1)  # one image per chunk, on the threads
    assert len(parallel.batch_chunks(7, x.nbytes // 7)) == 7
    for a, b in zip(whole, run_layers(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_for_each_chunk_covers_every_item_once(tiny_chunks):
    x = np.zeros((13, 2))
    parallel.for_each_chunk(lambda rows: x.__setitem__(rows, x[rows] + 1), x)
    np.testing.assert_array_equal(x, 1)
    with pytest.raises(ZeroDivisionError):  # an error inside a chunk reaches the caller
        parallel.for_each_chunk(lambda rows: 1 / 0, x)


def test_pool_never_hands_out_a_buffer_in_use():
    shape = (workspace.MIN_BYTES // 4,)
    a = workspace.empty(shape, np.float32)
    a[...] = 1.0
    view = a[10:]  # a view keeps the buffer in use
    del a
    b = workspace.empty(shape, np.float32)
    b[...] = 2.0
    np.testing.assert_array_equal(view, 1.0)
    base = id(b.base)
    del b
    c = workspace.empty(shape, np.float32)  # b is free again: its buffer comes back
    assert id(c.base) == base
    del view, c
    assert workspace.release() >= 2 * workspace.MIN_BYTES


def test_a_training_step_is_the_same_with_and_without_the_pool(monkeypatch):
    def two_steps():
        net = AlexNet("mini", seed=0)
        opt = SGD(net.params, lr=0.01)
        x = rand(16, 3, 63, 63, seed=1, dtype=np.float32) * 64
        labels = np.arange(16) % 10
        for _ in range(2):
            _, _, dlogits = net.loss(x, labels)
            opt.step(net.params, net.backward(dlogits))
        return net.params

    pooled = two_steps()
    monkeypatch.setattr(workspace, "enabled", False)
    plain = two_steps()
    for name in plain:
        np.testing.assert_array_equal(pooled[name], plain[name])


def test_chunked_sgd_is_the_paper_update(tiny_chunks):
    rng = np.random.default_rng(0)
    params = {"a.w": rng.standard_normal((5, 7)), "a.b": rng.standard_normal(7),
              "f.w": np.asfortranarray(rng.standard_normal((4, 3)))}  # not C-contiguous
    grads = {name: rng.standard_normal(p.shape) for name, p in params.items()}
    opt = SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01)
    for v in opt.velocity.values():
        v[...] = 0.5
    expected = {}
    for name, w in params.items():  # the plain formula of section 5
        decay = 0.01 if name.endswith(".w") else 0.0
        v = 0.9 * 0.5 - decay * 0.1 * w - 0.1 * grads[name]
        expected[name] = w + v
    opt.step(params, grads)
    for name in params:
        assert rel_error(params[name], expected[name]) < 1e-15


@pytest.mark.parametrize("user_value,expected", [(None, "4"), ("12", "12")])
def test_importing_tinyalex_shortens_openblas_spinning_unless_the_user_chose(user_value,
                                                                            expected):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if user_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = user_value
    code = "import os, tinyalex; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == expected


def test_pool_gives_back_buffers_that_stop_being_used(monkeypatch):
    monkeypatch.setattr(workspace, "MAX_IDLE_REQUESTS", 100)
    workspace.release()
    big = workspace.empty((3 * workspace.MIN_BYTES,), np.uint8)  # e.g. an evaluation batch
    del big
    for _ in range(300):  # training goes on with another size; the big buffer idles
        workspace.empty((workspace.MIN_BYTES,), np.uint8)
    assert workspace.pooled_bytes() == workspace.MIN_BYTES


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_chunked_layers_work_in_a_forked_child(tiny_chunks):
    x = rand(4, 3, 9, 9, dtype=np.float32)
    expected, _ = lrn_forward(x)  # starts the thread pool in this process
    pid = os.fork()
    if pid == 0:  # the child: the same layer must not wait for the parent's threads
        out, _ = lrn_forward(x)
        os._exit(0 if np.array_equal(out, expected) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
