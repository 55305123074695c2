"""Numerical gradient checking: the one implementation used by the tests and the lessons.

A backward pass is right when it agrees with centred finite differences,

    df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)     (error O(h^2)),

computed in float64 so that rounding does not drown the comparison.
"""

from __future__ import annotations

import numpy as np

from tinyalex.backend import to_numpy


def rel_error(a, b) -> float:
    """max|a - b| / max(1e-8, max(|a| + |b|)): 0 for equal arrays, ~1 for unrelated ones."""
    a = to_numpy(a).astype(np.float64)
    b = to_numpy(b).astype(np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def numerical_gradient(f, x, dout=None, h: float = 1e-5):
    """Centred-difference gradient of f with respect to the array x.

    f: a function of no arguments that reads x (x is perturbed *in place*, one element at a
        time, and restored). It returns either a scalar (then dout must be None) or an array,
        in which case the gradient of sum(f() * dout) is computed, i.e. the vector-Jacobian
        product with the upstream gradient dout, exactly what a backward function returns.
    Returns an array of x's shape and dtype. Loops over the elements of x: for small arrays.
    """
    grad = np.zeros(x.shape, dtype=x.dtype)
    weight = None if dout is None else to_numpy(dout)
    if not (isinstance(x, np.ndarray) and x.flags.c_contiguous):
        raise ValueError("numerical_gradient: x must be a C-contiguous NumPy array "
                         "(it is perturbed in place)")
    flat_x = x.reshape(-1)  # a view: writing to it perturbs x

    def value():
        y = to_numpy(f())
        return float(y) if weight is None else float(np.sum(y * weight))

    for i in range(flat_x.size):
        saved = flat_x[i].copy()
        flat_x[i] = saved + h
        plus = value()
        flat_x[i] = saved - h
        minus = value()
        flat_x[i] = saved
        grad.reshape(-1)[i] = (plus - minus) / (2 * h)
    return grad


def check_layer(forward, backward, args, kwargs=None, seed: int = 0, h: float = 1e-5):
    """Compare a layer's backward with numerical gradients for each of its array arguments.

    forward(*args, **kwargs) -> (out, cache); backward(dout, cache) -> gradient(s) in the
    order of args. A random upstream gradient dout is used. Returns the list of rel_errors,
    one per argument of args (float64 arrays advised).
    """
    kwargs = kwargs or {}
    out, cache = forward(*args, **kwargs)
    dout = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    errors = []
    for arg, grad in zip(args, grads, strict=True):
        numeric = numerical_gradient(lambda: forward(*args, **kwargs)[0], arg, dout, h)
        errors.append(rel_error(grad, numeric))
    return errors
