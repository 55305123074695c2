"""The three implementations of every layer, and the loop references, against the textbook.

``tinyalex.layers`` is the definition a student reads; ``tinyalex.layers.naive`` the same as
plain loops; ``tinyalex.fast`` the CPU speed path; ``tinyalex.cuda.layers`` the CUDA kernels,
here through the CPU emulator. Every layer function of every implementation is run on odd,
non-square shapes and compared with the textbook: outputs and every gradient, float64 and
float32 (the kernels are float32 only). Tolerances: float64 1e-12 relative; float32
|got - textbook| <= 1e-5 + 1e-5 |textbook| forward and 1e-4 backward (sums in another order).
"""

import ast
import types
from pathlib import Path

import numpy as np
import pytest

import tinyalex
from tinyalex import fast
from tinyalex import layers as textbook
from tinyalex.cuda import layers as cuda_layers
from tinyalex.gradcheck import rel_error
from tinyalex.layers import LAYER_FUNCTIONS, naive

# the loop references under the textbook's names
NAIVE = types.SimpleNamespace(**{name[: -len("_naive")]: getattr(naive, name)
                                 for name in dir(naive) if name.endswith("_naive")})
IMPLEMENTATIONS = {"naive": NAIVE, "fast": fast, "cuda": cuda_layers}


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# name -> (forward, backward, argument shapes, keyword arguments); odd, non-square shapes
CASES = {
    "conv stride 4 pad 2": ("conv", [(2, 3, 15, 13), (4, 3, 5, 5), (4,)],
                            dict(stride=4, pad=2)),
    "conv groups 2": ("conv", [(2, 4, 9, 7), (6, 2, 3, 3), (6,)], dict(stride=1, pad=1, groups=2)),
    "conv 11x11 stride 4": ("conv", [(1, 3, 23, 19), (4, 3, 11, 11), (4,)], dict(stride=4)),
    "conv stride 2 pad 1": ("conv", [(3, 2, 8, 9), (5, 2, 3, 3), (5,)], dict(stride=2, pad=1)),
    "relu": ("relu", [(3, 5, 7, 4)], {}),
    "tanh": ("tanh", [(3, 5, 7, 4)], {}),
    "lrn paper constants": ("lrn", [(2, 7, 5, 3)], {}),
    "lrn large alpha": ("lrn", [(2, 6, 3, 4)], dict(n=3, k=1.0, alpha=0.3, beta=0.75)),
    "lrn fewer channels than n": ("lrn", [(1, 2, 3, 5)], dict(n=5, alpha=0.2)),
    "maxpool overlapping": ("maxpool", [(2, 3, 9, 7)], dict(size=3, stride=2)),
    "maxpool 2/2": ("maxpool", [(1, 2, 8, 6)], dict(size=2, stride=2)),
    "maxpool gaps": ("maxpool", [(1, 2, 9, 8)], dict(size=2, stride=3)),
    "dropout": ("dropout", [(5, 13)], dict(p=0.5)),
    "dropout p 0.3": ("dropout", [(2, 3, 4, 5)], dict(p=0.3)),
    "dropout off": ("dropout", [(4, 6)], dict(p=0.5, train=False)),
    "linear 4-d input": ("linear", [(3, 2, 3, 5), (7, 30), (7,)], {}),
    "linear": ("linear", [(4, 9), (5, 9), (5,)], {}),
}
FORWARD = {"conv": "conv_forward", "relu": "relu_forward", "tanh": "tanh_forward",
           "lrn": "lrn_forward",
           "maxpool": "maxpool_forward", "dropout": "dropout_forward",
           "linear": "linear_forward"}


def tolerance(dtype, backward: bool):
    return 1e-12 if dtype == np.float64 else (1e-4 if backward else 1e-5)


def assert_close(got, want, dtype, backward, what):
    assert got.shape == want.shape and got.dtype == want.dtype, what
    tol = tolerance(dtype, backward)
    error = np.max(np.abs(got.astype(np.float64) - want), initial=0)
    assert error <= tol * (1 + np.max(np.abs(want), initial=0)), f"{what}: off by {error}"


def run(module, kind, args, kwargs):
    """(out, grads) of one layer pair of ``module``; ties in max-pool inputs are real ones."""
    forward = getattr(module, FORWARD[kind])
    backward = getattr(module, FORWARD[kind].replace("forward", "backward"))
    if kind == "dropout":
        kwargs = dict(kwargs, rng=np.random.default_rng(7))  # the same draws for everyone
    out, cache = forward(*args, **kwargs)
    dout = rand(*out.shape, seed=11, dtype=out.dtype)
    grads = backward(dout, cache)
    return out, grads if isinstance(grads, tuple) else (grads,)


