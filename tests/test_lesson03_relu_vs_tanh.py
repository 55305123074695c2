"""Lesson 3, ReLU and tanh: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex.lessons import lesson03_relu_vs_tanh as lesson


def test_relu_and_tanh_backward_mistakes():
    assert "gated on the gradient" in failing("relu_backward", lambda dout, x: dout * (dout > 0))
    assert "x > 0, not x >= 0" in failing("relu_backward", lambda dout, x: dout * (x >= 0))
    assert "not 1 - out" in failing("tanh_backward", lambda dout, out: dout * (1 - out))
    assert "OUTPUT already" in failing("tanh_backward",
                                       lambda dout, out: dout * (1 - np.tanh(out) ** 2))
    assert "chain rule" in failing("tanh_backward", lambda dout, out: 1 - out**2)


def test_steps_to_error_mistakes():
    def zero_based(errors, target, window):
        steps = lesson.steps_to_error(errors, target, window)
        return None if steps is None else steps - 1

    assert "one too few" in failing("steps_to_error", zero_based)

    def strict(errors, target, window):
        e = np.asarray(errors)
        for k in range(window, len(e) + 1):
            if e[k - window : k].mean() < target:
                return k
        return None

    assert "<= target" in failing("steps_to_error", strict)

    def never_none(errors, target, window):
        steps = lesson.steps_to_error(errors, target, window)
        return len(errors) if steps is None else steps

    assert "return None" in failing("steps_to_error", never_none)


def test_lecun_init_and_the_race_settings():

    net = lesson.race_net("modern", "tanh", seed=0, size=24)
    w = net.params["conv2.w"]
    assert abs(w.std() * np.sqrt(np.prod(w.shape[1:])) - 1) < 0.1  # N(0, 1 / fan_in)
    paper = lesson.race_net("paper", "relu", seed=0, size=24)
    assert abs(paper.params["conv1.w"].std() - 0.01) < 0.001 and paper.config.input_scale == 1
