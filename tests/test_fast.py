"""The machinery of the fast path (tinyalex.fast) against the plain code it stands for.

Each layer of tinyalex.fast is compared with its textbook twin in test_implementations.py.
Here: what exists only for speed -- the chunked multi-core work (parallel.py), the recycling
buffer pool (workspace.py), writing col2im into a view, the chunked SGD update -- and the
OpenBLAS setting that the programs, not the library, make.
"""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from tinyalex import fast
from tinyalex import layers as textbook
from tinyalex.fast import parallel, workspace
from tinyalex.fast.conv import _col2im_into
from tinyalex.fast.lrn import channel_window_sum
from tinyalex.gradcheck import rel_error
from tinyalex.layers.lrn import channel_window_sum as textbook_window_sum
from tinyalex.model import AlexNet
from tinyalex.optim import SGD, sgd_update


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_col2im_into_a_view_of_a_bigger_array():
    """The grouped backward writes each group's dx straight into its channels of dx."""
    N, C, H, W, K, stride, pad = 3, 4, 8, 7, 3, 2, 1
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    cols = rand(C * K * K, N * OH * OW, seed=1)
    out = np.full((N, 2 * C, H, W), np.nan)
    _col2im_into(out[:, C:], cols, (N, C, H, W), K, K, stride, pad)
    assert rel_error(out[:, C:], textbook.col2im(cols, (N, C, H, W), K, K, stride, pad)) < 1e-14
    assert np.isnan(out[:, :C]).all()


