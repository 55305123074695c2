"""The AlexNet model: the paper's shapes and parameter count, whole-net gradients, overfitting."""

import numpy as np
import pytest

from tinyalex.gradcheck import numerical_gradient, rel_error
from tinyalex.layers import softmax_cross_entropy
from tinyalex.model import PRESETS, AlexNet, AlexNetConfig, ConvSpec, layer_shapes
from tinyalex.optim import SGD


def test_paper_preset_shapes_and_parameter_count():
    rows = {name: shape for name, shape, _, _ in layer_shapes(PRESETS["paper"])}
    assert rows["conv1"] == (96, 55, 55)
    assert rows["pool1"] == (96, 27, 27)
    assert rows["conv2"] == (256, 27, 27)
    assert rows["pool2"] == (256, 13, 13)
    assert rows["conv3"] == (384, 13, 13)
    assert rows["conv4"] == (384, 13, 13)
    assert rows["conv5"] == (256, 13, 13)
    assert rows["pool5"] == (256, 6, 6)
    assert rows["fc6"] == (4096,) and rows["fc7"] == (4096,) and rows["fc8"] == (1000,)
    net = AlexNet("paper", seed=0)
    assert net.num_params() == 60_965_224
    assert net.params["conv2.w"].shape == (256, 48, 5, 5)  # grouped: each kernel sees 48 maps
    assert net.params["conv3.w"].shape == (384, 256, 3, 3)  # conv3 reads both towers
    assert net.params["fc6.w"].shape == (4096, 9216)
    assert "724,406,816" in net.summary()  # ~0.72 G multiply-adds per image


def test_paper_forward_shapes_layer_by_layer():
    """Run the real paper net on one image and check every step's output shape."""
    net = AlexNet("paper", seed=0)
    x = np.random.default_rng(0).standard_normal((1, 3, 227, 227)).astype(np.float32)
    logits = net.forward(x, keep_activations=True)
    assert logits.shape == (1, 1000) and logits.dtype == np.float32
    for name, shape, _, _ in layer_shapes(net.config):
        assert net.activations[name].shape == (1, *shape), name


def test_paper_initialisation():
    net = AlexNet("paper", seed=0)
    for name, value in net.params.items():
        if name.endswith(".w"):
            assert abs(value.std() - 0.01) < 0.001, name  # N(0, 0.01^2), section 5
        else:
            layer = name.split(".")[0]
            expected = 1.0 if layer in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
            assert np.all(value == expected), name


def test_mini_preset_keeps_every_paper_mechanism():
    config = PRESETS["mini"]
    assert [c.groups for c in config.convs] == [1, 2, 1, 2, 2]
    assert [c.lrn for c in config.convs] == [True, True, False, False, False]
    assert [c.pool for c in config.convs] == [True, True, False, False, True]
    assert config.pool_size == 3 and config.pool_stride == 2 and config.dropout == 0.5
    assert config.init == "he" and config.input_scale == 1 / 64


def tiny_config():
    """A small net with every mechanism, for gradient checks in float64."""
    return AlexNetConfig(
        name="tiny", image_size=17, input_size=15,
        convs=(ConvSpec(4, 3, stride=2, lrn=True, pool=True),  # 4x7x7 -> 4x3x3
               ConvSpec(4, 3, pad=1, groups=2, lrn=True),
               ConvSpec(6, 3, pad=1),
               ConvSpec(4, 3, pad=1, groups=2),
               ConvSpec(4, 3, pad=1, groups=2, pool=True)),  # -> 4x1x1
        hidden=(6, 5), num_classes=3, dropout=0.5, lrn_alpha=0.2, init="he",
    )


@pytest.mark.parametrize("impl", ["textbook", "fast"])
def test_whole_network_gradient_check(impl):
    net = AlexNet(tiny_config(), seed=1, dtype=np.float64, impl=impl)
    assert net.impl == impl
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 15, 15))
    labels = np.array([0, 2])

    def loss():
        net.dropout_step = 0  # the same dropout masks on every evaluation
        return softmax_cross_entropy(net.forward(x, train=True), labels)[0]

    net.dropout_step = 0
    _, _, dlogits = net.loss(x, labels)
    grads = net.backward(dlogits)
    assert set(grads) == set(net.params)
    for name in net.params:
        numeric = numerical_gradient(loss, net.params[name])
        assert rel_error(grads[name], numeric) < 1e-6, name


