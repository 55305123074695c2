"""Lesson 12, the paper and the code that won: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex import layers
from tinyalex.lessons import lesson12_paper_and_code as lesson


def test_lrn_2012_mistakes():
    def scale_as_alpha(x, size, scale, power):
        return layers.lrn_forward(x, n=size, k=1.0, alpha=scale, beta=power)[0]

    assert "divides its scale by size" in failing("lrn_2012", scale_as_alpha)

    def paper_k(x, size, scale, power):
        return layers.lrn_forward(x, n=size, k=2.0, alpha=scale / size, beta=power)[0]

    assert "minDiv" in failing("lrn_2012", paper_k)

    def paper_formula(x, size, scale, power):
        return layers.lrn_forward(x, n=size, alpha=scale, beta=power)[0]  # k defaults to 2

    assert "the paper's formula with the code's number" in failing("lrn_2012", paper_formula)


def test_conv1_2012_mistakes():
    def paper_order(x, w, b, conv, lrn, pool):
        out = layers.relu_forward(layers.conv_forward(x, w, b, **conv)[0])[0]
        return layers.maxpool_forward(layers.lrn_forward(out, **lrn)[0], **pool)[0]

    assert "the paper's order" in failing("conv1_2012", paper_order)

    def relu_last(x, w, b, conv, lrn, pool):
        out = layers.maxpool_forward(layers.conv_forward(x, w, b, **conv)[0], **pool)[0]
        return np.maximum(layers.lrn_forward(out, **lrn)[0], 0)

    assert "ReLU comes right after the convolution" in failing("conv1_2012", relu_last)

    def no_pool(x, w, b, conv, lrn, pool):
        out = layers.relu_forward(layers.conv_forward(x, w, b, **conv)[0])[0]
        return layers.lrn_forward(out, **lrn)[0]

    assert "max-pool is missing" in failing("conv1_2012", no_pool)


def test_sgd_step_scaled_mistakes():
    def skips_frozen(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        for name, w in params.items():
            if lr_scale.get(name, 1.0) == 0:
                continue  # "frozen": but the paper's rule at rate 0 still decays v
            rate = lr * lr_scale.get(name, 1.0)
            decay = weight_decay if name.endswith(".w") else 0.0
            velocity[name][...] = (momentum * velocity[name] - decay * rate * w
                                   - rate * grads[name])
            w += velocity[name]

    assert "was skipped" in failing("sgd_step_scaled", skips_frozen)

    def ignores_scale(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        lesson.sgd_step_scaled(params, velocity, grads, lr, momentum, weight_decay, {})

    assert "factors are ignored" in failing("sgd_step_scaled", ignores_scale)

    def decay_unscaled(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        for name, w in params.items():
            decay = weight_decay if name.endswith(".w") else 0.0
            v = velocity[name]
            v *= momentum
            v -= decay * lr * w  # the full rate: a frozen layer keeps decaying
            v -= lr * lr_scale.get(name, 1.0) * grads[name]
            w += v

    assert "weight decay must use the scaled rate" in failing("sgd_step_scaled", decay_unscaled)

    def decays_biases(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        for name, w in params.items():
            rate = lr * lr_scale.get(name, 1.0)
            v = velocity[name]
            v *= momentum
            v -= weight_decay * rate * w + rate * grads[name]
            w += v

    assert "biases" in failing("sgd_step_scaled", decays_biases)

    def rebinding_w(params, velocity, grads, lr, momentum, weight_decay, lr_scale):
        for name, w in params.items():
            rate = lr * lr_scale.get(name, 1.0)
            decay = weight_decay if name.endswith(".w") else 0.0
            v = velocity[name]
            v *= momentum
            v -= decay * rate * w + rate * grads[name]
            w = w + v  # noqa: PLW2901

    assert "v is right, but w did not change" in failing("sgd_step_scaled", rebinding_w)
