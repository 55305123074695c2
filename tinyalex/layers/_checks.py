"""Argument checks shared by every implementation of the layers: one clear ValueError each.

Each message names the layer, what it received and what it expected, so that a wrong shape
deep inside a model points straight at the layer that got it. The textbook layers, the fast
path (``tinyalex.fast``) and the CUDA launchers (``tinyalex.cuda``) all call these, so a
mistake reads the same whichever implementation runs.
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
        raise ValueError(f"{layer}: {name} has shape {tuple(a.shape)}, expected {tuple(shape)} "
                         "(the shape of the forward output)")


def check_positive_int(layer: str, name: str, value, minimum: int = 1):
    """Raise ValueError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum}, got {value!r}")


def check_conv_args(layer: str, x, w, b, stride, pad, groups):
    """The contract of conv_forward: x (N, C, H, W), w (F, C/groups, KH, KW), b (F,), one dtype."""
    for name, a, ndim in (("x", x, 4), ("w", w, 4), ("b", b, 1)):
        check_array(layer, name, a, ndim)
    for name, value, minimum in (("stride", stride, 1), ("pad", pad, 0), ("groups", groups, 1)):
        check_positive_int(layer, name, value, minimum)
    if not x.dtype == w.dtype == b.dtype:
        raise ValueError(f"{layer}: x, w, b must share one dtype, got {x.dtype}, {w.dtype}, "
                         f"{b.dtype}")
    (_, C, H, W), (F, Cg, KH, KW) = x.shape, w.shape
    if C % groups or F % groups:
        raise ValueError(f"{layer}: groups={groups} must divide the input channels C={C} and "
                         f"the kernel count F={F} (x {tuple(x.shape)}, w {tuple(w.shape)})")
    if Cg * groups != C:
        raise ValueError(f"{layer}: w {tuple(w.shape)} expects {Cg * groups} input channels "
                         f"with groups={groups}, but x {tuple(x.shape)} has C={C}")
    if b.shape != (F,):
        raise ValueError(f"{layer}: b must have shape ({F},) for w {tuple(w.shape)}, got "
                         f"{tuple(b.shape)}")
    if KH > H + 2 * pad or KW > W + 2 * pad:
        raise ValueError(f"{layer}: kernel {KH}x{KW} is larger than the padded input "
                         f"{H + 2 * pad}x{W + 2 * pad} (x {tuple(x.shape)}, pad={pad})")


def check_odd_window(layer: str, n):
    """The LRN window: n channels centred on each channel, so n must be odd."""
    check_positive_int(layer, "n", n)
    if n % 2 == 0:
        raise ValueError(f"{layer}: n={n} is even; the window i - n//2 .. i + n//2 is symmetric "
                         "only for odd n (the paper uses n=5)")


def check_lrn_args(layer: str, n, k, alpha, beta):
    """The contract of lrn_forward: an odd window n (symmetric around each channel), k > 0."""
    check_odd_window(layer, n)
    if not (k > 0 and alpha >= 0 and beta >= 0):
        raise ValueError(f"{layer}: need k > 0, alpha >= 0, beta >= 0; got k={k}, "
                         f"alpha={alpha}, beta={beta}")


def check_pool_args(layer: str, x, size, stride):
    """The contract of maxpool_forward: x (N, C, H, W) at least one size x size window."""
    check_array(layer, "x", x, 4)
    check_positive_int(layer, "size", size)
    check_positive_int(layer, "stride", stride)
    H, W = x.shape[2:]
    if size > H or size > W:
        raise ValueError(f"{layer}: window {size}x{size} is larger than the input {H}x{W} "
                         f"(x {tuple(x.shape)}); use a smaller window or a larger input")


def check_linear_args(layer: str, x, w, b):
    """The contract of linear_forward: x (N, D) or (N, C, H, W), w (M, D), b (M,), one dtype."""
    check_array(layer, "x", x, (2, 4))
    check_array(layer, "w", w, 2)
    check_array(layer, "b", b, 1)
    features = x.reshape(x.shape[0], -1).shape[1]
    if features != w.shape[1] or b.shape != w.shape[:1] or not x.dtype == w.dtype == b.dtype:
        raise ValueError(f"{layer}: x {tuple(x.shape)} {x.dtype} does not fit w "
                         f"{tuple(w.shape)} {w.dtype} (expects D={w.shape[1]}) and b "
                         f"{tuple(b.shape)} {b.dtype}: w is (M, D), b (M,), one dtype")


def check_dropout_p(layer: str, p):
    """p is the probability of dropping a unit: in [0, 1)."""
    if not (isinstance(p, (int, float)) and 0 <= p < 1):
        raise ValueError(f"{layer}: p is the drop probability and must be in [0, 1), got {p!r}")