def test_channel_window_sum_without_a_padded_copy():
    a = rand(2, 7, 3, 4)
    for n in (1, 3, 5, 9, 15):  # 15 > 2 * 7: windows wider than the channel count
        assert rel_error(channel_window_sum(a, n), textbook_window_sum(a, n)) < 1e-15


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of about one image, so that every chunked layer splits the batch."""
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 1)


def run_layers(x):
    """Forward and backward of the chunked layers on x (float32), as one tuple of arrays."""
    w, b = rand(8, 3, 3, 3, seed=5, dtype=np.float32), rand(8, seed=6, dtype=np.float32)
    results = []
    out, cache = fast.conv_forward(x, w, b, pad=1, groups=2)
    results += [out, *fast.conv_backward(rand(*out.shape, seed=7, dtype=np.float32), cache)]
    for forward, backward in ((fast.relu_forward, fast.relu_backward),
                              (fast.lrn_forward, fast.lrn_backward),
                              (fast.maxpool_forward, fast.maxpool_backward)):
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
        net = AlexNet("mini", seed=0, impl="fast")
        opt = SGD(net.params, lr=0.01, impl="fast")
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


def test_pool_gives_back_buffers_that_stop_being_used(monkeypatch):
    monkeypatch.setattr(workspace, "MAX_IDLE_REQUESTS", 100)
    workspace.release()
    big = workspace.empty((3 * workspace.MIN_BYTES,), np.uint8)  # e.g. an evaluation batch
    del big
    for _ in range(300):  # training goes on with another size; the big buffer idles
        workspace.empty((workspace.MIN_BYTES,), np.uint8)
    assert workspace.pooled_bytes() == workspace.MIN_BYTES


def test_chunked_sgd_is_the_paper_update(tiny_chunks):
    rng = np.random.default_rng(0)
    shapes = {"a.w": (5, 7), "a.b": (7,), "f.w": (4, 3)}
    params = {name: rng.standard_normal(shape) for name, shape in shapes.items()}
    params["f.w"] = np.asfortranarray(params["f.w"])  # not C-contiguous: the plain update
    grads = {name: rng.standard_normal(p.shape) for name, p in params.items()}
    expected = {}
    for name, w in params.items():  # the plain formula of section 5
        decay = 0.01 if name.endswith(".w") else 0.0
        expected[name] = w + (0.9 * 0.5 - decay * 0.1 * w - 0.1 * grads[name])
    for update in (fast.sgd_update, sgd_update):
        opt = SGD({k: v.copy() for k, v in params.items()}, lr=0.1, momentum=0.9,
                  weight_decay=0.01, impl="fast" if update is fast.sgd_update else "textbook")
        assert opt._update is update
        for v in opt.velocity.values():
            v[...] = 0.5
        updated = {k: v.copy(order="K") for k, v in params.items()}
        opt.step(updated, grads)
        for name in params:
            assert rel_error(updated[name], expected[name]) < 1e-15, (update, name)


@pytest.mark.parametrize("modules,user_value,expected", [
    ("tinyalex, tinyalex.layers, tinyalex.fast, tinyalex.model", None, "unset"),
    ("tinyalex.train", None, "4"),
    ("tinyalex.train", "12", "12"),
])
def test_openblas_is_quieted_by_the_programs_not_by_the_library(modules, user_value, expected):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if user_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = user_value
    code = f"import os, {modules}; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset'))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == expected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_chunked_layers_work_in_a_forked_child(tiny_chunks):
    x = rand(4, 3, 9, 9, dtype=np.float32)
    expected, _ = fast.lrn_forward(x)  # starts the thread pool in this process
    pid = os.fork()
    if pid == 0:  # the child: the same layer must not wait for the parent's threads
        out, _ = fast.lrn_forward(x)
        os._exit(0 if np.array_equal(out, expected) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_products_in_pieces_equal_one_product(monkeypatch):
    """conv's products cut into pieces on the threads (one-thread BLAS) give the results of
    the whole products on one thread, groups and padding included."""
    x, w, b = (rand(*s, seed=i, dtype=np.float32) for i, s in
               enumerate([(5, 4, 9, 8), (6, 2, 3, 3), (6,)]))
    dout = rand(5, 6, 5, 4, seed=9, dtype=np.float32)

    def conv_all():
        out, cache = fast.conv_forward(x, w, b, stride=2, pad=1, groups=2)
        return [out, *fast.conv_backward(dout, cache), *fast.conv_weight_grads(dout, cache)]

    monkeypatch.setattr(parallel, "threads", lambda: 1)
    whole = conv_all()
    monkeypatch.setattr(parallel, "threads", lambda: 3)  # 12 pieces: more than the 5 images
    for a, b_ in zip(whole, conv_all(), strict=True):  # the weight gradients are summed
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5)  # in another order


def test_blas_one_thread_restores_the_thread_count():
    from tinyalex.fast import blas

    found = blas._openblas()
    if found is None:
        pytest.skip("this NumPy is not built on OpenBLAS: nothing to switch")
    setter, getter = found
    before = getter()
    with blas.one_thread():
        assert getter() == 1
    assert getter() == before


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux affinity calls only")
def test_pool_threads_are_pinned_one_per_core():
    """Each of the pool's workers runs on its own core of this process's cores, in order
    (two workers on one core halved the two-thread speed in some processes)."""
    allowed = sorted(os.sched_getaffinity(0))
    cores = (allowed * 2)[:2]  # a one-core machine: both workers on that core
    pool = parallel._Pool(2, cores)
    started = threading.Barrier(2)
    seen = {}

    def own_affinity(_):
        started.wait(timeout=10)  # both workers hold one item each
        seen[threading.current_thread().name] = os.sched_getaffinity(0)

    pool.map(own_affinity, range(2))
    assert seen == {"tinyalex-0": {cores[0]}, "tinyalex-1": {cores[1]}}
    assert os.sched_getaffinity(0) == set(allowed)  # the calling thread is left alone


def test_pool_runs_every_item_once_and_reraises():
    pool = parallel._Pool(3, None)
    done = []
    pool.map(done.append, range(100))
    assert sorted(done) == list(range(100))
    pool.map(done.append, [])  # nothing to do: returns at once

    def fail_on_7(i):
        if i == 7:
            raise ValueError("item 7")

    with pytest.raises(ValueError, match="item 7"):
        pool.map(fail_on_7, range(20))
    inner = []
    pool.map(lambda i: pool.map(inner.append, [i, i]), range(4))  # a map inside a map
    assert sorted(inner) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_pool_keeps_no_reference_to_a_finished_map():
    """After a map its function and items are let go: the buffer pool reuses an array only
    once nothing refers to it (a kept reference cost the mini step 80 MB)."""
    import gc
    import weakref

    pool = parallel._Pool(2, None)
    item = np.ones(3)
    seen = weakref.ref(item)
    pool.map(lambda a: a.sum(), [item])
    del item
    gc.collect()
    assert seen() is None
