"""Argument checks shared by the layer functions: one clear ValueError per kind of mistake.

Each message names the layer, what it received and what it expected, so that a wrong shape
deep inside a model points straight at the layer that got it.
"""

from __future__ import annotations

FLOAT_DTYPES = ("float32", "float64")


def check_array(layer: str, name: str, a, ndim: int | tuple[int, ...], float_dtype=True):
    """Raise ValueError unless ``a`` has ``ndim`` dimensions (and a float32/64 dtype)."""
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if not hasattr(a, "ndim") or not hasattr(a, "dtype"):
        raise ValueError(f"{layer}: {name} must be a NumPy or CuPy array, got {type(a).__name__}")
    if a.ndim not in ndims:
        expected = " or ".join(f"{d}-d" for d in ndims)
        raise ValueError(f"{layer}: {name} must be {expected}, got shape {tuple(a.shape)}")
    if float_dtype and a.dtype.name not in FLOAT_DTYPES:
        raise ValueError(f"{layer}: {name} must be float32 or float64, got {a.dtype}")


def check_same_shape(layer: str, name: str, a, shape):
    """Raise ValueError unless ``a.shape == shape`` (used for upstream gradients)."""
    if tuple(a.shape) != tuple(shape):
        raise ValueError(
            f"{layer}: {name} has shape {tuple(a.shape)}, expected {tuple(shape)} "
            "(the shape of the forward output)"
        )


def check_positive_int(layer: str, name: str, value, minimum: int = 1):
    """Raise ValueError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum}, got {value!r}")