def implementations_for(dtype):
    return [name for name in IMPLEMENTATIONS if dtype == np.float32 or name != "cuda"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_implementation_equals_the_textbook(case, dtype):
    kind, shapes, kwargs = CASES[case]
    args = [rand(*shape, seed=i, dtype=dtype) for i, shape in enumerate(shapes)]
    if kind == "maxpool":  # ReLU outputs are full of ties: the first maximum must win everywhere
        args[0] = np.maximum(np.round(args[0]), 0)
    out_ref, grads_ref = run(textbook, kind, args, kwargs)
    for name in implementations_for(dtype):
        out, grads = run(IMPLEMENTATIONS[name], kind, args, kwargs)
        assert_close(out, out_ref, dtype, False, f"{name} {FORWARD[kind]}")
        for i, (got, want) in enumerate(zip(grads, grads_ref, strict=True)):
            assert_close(got, want, dtype, True, f"{name} backward, gradient {i}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_conv_weight_grads_and_the_column_layout(dtype):
    x, w, b = rand(2, 4, 9, 7, dtype=dtype), rand(6, 2, 3, 3, seed=1, dtype=dtype), rand(6)
    b = b.astype(dtype)
    out, cache = textbook.conv_forward(x, w, b, stride=2, pad=1, groups=2)
    dout = rand(*out.shape, seed=2, dtype=dtype)
    _, dw_ref, db_ref = textbook.conv_backward(dout, cache)
    cols_ref = textbook.im2col(x, 3, 3, 2, 1)
    dcols = rand(*cols_ref.shape, seed=3, dtype=dtype)
    dx_ref = textbook.col2im(dcols, x.shape, 3, 3, 2, 1)
    for name in ("fast", "cuda") if dtype == np.float32 else ("fast",):
        module = IMPLEMENTATIONS[name]
        assert_close(module.im2col(x, 3, 3, 2, 1), cols_ref, dtype, False, f"{name} im2col")
        assert_close(module.col2im(dcols, x.shape, 3, 3, 2, 1), dx_ref, dtype, True,
                     f"{name} col2im")
        _, own_cache = module.conv_forward(x, w, b, stride=2, pad=1, groups=2)
        for got, want in zip(module.conv_weight_grads(dout, own_cache), (dw_ref, db_ref),
                             strict=True):
            assert_close(got, want, dtype, True, f"{name} conv_weight_grads")


def test_the_textbook_column_layout_is_the_documented_one():
    """cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*stride + i, ow*stride + j], element by
    element, on a non-square input with stride 2 and pad 1."""
    x = rand(2, 3, 5, 6)
    cols = textbook.im2col(x, 3, 2, 2, 1)
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    OH, OW = 3, 4
    assert cols.shape == (3 * 3 * 2, 2 * OH * OW)
    for (c, i, j), (n, oh, ow) in [((0, 0, 0), (0, 0, 0)), ((2, 1, 1), (1, 2, 3)),
                                   ((1, 2, 0), (0, 1, 2)), ((2, 2, 1), (1, 0, 1))]:
        assert cols[(c * 3 + i) * 2 + j, (n * OH + oh) * OW + ow] == x_pad[n, c, oh * 2 + i,
                                                                             ow * 2 + j]


def test_softmax_cross_entropy_everywhere():
    logits, labels = rand(5, 7) * 3, np.array([0, 6, 3, 3, 1])
    loss_ref, d_ref = textbook.softmax_cross_entropy(logits, labels)
    for name, module in IMPLEMENTATIONS.items():
        loss, d = module.softmax_cross_entropy(logits, labels)
        assert float(loss) == pytest.approx(float(loss_ref), rel=1e-12), name
        assert rel_error(d, d_ref) < 1e-12, name


def test_every_implementation_has_every_layer_function():
    for module in (textbook, fast, cuda_layers):
        missing = [name for name in LAYER_FUNCTIONS if not callable(getattr(module, name, None))]
        assert not missing, f"{module.__name__} lacks {missing}"
    layer_pairs = {name[: -len("_forward")] for name in LAYER_FUNCTIONS if "_forward" in name}
    assert {f"{pair}_{way}_naive" for pair in layer_pairs for way in ("forward", "backward")} \
        <= set(dir(naive))
    assert callable(naive.softmax_cross_entropy_naive)


def test_the_textbook_imports_nothing_from_the_fast_path_or_the_cuda_side():
    """tinyalex/layers/*.py is for reading beside the paper: no speed tricks, no dispatch."""
    folder = Path(tinyalex.__file__).parent / "layers"
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(("tinyalex.fast", "tinyalex.cuda")), (path.name, name)
