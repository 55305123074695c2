"""ConvSpec(pool_before_lrn=True): the 2012 code's order (pool, then LRN) in place of the
paper's (LRN, then pool), checked against forward passes composed by hand from the layers."""

import numpy as np
import pytest

from tinyalex import layers
from tinyalex.gradcheck import numerical_gradient, rel_error
from tinyalex.model import AlexNet, AlexNetConfig, ConvSpec, build_steps


def small_config(pool_before_lrn: bool) -> AlexNetConfig:
    return AlexNetConfig(
        name="order", image_size=19, input_size=19, input_scale=1 / 64,
        convs=(ConvSpec(4, 3, pad=1, lrn=True, pool=True, pool_before_lrn=pool_before_lrn),
               ConvSpec(6, 3, pad=1, groups=2, lrn=True, pool=True)),
        hidden=(8,), num_classes=3, dropout=0.0, init="he", bias_one=(),
        lrn_alpha=0.5)  # a large alpha, so that the order makes a visible difference


def by_hand(net, x, pool_first: bool):
    """conv1 relu1 [pool1 norm1 | norm1 pool1] conv2 relu2 norm2 pool2 fc3 relu3 fc4."""
    p, c = net.params, net.config
    lrn = dict(n=c.lrn_n, k=c.lrn_k, alpha=c.lrn_alpha, beta=c.lrn_beta)
    pool = dict(size=c.pool_size, stride=c.pool_stride)
    a = layers.conv_forward(x * np.float64(1 / 64), p["conv1.w"], p["conv1.b"], pad=1)[0]
    a = layers.relu_forward(a)[0]
    if pool_first:
        a = layers.lrn_forward(layers.maxpool_forward(a, **pool)[0], **lrn)[0]
    else:
        a = layers.maxpool_forward(layers.lrn_forward(a, **lrn)[0], **pool)[0]
    a = layers.relu_forward(layers.conv_forward(a, p["conv2.w"], p["conv2.b"], pad=1,
                                                groups=2)[0])[0]
    a = layers.maxpool_forward(layers.lrn_forward(a, **lrn)[0], **pool)[0]
    a = layers.relu_forward(layers.linear_forward(a, p["fc3.w"], p["fc3.b"])[0])[0]
    return layers.linear_forward(a, p["fc4.w"], p["fc4.b"])[0]


def test_the_step_sequence_follows_the_option():
    names = [s.name for s in build_steps(small_config(True))]
    assert names[:4] == ["conv1", "relu1", "pool1", "norm1"]
    assert names[4:8] == ["conv2", "relu2", "norm2", "pool2"]  # only conv1 was swapped
    assert [s.name for s in build_steps(small_config(False))][:4] == ["conv1", "relu1", "norm1",
                                                                     "pool1"]
    assert ConvSpec(8, 3).pool_before_lrn is False  # the paper's order is the default


@pytest.mark.parametrize("impl", ["textbook", "fast"])
def test_each_order_equals_its_hand_composed_forward(impl):
    x = np.random.default_rng(0).standard_normal((2, 3, 19, 19)) * 64
    outputs = {}
    for pool_first in (False, True):
        net = AlexNet(small_config(pool_first), seed=1, dtype=np.float64, impl=impl)
        outputs[pool_first] = net.forward(x)
        assert rel_error(outputs[pool_first], by_hand(net, x, pool_first)) < 1e-10
        assert rel_error(outputs[pool_first], by_hand(net, x, not pool_first)) > 1e-3
    assert not np.allclose(outputs[False], outputs[True])  # same weights, another function


def test_the_swapped_order_backward_is_its_gradient():
    net = AlexNet(small_config(True), seed=2, dtype=np.float64, impl="textbook")
    x = np.random.default_rng(1).standard_normal((2, 3, 19, 19)) * 64
    score = np.random.default_rng(2).standard_normal((2, 3))
    net.forward(x)
    grads = net.backward(score, input_grad=True)

    def f():
        return float((net.forward(x) * score).sum())

    assert rel_error(grads["conv1.w"], numerical_gradient(f, net.params["conv1.w"])) < 1e-6
    assert rel_error(grads["input"], numerical_gradient(f, x)) < 1e-6


def test_the_option_survives_a_checkpoint_round_trip():
    config = small_config(True)
    again = AlexNetConfig.from_dict(config.to_dict())
    assert again == config and again.convs[0].pool_before_lrn
    old = config.to_dict()
    for conv in old["convs"]:
        del conv["pool_before_lrn"]  # a checkpoint written before the option existed
    assert AlexNetConfig.from_dict(old).convs[0].pool_before_lrn is False
