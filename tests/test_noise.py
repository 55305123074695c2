"""tinyalex.noise: Philox4x32-10 dropout numbers, a pure function of where a unit is.

Known answers from Random123 (the reference implementation of Philox), exactness of the
float conversion, the offsets that let several processes draw one batch's masks, the CUDA
kernel (through the CPU emulator) against NumPy bit for bit, and the network using it.
"""

import numpy as np
import pytest

from tinyalex.cuda import ops
from tinyalex.model import AlexNet
from tinyalex.noise import DropoutNoise, philox4x32, philox_uniform, uniform_from_bits

# Random123's tests/kat_vectors, the three "philox4x32 10" lines: counter, key, result.
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in philox4x32(counter, key)) == expected


def test_philox_broadcasts_over_arrays_like_single_calls():
    counters = np.arange(6, dtype=np.uint64)
    words = philox4x32((counters, 7, 8, 9), (1, 2))
    for i in range(6):
        assert tuple(int(w[i]) for w in words) == tuple(int(w) for w in
                                                        philox4x32((i, 7, 8, 9), (1, 2)))


def test_uniform_is_the_top_24_bits_exactly():
    bits = np.array([0, 0xFF, 0x100, 0x80000000, 0xFFFFFFFF], dtype=np.uint32)
    u = uniform_from_bits(bits)
    assert u.dtype == np.float32
    np.testing.assert_array_equal(u, [0.0, 0.0, 2.0**-24, 0.5, 1 - 2.0**-24])


def test_numbers_look_uniform_and_layers_steps_seeds_differ():
    u = philox_uniform(seed=0, step=0, layer=6, rows=256, units=4096)
    assert u.shape == (256, 4096) and u.dtype == np.float32
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 2e-3 and abs(u.var() - 1 / 12) < 1e-3
    assert abs((u < 0.5).mean() - 0.5) < 2e-3  # the dropout decision itself is fair
    for other in (dict(seed=1, step=0, layer=6), dict(seed=0, step=1, layer=6),
                  dict(seed=0, step=0, layer=7)):
        v = philox_uniform(rows=256, units=4096, **other)
        assert abs(np.corrcoef(u.ravel(), v.ravel())[0, 1]) < 0.01, other
        assert (u != v).mean() > 0.99, other


def test_offsets_split_a_batch_or_a_layer_exactly():
    """Data parallel (row offsets) and tower parallel (unit offsets) give the one-process masks."""
    full = philox_uniform(seed=3, step=11, layer=6, rows=8, units=30)
    rows = [philox_uniform(3, 11, 6, 3, 30), philox_uniform(3, 11, 6, 5, 30, row_offset=3)]
    np.testing.assert_array_equal(np.concatenate(rows, axis=0), full)
    cuts = (0, 7, 15, 30)  # odd cuts: a counter's four words are shared between two parts
    parts = [philox_uniform(3, 11, 6, 8, b - a, unit_offset=a)
             for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), full)
    np.testing.assert_array_equal(philox_uniform(3, 11, 6, 2, 4, row_offset=5, unit_offset=9),
                                  full[5:7, 9:13])


def test_dropout_noise_reshapes_and_checks():
    noise = DropoutNoise(seed=5, step=2, layer=7, row_offset=4)
    u = noise.random((3, 2, 5))
    np.testing.assert_array_equal(u.reshape(3, 10), philox_uniform(5, 2, 7, 3, 10, 4))
    with pytest.raises(ValueError, match="float32"):
        noise.random((3, 2), dtype=np.float64)
    with pytest.raises(ValueError, match="seed"):
        DropoutNoise(seed=-1, step=0, layer=6)
    with pytest.raises(ValueError, match="step = 4294967296"):
        philox_uniform(0, 2**32, 6, 1, 1)
    with pytest.raises(ValueError, match="last sample"):
        philox_uniform(0, 0, 6, 2, 1, row_offset=2**32 - 1)
    with pytest.raises(ValueError, match="units must be an integer >= 0"):
        philox_uniform(0, 0, 6, 2, -1)


@pytest.mark.parametrize("args", [
    (0, 0, 6, 5, 13, 0, 0),
    (2**40 + 7, 123456, 7, 9, 4096, 3, 1),  # a 64-bit seed, offsets not multiples of 4
    (5, 2**32 - 1, 2**32 - 1, 3, 7, 2**32 - 3, 2**32 - 7),  # every counter word at its limit
], ids=["small", "fc-like", "limits"])
def test_the_cuda_kernel_equals_numpy_bit_for_bit(args):
    got = ops.for_device("emulate").philox_uniform(*args)
    want = philox_uniform(*args)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def dropout_masks(net, x):
    """{step name: mask} of one training forward pass (the dropout caches)."""
    net.forward(x, train=True)
    return {step.name: cache for step, cache in zip(net.steps, net._caches, strict=True)
            if step.kind == "dropout"}


def test_the_network_draws_the_same_masks_everywhere():
    """Textbook, fast and the emulated CUDA kernels; and a batch split over two processes."""
    x = np.random.default_rng(0).standard_normal((6, 3, 63, 63)).astype(np.float32) * 64
    masks = {impl: dropout_masks(AlexNet("mini", seed=4, impl=impl), x)
             for impl in ("textbook", "fast", "cuda")}
    assert set(masks["textbook"]) == {"drop6", "drop7"}
    for impl in ("fast", "cuda"):
        for name, mask in masks["textbook"].items():
            np.testing.assert_array_equal(masks[impl][name], mask, err_msg=f"{impl} {name}")
    kept = masks["textbook"]["drop6"] > 0
    assert 0.4 < kept.mean() < 0.6 and (masks["textbook"]["drop6"][kept] == 2).all()
    # Two "processes", each with half of the batch and its sample offset:
    halves = []
    for start in (0, 3):
        net = AlexNet("mini", seed=4, impl="fast")
        net.sample_offset = start
        halves.append(dropout_masks(net, x[start:start + 3]))
    for name, mask in masks["textbook"].items():
        np.testing.assert_array_equal(np.concatenate([h[name] for h in halves]), mask)
    # Two "towers", each holding half of fc6's and fc7's units (512 wide in the mini preset):
    for start in (0, 256):
        tower = AlexNet("mini", seed=4)
        tower.unit_offset = start
        for step in (s for s in tower.steps if s.kind == "dropout"):
            u = tower.dropout_noise(step, np.zeros((6, 256), np.float32)).random((6, 256))
            np.testing.assert_array_equal(np.where(u >= 0.5, 2, 0),
                                          masks["textbook"][step.name][:, start:start + 256])

def test_each_training_pass_advances_the_step_and_evaluation_does_not():
    net = AlexNet("mini", seed=0)
    x = np.zeros((2, 3, 63, 63), np.float32)
    first = dropout_masks(net, x)
    assert net.dropout_step == 1
    net.forward(x, train=False)
    assert net.dropout_step == 1
    second = dropout_masks(net, x)
    assert (first["drop6"] != second["drop6"]).any()
    net.dropout_step = 0  # what --resume does with the saved counter
    np.testing.assert_array_equal(dropout_masks(net, x)["drop6"], first["drop6"])
