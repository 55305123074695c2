"""Mean image and PCA, crop/flip windows, PCA lighting, ten-crop, and the BatchLoader."""

import numpy as np
import pytest

from tinyalex import data
from tinyalex.data import augment
from tinyalex.data import stats as stats_module


def random_set(n=40, size=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, classes, n).astype(np.int64)
    return data.ImageSet(images, labels, [f"c{i}" for i in range(classes)], [], "train")


def test_mean_image_and_pca_match_direct_computation(monkeypatch):
    rng = np.random.default_rng(1)
    # correlated colours so the PCA has distinct eigenvalues
    base = rng.normal(0, 1, (30, 10, 10, 3)) @ np.array([[40, 10, 0], [0, 25, 5], [0, 0, 8.0]])
    images = np.clip(base + 120, 0, 255).astype(np.uint8)
    train = data.ImageSet(images, np.zeros(30, dtype=np.int64), ["a"], [], "train")
    stats = data.compute_stats(train)
    assert {k: v.dtype for k, v in stats.items()} == {"mean": np.float32, "pca_eigvals":
                                                      np.float32, "pca_eigvecs": np.float32}
    x = images.astype(np.float64)
    mean_hwc = x.mean(axis=0)
    np.testing.assert_allclose(stats["mean"], mean_hwc.transpose(2, 0, 1), rtol=1e-6)
    centred = (x - mean_hwc).reshape(-1, 3)                  # what the net sees, per pixel
    cov = centred.T @ centred / len(centred)
    vals, vecs = stats["pca_eigvals"], stats["pca_eigvecs"]
    assert vals[0] >= vals[1] >= vals[2] > 0
    np.testing.assert_allclose(vecs @ np.diag(vals) @ vecs.T, cov, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(3), atol=1e-5)
    # streaming: tiny chunks give the same numbers (integer sums are exact)
    monkeypatch.setattr(stats_module, "CHUNK_PIXELS", 150)
    small = data.compute_stats(train)
    for key in stats:
        np.testing.assert_allclose(small[key], stats[key], rtol=1e-6, atol=1e-6)


def test_crop_batch_windows_flips_and_mean_window():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 10, 10, 3), dtype=np.uint8)
    mean = rng.normal(100, 20, (3, 10, 10)).astype(np.float32)
    top, left = np.array([0, 3, 4, 1, 2]), np.array([4, 0, 4, 2, 1])
    flip = np.array([False, True, False, True, True])
    x = data.crop_batch(images, mean, 6, top, left, flip)
    assert x.shape == (5, 3, 6, 6) and x.dtype == np.float32 and x.flags.c_contiguous
    for b in range(5):   # the reference: subtract the mean image, then slice, then mirror
        centred = images[b].astype(np.float32).transpose(2, 0, 1) - mean      # (3, 10, 10)
        window = centred[:, top[b]:top[b] + 6, left[b]:left[b] + 6]
        expected = window[:, :, ::-1] if flip[b] else window
        np.testing.assert_allclose(x[b], expected, rtol=1e-6)


def test_random_windows_cover_every_position_and_flip_half():
    rng = np.random.default_rng(0)
    top, left, flip = augment.random_windows(rng, 20000, 72, 63)
    assert set(top) == set(left) == set(range(10))          # 72 - 63 + 1 positions
    assert abs(flip.mean() - 0.5) < 0.02
    t2, l2, f2 = augment.random_windows(np.random.default_rng(0), 20000, 72, 63, flip=False,
                                        crop=False)
    assert set(t2) == set(l2) == {4} and not f2.any()      # centre (72-63)//2 = 4, no flips


def test_lighting_offsets_have_the_expected_covariance():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    eigvecs = q.astype(np.float32)
    eigvals = np.array([9000.0, 1500.0, 300.0], dtype=np.float32)          # 0..255 units^2
    offsets = augment.lighting_offsets(np.random.default_rng(1), 200_000, eigvals, eigvecs)
    assert offsets.shape == (200_000, 3) and offsets.dtype == np.float32
    # offset = P (a * l / 255), a ~ N(0, 0.1^2): covariance P diag((0.1 l / 255)^2) P^T
    expected = eigvecs @ np.diag((0.1 * eigvals / 255.0) ** 2) @ eigvecs.T
    np.testing.assert_allclose(np.cov(offsets.T.astype(np.float64)), expected, rtol=0.02,
                               atol=0.02 * expected.max())
    np.testing.assert_allclose(offsets.mean(axis=0), 0, atol=0.02)
    # the same offset is added to every pixel of its image
    x = np.zeros((2, 3, 4, 4), dtype=np.float32)
    augment.add_lighting(x, offsets[:2])
    np.testing.assert_array_equal(x[:, :, 3, 1], offsets[:2])


def test_ten_crop_windows_are_exact():
    windows = data.ten_crop_windows(72, 63)
    assert windows == [(0, 0, False), (0, 9, False), (9, 0, False), (9, 9, False), (4, 4, False),
                       (0, 0, True), (0, 9, True), (9, 0, True), (9, 9, True), (4, 4, True)]


