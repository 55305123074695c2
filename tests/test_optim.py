"""tinyalex.optim: the SGD optimiser runs the update of the network's implementation (and
refuses to choose one itself); SGD(lr_scale=...), per-parameter learning-rate factors (the
2012 code froze conv1 and conv2 late in training), the same in the textbook, fast and CUDA
(emulated kernel) updates."""

import numpy as np
import pytest

from tinyalex.model import AlexNet, AlexNetConfig, ConvSpec
from tinyalex.optim import SGD, sgd_update

IMPLS = ["textbook", "fast", "cuda"]  # cuda on NumPy arrays: kernels/sgd.cu in the emulator


def tiny_net(impl):
    config = AlexNetConfig(name="tiny", image_size=11, input_size=11, input_scale=1 / 64,
                           convs=(ConvSpec(4, 3, lrn=True, pool=True), ConvSpec(6, 3, groups=2)),
                           hidden=(8,), num_classes=3, init="he", bias_one=(), dropout=0.0)
    return AlexNet(config, seed=0, impl=impl)


def train(net, opt, steps):
    rng = np.random.default_rng(0)
    x = (64 * rng.standard_normal((4, 3, 11, 11))).astype(np.float32)
    labels = np.array([0, 1, 2, 0])
    for _ in range(steps):
        _, _, dlogits = net.loss(x, labels)
        opt.step(net.params, net.backward(dlogits))


@pytest.mark.parametrize("impl", IMPLS)
def test_a_frozen_layer_does_not_move_while_the_others_do(impl):
    net = tiny_net(impl)
    assert net.impl == impl
    before = {k: v.copy() for k, v in net.params.items()}
    opt = SGD(net.params, lr=0.05, impl=net.impl, lr_scale={"conv1.w": 0.0, "conv1.b": 0.0})
    train(net, opt, 3)
    for name, w in net.params.items():
        if name.startswith("conv1"):
            assert np.array_equal(w, before[name]), name
            assert not np.any(opt.velocity[name]), name
        else:
            assert not np.allclose(w, before[name]), name


@pytest.mark.parametrize("impl", IMPLS)
def test_a_factor_is_the_same_update_at_a_scaled_rate(impl):
    rng = np.random.default_rng(1)
    params = {"a.w": rng.standard_normal((5, 7)).astype(np.float32),
              "a.b": rng.standard_normal(5).astype(np.float32)}
    grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    opt = SGD({k: v.copy() for k, v in params.items()}, lr=0.1, impl=impl,
              lr_scale={"a.w": 0.25})
    got = {k: v.copy() for k, v in params.items()}
    for _ in range(2):
        opt.step(got, grads)
    want = {k: v.copy() for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    for _ in range(2):
        sgd_update(want["a.w"], velocity["a.w"], grads["a.w"], 0.1 * 0.25, 0.9, 5e-4)
        sgd_update(want["a.b"], velocity["a.b"], grads["a.b"], 0.1, 0.9, 0.0)
    for k in params:
        np.testing.assert_array_equal(got[k], want[k])  # bit for bit, every implementation


def test_freezing_mid_run_leaves_only_the_momentum_tail():
    """Set to 0 after some steps: no new gradient steps, the old velocity decays by 0.9."""
    net = tiny_net("textbook")
    opt = SGD(net.params, lr=0.05, impl=net.impl)
    train(net, opt, 2)
    opt.set_lr_scale({"conv1.w": 0.0})
    w, v = net.params["conv1.w"].copy(), opt.velocity["conv1.w"].copy()
    train(net, opt, 3)
    tail = (0.9 + 0.9**2 + 0.9**3) * v
    np.testing.assert_allclose(net.params["conv1.w"], w + tail, rtol=1e-5, atol=1e-7)


def test_bad_factors_are_refused_and_the_state_round_trips():
    params = {"conv1.w": np.zeros(3, np.float32), "conv1.b": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match="no parameter named conv9.w; the parameters are "
                       "conv1.w, conv1.b"):
        SGD(params, lr_scale={"conv9.w": 0.0})
    with pytest.raises(ValueError, match=">= 0"):
        SGD(params, lr_scale={"conv1.w": -1.0})
    opt = SGD(params, lr_scale={"conv1.w": 0.1})
    assert "lr_scale" not in SGD(params).state_dict()  # plain runs' checkpoints unchanged
    other = SGD(params)
    other.load_state_dict(opt.state_dict(), opt.velocity)
    assert other.lr_scale == {"conv1.w": 0.1}


@pytest.mark.parametrize("impl", IMPLS)
def test_sgd_runs_the_update_of_the_implementation_it_is_given(impl):
    import tinyalex.cuda.layers
    import tinyalex.fast
    import tinyalex.layers

    module = {"textbook": tinyalex.layers, "fast": tinyalex.fast,
              "cuda": tinyalex.cuda.layers}[impl]
    net = tiny_net(impl)
    assert SGD(net.params, impl=net.impl)._update is module.sgd_update
    assert sgd_update is tinyalex.layers.sgd_update  # the rule, where a student looks for it


@pytest.mark.parametrize("impl", ["auto", "quick"])
def test_sgd_does_not_choose_an_implementation(impl):
    params = tiny_net("textbook").params
    with pytest.raises(ValueError, match="impl=net.impl"):
        SGD(params, impl=impl)