@pytest.mark.parametrize("impl", ["textbook", "fast"])
def test_backward_after_an_evaluation_forward_gives_the_image_gradient(impl):
    """A saliency map: the gradient of a class score with respect to the image, dropout off."""
    net = AlexNet(tiny_config(), seed=3, dtype=np.float64, impl=impl)
    x = np.random.default_rng(4).standard_normal((2, 3, 15, 15))
    score = np.zeros((2, 3))
    score[:, 1] = 1.0  # d(sum of the class-1 logits) / d logits

    def class_score():
        return float((net.forward(x, train=False) * score).sum())

    net.forward(x, train=False)
    grads = net.backward(score, input_grad=True)
    assert set(grads) == set(net.params) | {"input"}
    assert rel_error(grads["input"], numerical_gradient(class_score, x)) < 1e-6
    assert rel_error(grads["conv1.w"], numerical_gradient(class_score, net.params["conv1.w"])) \
        < 1e-6
    net.forward(x, train=False)
    assert "input" not in net.backward(score)  # training does not pay for it


def test_a_config_with_one_hidden_layer_trains():
    config = PRESETS["mini"].replace(hidden=(32,))
    net = AlexNet(config, num_classes=4)
    assert sorted(name for name in net.params if name.startswith("fc")) == \
        ["fc6.b", "fc6.w", "fc7.b", "fc7.w"]  # fc7 is the classifier here
    x = np.random.default_rng(0).standard_normal((3, 3, 63, 63)).astype(np.float32)
    _, logits, dlogits = net.loss(x, np.array([0, 1, 3]))
    assert logits.shape == (3, 4)
    assert set(net.backward(dlogits)) == set(net.params)


def test_overfits_a_tiny_batch():
    """Eight random images with their own labels: the net must memorise them.

    Dropout is switched off, as usual for this sanity check: it is there to stop memorising.
    """
    net = AlexNet(PRESETS["mini"].replace(dropout=0.0), num_classes=8, seed=0)
    rng = np.random.default_rng(0)
    x = (64 * rng.standard_normal((8, 3, 63, 63))).astype(np.float32)  # 0..255 pixel units
    labels = np.arange(8)
    opt = SGD(net.params, lr=0.01)
    losses = []
    for _ in range(50):
        loss, _, dlogits = net.loss(x, labels)
        opt.step(net.params, net.backward(dlogits))
        losses.append(float(loss))
    assert losses[0] > 2.0 and losses[-1] < 0.01, (losses[0], losses[-1])


def test_bad_input_shape():
    net = AlexNet("mini")
    with pytest.raises(ValueError, match=r"input must be \(N, 3, 63, 63\)"):
        net.forward(np.zeros((1, 3, 64, 64), dtype=np.float32))


def test_sgd_is_the_papers_update():
    """v <- 0.9 v - 0.0005 lr w - lr g; w <- w + v, with no decay on biases."""
    w, b = np.array([1.0, -2.0]), np.array([0.5])
    params = {"fc.w": w.copy(), "fc.b": b.copy()}
    opt = SGD(params, lr=0.1)
    g = {"fc.w": np.array([0.3, 0.1]), "fc.b": np.array([0.2])}
    opt.step(params, g)
    v1 = -0.0005 * 0.1 * w - 0.1 * g["fc.w"]
    np.testing.assert_allclose(params["fc.w"], w + v1)
    np.testing.assert_allclose(params["fc.b"], b - 0.1 * g["fc.b"])
    w1 = w + v1
    opt.lr = 0.01  # the rate sits inside the velocity: the old velocity keeps its size
    opt.step(params, g)
    v2 = 0.9 * v1 - 0.0005 * 0.01 * w1 - 0.01 * g["fc.w"]
    np.testing.assert_allclose(params["fc.w"], w1 + v2)


def test_schedules():
    from tinyalex.optim import ReduceOnPlateau, StepSchedule

    plateau = ReduceOnPlateau(0.01, patience=1)
    rates = [plateau.step(err) for err in [0.5, 0.4, 0.4, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3,
                                           0.3, 0.3, 0.3]]
    assert rates[:3] == [0.01, 0.01, 0.01] and rates[3] == pytest.approx(0.001)
    assert min(rates) == pytest.approx(1e-5) and plateau.reductions == 3  # at most three times
    restored = ReduceOnPlateau(1.0)
    restored.load_state_dict(plateau.state_dict())
    assert restored.state_dict() == plateau.state_dict()
    step = StepSchedule(0.1, milestones=[2, 4])
    assert [step.step(0.0, epoch) for epoch in range(5)] == pytest.approx(
        [0.1, 0.01, 0.01, 0.001, 0.001])
