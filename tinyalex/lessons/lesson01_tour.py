"""Lesson 1, a tour of AlexNet (``notebooks/01_tour.ipynb``): its exercises and figure.

Exercises: a convolution's output size, its parameters and its multiply-adds (section 3.5's
numbers). Figure: where the parameters and the work are, layer by layer.
"""


from __future__ import annotations

from tinyalex import layers
from tinyalex.lessons import plots
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    first_match,
    register,
)

LESSON = Lesson(
    1, "01_tour.ipynb", "A tour of AlexNet", ("3.5",),
    "the paper preset, a photograph through all eight layers, the per-layer table, "
    "the 60,965,224 parameters derived layer by layer")


# ---- the lesson's figures ------------------------------------------------------------------

def plot_layer_costs(rows, title: str = "Where the parameters and the work are"):
    """Bar charts of parameters and multiply-adds per layer, from ``model.layer_shapes``."""
    plt = plots.pyplot()
    rows = [r for r in rows if r[2] or r[3]]  # layers with weights: conv and fc
    names = [r[0] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, values, label, colour in ((left, [r[2] / 1e6 for r in rows], "parameters (millions)",
                                       "tab:blue"),
                                      (right, [r[3] / 1e6 for r in rows],
                                       "multiply-adds per image (millions)", "tab:orange")):
        bars = ax.bar(names, values, color=colour)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
        ax.set(ylabel=label, xlabel="layer", title=f"{label.split(' (')[0]}: total "
               f"{sum(values):,.1f} M")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _size_cases():
    # (size, kernel, stride, pad): AlexNet's layers first, then odd ones
    values = [(227, 11, 4, 0), (27, 5, 1, 2), (13, 3, 1, 1), (224, 11, 4, 0), (63, 7, 2, 0),
              (10, 3, 2, 1), (9, 4, 3, 2), (31, 5, 3, 1)]
    return [Case(v, label=f"size={v[0]}, kernel={v[1]}, stride={v[2]}, pad={v[3]}")
            for v in values]


def _diagnose_size(case, got, want):
    size, kernel, stride, pad = case.args
    value = got["size"]
    if isinstance(value, float) and not float(value).is_integer():
        return "a size is a whole number of windows: use // (floor division), not /"
    return first_match(value, [
        ("the padding is missing: the padded input is size + 2*pad pixels wide",
         (size - kernel) // stride + 1),
        ("the padding is on both sides: size + 2*pad, not size + pad",
         (size + pad - kernel) // stride + 1),
        ("the +1 is missing: the window at position 0 counts too",
         (size + 2 * pad - kernel) // stride),
        ("you rounded up (cuda-convnet's convention, which makes 55 out of 224); the paper's "
         "55 x 55 comes from 227 with rounding down: use //",
         -(-(size + 2 * pad - kernel) // stride) + 1),
    ])


def conv_output_size(size, kernel, stride, pad):
    # The padded input has size + 2*pad pixels; a window fits at positions 0, stride,
    # 2*stride, ... as long as its last pixel is inside: (size + 2 pad - kernel) // stride + 1.
    return (size + 2 * pad - kernel) // stride + 1


register(Exercise(
    name="conv_output_size", lesson=1,
    task="the output size of a convolution along one axis",
    signature="def conv_output_size(size, kernel, stride, pad):",
    cases=_size_cases, outputs=("size",),
    reference=layers.conv_output_size, reference_name="tinyalex.layers.conv_output_size",
    solution=conv_output_size, diagnose=_diagnose_size,
    hint="Pad first (size + 2*pad), then count the positions where a whole window fits, "
         "stepping by stride: the first at 0, the last at most size + 2*pad - kernel."))


def _params_cases():
    values = [(3, 96, 11, 1), (96, 256, 5, 2), (256, 384, 3, 1), (384, 384, 3, 2),
              (384, 256, 3, 2), (6, 10, 3, 2), (12, 9, 5, 3)]
    return [Case(v, label=f"in={v[0]}, out={v[1]}, kernel={v[2]}, groups={v[3]}")
            for v in values]


def _own_conv_params(in_channels, out_channels, kernel, groups):
    return out_channels * (in_channels // groups) * kernel * kernel + out_channels


def _diagnose_params(case, got, want):
    c, f, k, g = case.args
    return first_match(got["params"], [
        ("the biases are missing: one per kernel, out_channels of them", f * (c // g) * k * k),
        ("each kernel sees only the in_channels / groups channels of its own group (groups=2: "
         "the paper's two GPUs, section 3.2)", f * c * k * k + f),
        ("two mistakes: no biases, and groups ignored (each kernel sees in_channels / groups "
         "channels)", f * c * k * k),
    ])


def conv_params(in_channels, out_channels, kernel, groups):
    # Each of the out_channels kernels is kernel x kernel over the in_channels / groups input
    # channels of its group, plus one bias.
    return out_channels * (in_channels // groups) * kernel * kernel + out_channels


register(Exercise(
    name="conv_params", lesson=1,
    task="the number of parameters (weights and biases) of a grouped convolution",
    signature="def conv_params(in_channels, out_channels, kernel, groups):",
    cases=_params_cases, outputs=("params",),
    reference=_own_conv_params, reference_name="tinyalex.model.layer_shapes",
    solution=conv_params, diagnose=_diagnose_params,
    hint="One kernel is kernel x kernel x (in_channels / groups) weights, plus one bias."))


def _macs_cases():
    values = [(3, 96, 11, 55, 1), (96, 256, 5, 27, 2), (256, 384, 3, 13, 1),
              (384, 384, 3, 13, 2), (6, 10, 3, 7, 2), (12, 9, 5, 4, 3)]
    return [Case(v, label=f"in={v[0]}, out={v[1]}, kernel={v[2]}, out_size={v[3]}, "
                          f"groups={v[4]}") for v in values]


def _own_conv_mult_adds(in_channels, out_channels, kernel, out_size, groups):
    return out_channels * out_size * out_size * (in_channels // groups) * kernel * kernel


def _diagnose_macs(case, got, want):
    c, f, k, s, g = case.args
    right = _own_conv_mult_adds(*case.args)
    return first_match(got["mult_adds"], [
        ("each kernel sees only in_channels / groups channels: a grouped convolution does "
         "1/groups of the work", f * s * s * c * k * k),
        ("you counted multiplications and additions separately (that is FLOPs, 2x the "
         "multiply-adds)", 2 * right),
        ("adding the bias is not a multiply-add: count only the products of the window",
         right + f * s * s),
    ])


def conv_mult_adds(in_channels, out_channels, kernel, out_size, groups):
    # Every output value (out_channels x out_size x out_size of them) is one dot product of
    # length (in_channels / groups) * kernel * kernel.
    return out_channels * out_size * out_size * (in_channels // groups) * kernel * kernel


register(Exercise(
    name="conv_mult_adds", lesson=1,
    task="the multiply-adds of a convolution for one image",
    signature="def conv_mult_adds(in_channels, out_channels, kernel, out_size, groups):",
    cases=_macs_cases, outputs=("mult_adds",),
    reference=_own_conv_mult_adds, reference_name="tinyalex.model.layer_shapes",
    solution=conv_mult_adds, diagnose=_diagnose_macs,
    hint="Every output value is one dot product between a kernel and a window: how many "
         "output values are there, and how long is each dot product?"))