def test_ten_crop_predict_averages_softmax_outputs_over_the_right_crops():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 9, 9, 3), dtype=np.uint8)
    mean = np.full((3, 9, 9), 7.0, dtype=np.float32)
    seen = []
    weights = rng.normal(0, 0.05, (4, 3 * 6 * 6)).astype(np.float32)

    def predict(x):                       # a fixed linear "net" returning logits
        seen.append(x.copy())
        return x.reshape(len(x), -1) @ weights.T
    probs = data.ten_crop_predict(predict, images, 6, mean)
    assert probs.shape == (3, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert len(seen) == 10
    expected_logits = []
    for (top, left, flip), x in zip(data.ten_crop_windows(9, 6), seen, strict=True):
        window = images[:, top:top + 6, left:left + 6].astype(np.float32).transpose(0, 3, 1, 2)
        window = window - 7.0
        np.testing.assert_array_equal(x, window[..., ::-1] if flip else window)
        expected_logits.append(x.reshape(3, -1) @ weights.T)
    logits = np.stack(expected_logits)                                    # (10, B, K)
    softmaxes = np.exp(logits - logits.max(-1, keepdims=True))
    softmaxes /= softmaxes.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, softmaxes.mean(axis=0), rtol=1e-5)
    # averaging logits instead would give a different answer here
    mean_logits = logits.mean(axis=0)
    of_mean = np.exp(mean_logits - mean_logits.max(-1, keepdims=True))
    of_mean /= of_mean.sum(-1, keepdims=True)
    assert np.abs(of_mean - probs).max() > 1e-3
    # outputs="probs": the function's outputs are averaged as they are
    np.testing.assert_allclose(
        data.ten_crop_predict(lambda x: np.full((len(x), 4), 0.25, np.float32), images, 6, mean,
                              outputs="probs"), 0.25)


def loader_batches(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def test_loader_shapes_shuffle_and_length():
    train = random_set(n=42)
    stats = data.compute_stats(train)
    loader = data.BatchLoader(train, 8, 9, stats)
    assert len(loader) == 6 and len(data.BatchLoader(train, 8, 9, stats, drop_last=True)) == 5
    batches = loader_batches(loader)
    assert [len(y) for _, y in batches] == [8, 8, 8, 8, 8, 2]
    x, y = batches[0]
    assert x.shape == (8, 3, 9, 9) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.dtype == np.int64
    order = loader.order()
    assert sorted(order) == list(range(42)) and list(order) != list(range(42))
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), train.labels[order])


def test_loader_is_deterministic_across_workers_and_restarts_and_uses_no_global_rng():
    train = random_set(n=50)
    stats = data.compute_stats(train)
    # the legacy global generator must not move (ruff's NPY002 flags any use of it: on purpose)
    np.random.seed(123)  # noqa: NPY002
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    serial = loader_batches(data.BatchLoader(train, 8, 9, stats, seed=5, epoch=2))
    threaded = loader_batches(data.BatchLoader(train, 8, 9, stats, seed=5, epoch=2,
                                               num_workers=2))
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    for (xs, ys), (xt, yt) in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(xs, xt)
        np.testing.assert_array_equal(ys, yt)
    # a "restarted run": a loader built for epoch 0 and moved to epoch 2 gives the same batches
    restarted = data.BatchLoader(train, 8, 9, stats, seed=5, epoch=0, num_workers=2)
    restarted.set_epoch(2)
    for (xs, _), (xr, _) in zip(serial, loader_batches(restarted), strict=True):
        np.testing.assert_array_equal(xs, xr)
    # and another epoch or seed gives other batches
    other = loader_batches(data.BatchLoader(train, 8, 9, stats, seed=5, epoch=3))
    assert not np.array_equal(other[0][0], serial[0][0])


def test_loader_augmentations_and_eval_mode():
    train = random_set(n=16, size=12)
    stats = data.compute_stats(train)
    mean = stats["mean"]
    plain = data.BatchLoader(train, 16, 8, stats, train=True, shuffle=False, flip=False,
                             lighting=False, random_crop=False)
    evaluation = data.BatchLoader(train, 16, 8, stats, train=False)
    centre = data.center_crop_batch(train.images, mean, 8)
    np.testing.assert_array_equal(next(iter(plain))[0], centre)
    np.testing.assert_array_equal(next(iter(evaluation))[0], centre)
    np.testing.assert_array_equal(next(iter(evaluation))[1], train.labels)   # no shuffle
    # with lighting only: a constant colour shift per image, against the centre crop
    lit = data.BatchLoader(train, 16, 8, stats, shuffle=False, flip=False, random_crop=False)
    shift = next(iter(lit))[0] - centre                                     # (B, 3, 8, 8)
    np.testing.assert_allclose(shift, shift[:, :, :1, :1] + 0 * shift, atol=1e-3)
    assert np.abs(shift).max() > 0
    # with crops + flips: every output is some window of the image, maybe mirrored
    full = data.BatchLoader(train, 16, 8, stats, shuffle=False, lighting=False)
    x = next(iter(full))[0]
    windows = [(t, lft, f) for t in range(5) for lft in range(5) for f in (False, True)]
    for b in range(16):
        found = [w for w in windows if np.array_equal(
            x[b], data.crop_batch(train.images[b:b + 1], mean, 8, np.array([w[0]]),
                                  np.array([w[1]]), np.array([w[2]]))[0])]
        assert found, b


def test_loader_rejects_stats_of_another_size():
    train = random_set(size=12)
    other = data.compute_stats(random_set(size=10))
    with pytest.raises(ValueError, match="compute the stats on this image size"):
        data.BatchLoader(train, 4, 8, other)


def test_loader_iterate_from_a_batch_index_resumes_mid_epoch():
    train = random_set(n=50)
    stats = data.compute_stats(train)
    loader = data.BatchLoader(train, 8, 9, stats, seed=1, epoch=4, num_workers=2)
    full = loader_batches(loader)
    tail = [(x.copy(), y.copy()) for x, y in loader.iterate(start=3)]
    assert len(tail) == len(full) - 3
    for (xf, yf), (xt, yt) in zip(full[3:], tail, strict=True):
        np.testing.assert_array_equal(xf, xt)
        np.testing.assert_array_equal(yf, yt)
