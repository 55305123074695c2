"""Lesson 1, the tour: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing


def test_output_size_mistakes():
    assert "padding is missing" in failing("conv_output_size",
                                           lambda size, k, s, p: (size - k) // s + 1)
    assert "+1 is missing" in failing("conv_output_size",
                                      lambda size, k, s, p: (size + 2 * p - k) // s)
    assert "rounded up" in failing("conv_output_size",
                                   lambda size, k, s, p: int(np.ceil((size + 2 * p - k) / s)) + 1)
    assert "floor division" in failing("conv_output_size",
                                       lambda size, k, s, p: (size + 2 * p - k) / s + 1)


def test_parameter_and_cost_mistakes():
    assert "biases are missing" in failing("conv_params",
                                           lambda c, f, k, g: f * (c // g) * k * k)
    assert "groups" in failing("conv_params", lambda c, f, k, g: f * c * k * k + f)
    assert "FLOPs" in failing("conv_mult_adds",
                              lambda c, f, k, s, g: 2 * f * s * s * (c // g) * k * k)
    assert "1/groups of the work" in failing("conv_mult_adds",
                                             lambda c, f, k, s, g: f * s * s * c * k * k)
