"""The lessons' exercise checkers: they pass the solutions and name the classic mistakes.

Every wrong version below is written here, the way a student might write it, independently
of the checker's own list of mistakes; each test asserts that the checker fails it AND says
the right thing about it.
"""

import numpy as np
import pytest

from tinyalex import layers
from tinyalex.lessons import REGISTRY, check, get_exercise, hint, run_check, show_solution
from tinyalex.lessons import solutions as sol
from tinyalex.lessons.checking import FAIL, NOT_DONE, PASS


def failing(name, fn):
    """The checker's message for a wrong function (asserting that it fails)."""
    result = run_check(name, fn)
    assert result.status == FAIL, f"{name}: the checker passed a wrong function"
    assert result.function is get_exercise(name).reference  # the lesson goes on with tinyalex's
    return result.message


# ---- every exercise: the solution passes, a stub is "not done", tinyalex's own passes ------

@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_solution_and_tinyalex_pass(name):
    exercise = get_exercise(name)
    for fn in (exercise.solution, exercise.reference):
        result = run_check(name, fn)
        assert result.status == PASS, result.message
        assert result.function is fn


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_stub_is_not_done_and_the_lesson_goes_on(name, capsys):
    def stub(*args):
        raise NotImplementedError

    def empty(*args):
        pass

    for fn in (stub, empty, None):
        result = run_check(name, fn)
        assert result.status == NOT_DONE, result.message
        assert result.function is get_exercise(name).reference
    assert check(name, stub) is get_exercise(name).reference
    out = capsys.readouterr().out
    assert out.startswith("[TODO]") and "not done yet" in out and out.count("\n") == 1


def test_every_exercise_has_a_hint_a_solution_and_cases_of_several_seeds(capsys):
    lessons = {}
    for name, exercise in REGISTRY.items():
        lessons.setdefault(exercise.lesson, []).append(name)
        assert len(exercise.cases()) >= 3, name
        hint(name)
        show_solution(name)
        out = capsys.readouterr().out
        assert f"def {name}(" in out and exercise.hint in out
    assert all(len(lessons[n]) >= 3 for n in range(1, 13)), lessons


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(KeyError, match="lrn_backward"):
        get_exercise("lrn_backwards")


def test_an_exception_and_a_wrong_number_of_results_are_reported():
    def raises(x, kh, kw, stride, pad):
        return x[99]

    assert "raised IndexError" in failing("im2col", raises)

    def two_results(dout, x, w):
        return dout @ w, dout.T @ x.reshape(len(x), -1)

    assert "should return 3 values (dx, dw, db), it returned 2" in failing("linear_backward",
                                                                           two_results)


def test_changing_an_input_in_place_is_caught():
    def in_place(dout, x):
        x[x < 0] = 0  # a ReLU that clobbers the layer's input
        return dout * (x > 0)

    assert "changed its argument 1 in place" in failing("relu_backward", in_place)


# ---- lesson 1 ---------------------------------------------------------------------------------

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


# ---- lesson 2 ---------------------------------------------------------------------------------

def test_convolution_with_a_flipped_kernel_or_no_bias():
    def true_convolution(x, w, b, stride, pad):
        return sol.conv_forward_loops(x, np.flip(w, axis=(2, 3)), b, stride, pad)

    assert "kernel flipped" in failing("conv_forward_loops", true_convolution)

    def no_bias(x, w, b, stride, pad):
        return sol.conv_forward_loops(x, w, np.zeros_like(b), stride, pad)

    assert "bias b[f] is missing" in failing("conv_forward_loops", no_bias)

    def unpadded(x, w, b, stride, pad):
        return sol.conv_forward_loops(x, w, b, stride, 0)

    assert "padding is missing" in failing("conv_forward_loops", unpadded)

    def stride_one(x, w, b, stride, pad):
        return sol.conv_forward_loops(x, w, b, 1, pad)

    assert "stride is ignored" in failing("conv_forward_loops", stride_one)


def conv_backward_overwriting(dout, x, w, stride, pad):
    """dx written with = : wrong wherever two windows share a pixel."""
    F, _, KH, KW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(dout.shape[0]):
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                rows, cols = slice(i * stride, i * stride + KH), slice(j * stride, j * stride + KW)
                dx_pad[n, :, rows, cols] = np.einsum("f,fchw->chw", dout[n, :, i, j], w)
                dw += np.einsum("f,chw->fchw", dout[n, :, i, j], x_pad[n, :, rows, cols])
    H, W = x.shape[2:]
    return dx_pad[:, :, pad : pad + H, pad : pad + W], dw, dout.sum(axis=(0, 2, 3))


def test_convolution_backward_mistakes():
    assert "windows overlap" in failing("conv_backward_loops", conv_backward_overwriting)

    def mean_db(dout, x, w, stride, pad):
        dx, dw, db = sol.conv_backward_loops(dout, x, w, stride, pad)
        return dx, dw, dout.mean(axis=(0, 2, 3))

    assert "db is a mean" in failing("conv_backward_loops", mean_db)

    def padded_dx(dout, x, w, stride, pad):
        _, dw, db = sol.conv_backward_loops(dout, x, w, stride, pad)
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        return np.zeros_like(x_pad), dw, db

    assert "padded shape" in failing("conv_backward_loops", padded_dx)


def test_im2col_layout_mistakes():
    def transposed(x, kh, kw, stride, pad):
        return sol.im2col(x, kh, kw, stride, pad).T

    assert "transpose" in failing("im2col", transposed)

    def rows_ijc(x, kh, kw, stride, pad):  # a student's loop that puts the channel innermost
        N, C, H, W = x.shape
        OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        cols = np.zeros((kh * kw * C, N * OH * OW))
        for i in range(kh):
            for j in range(kw):
                for c in range(C):
                    patch = x_pad[:, c, i : i + stride * OH : stride, j : j + stride * OW : stride]
                    cols[(i * kw + j) * C + c] = patch.reshape(-1)
        return cols

    assert "rows are ordered (i, j, c)" in failing("im2col", rows_ijc)

    def columns_window_first(x, kh, kw, stride, pad):
        N, C = x.shape[:2]
        cols = sol.im2col(x, kh, kw, stride, pad)
        return cols.reshape(len(cols), N, -1).transpose(0, 2, 1).reshape(len(cols), -1)

    assert "columns are ordered (oh, ow, n)" in failing("im2col", columns_window_first)


def test_col2im_that_overwrites():
    def col2im_overwriting(cols, x_shape, kh, kw, stride, pad):
        N, C, H, W = x_shape
        OH, OW = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
        cols = cols.reshape(C, kh, kw, N, OH, OW)
        dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
        for i in range(kh):
            for j in range(kw):
                dx_pad[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride] = (
                    cols[:, i, j].transpose(1, 0, 2, 3))
        return dx_pad[:, :, pad : pad + H, pad : pad + W]

    assert "dx differs only where windows overlap" in failing("col2im", col2im_overwriting)


def test_grouped_convolution_mistakes():
    def one_bias_block(x, w, b, groups, stride, pad):
        F = w.shape[0]
        return sol.grouped_conv(x, w, np.tile(b[: F // groups], groups), groups, stride, pad)

    assert "biases of each group" in failing("grouped_conv", one_bias_block)


# ---- lesson 3 ---------------------------------------------------------------------------------

def test_relu_and_tanh_backward_mistakes():
    assert "gated on the gradient" in failing("relu_backward", lambda dout, x: dout * (dout > 0))
    assert "x > 0, not x >= 0" in failing("relu_backward", lambda dout, x: dout * (x >= 0))
    assert "not 1 - out" in failing("tanh_backward", lambda dout, out: dout * (1 - out))
    assert "OUTPUT already" in failing("tanh_backward",
                                       lambda dout, out: dout * (1 - np.tanh(out) ** 2))
    assert "chain rule" in failing("tanh_backward", lambda dout, out: 1 - out**2)


def test_steps_to_error_mistakes():
    def zero_based(errors, target, window):
        steps = sol.steps_to_error(errors, target, window)
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
        steps = sol.steps_to_error(errors, target, window)
        return len(errors) if steps is None else steps

    assert "return None" in failing("steps_to_error", never_none)


# ---- lesson 4: local response normalization ---------------------------------------------------

def lrn_pytorch_style(x, n, k, alpha, beta):
    """A student who learnt LRN from PyTorch's docs: the window term is an average."""
    C = x.shape[1]
    out = np.empty_like(x)
    for i in range(C):
        lo, hi = max(0, i - n // 2), min(C, i + n // 2 + 1)
        out[:, i] = x[:, i] / (k + alpha / n * (x[:, lo:hi] ** 2).sum(axis=1)) ** beta
    return out


def test_lrn_forward_mistakes():
    message = failing("lrn_forward", lrn_pytorch_style)
    assert "alpha/n (the PyTorch/Caffe convention)" in message
    assert "plain sum" in message

    def wrapping(x, n, k, alpha, beta):
        squares = sum(np.roll(x**2, s, axis=1) for s in range(-(n // 2), n // 2 + 1))
        return x / (k + alpha * squares) ** beta

    assert "wraps around" in failing("lrn_forward", wrapping)

    def no_beta(x, n, k, alpha, beta):
        return sol.lrn_forward(x, n, k, alpha, 1.0)

    assert "power beta" in failing("lrn_forward", no_beta)


def lrn_backward_first_term_only(dout, x, n, k, alpha, beta):
    """Treats the scale as a constant: forgets that a[j] is inside its neighbours' scales."""
    _, cache = layers.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)
    scale = cache[2]
    return dout * scale**-beta


def test_lrn_backward_mistakes():
    message = failing("lrn_backward", lrn_backward_first_term_only)
    assert "second (cross-channel) term of the LRN gradient is missing" in message

    def wrong_sign(dout, x, n, k, alpha, beta):
        first = lrn_backward_first_term_only(dout, x, n, k, alpha, beta)
        return 2 * first - sol.lrn_backward(dout, x, n, k, alpha, beta)

    assert "wrong sign" in failing("lrn_backward", wrong_sign)

    def alpha_over_n(dout, x, n, k, alpha, beta):
        return sol.lrn_backward(dout, x, n, k, alpha / n, beta)

    assert "alpha/n" in failing("lrn_backward", alpha_over_n)

    def no_factor_two(dout, x, n, k, alpha, beta):
        first = lrn_backward_first_term_only(dout, x, n, k, alpha, beta)
        return first + (sol.lrn_backward(dout, x, n, k, alpha, beta) - first) / 2

    assert "factor 2" in failing("lrn_backward", no_factor_two)


def test_lrn_from_pytorch_mistakes():
    def forgot_to_divide(x, size, alpha, beta, k):
        return layers.lrn_forward(x, n=size, k=k, alpha=alpha, beta=beta)[0]

    assert "MEAN of the squares" in failing("lrn_pytorch", forgot_to_divide)

    def paper_k(x, size, alpha, beta, k):
        return layers.lrn_forward(x, n=size, k=2.0, alpha=alpha / size, beta=beta)[0]

    assert "pass k through" in failing("lrn_pytorch", paper_k)


def test_lrn_pytorch_solution_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 7, 3, 4))
    want = torch.nn.functional.local_response_norm(torch.from_numpy(x), 5, alpha=0.3, beta=0.75,
                                                   k=1.5).numpy()
    np.testing.assert_allclose(sol.lrn_pytorch(x, 5, 0.3, 0.75, 1.5), want, rtol=1e-10)


# ---- lesson 5: pooling ------------------------------------------------------------------------

def maxpool_backward_overwriting(dout, x, size, stride):
    """= instead of +=: a pixel that is the maximum of two windows keeps only one gradient."""
    dx = np.zeros_like(x)
    N, C, OH, OW = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, c, i * stride : i * stride + size, j * stride : j * stride + size]
                    r, s = divmod(int(np.argmax(window)), size)
                    dx[n, c, i * stride + r, j * stride + s] = dout[n, c, i, j]
    return dx


def test_maxpool_backward_mistakes():
    assert "dx differs where windows overlap" in failing("maxpool_backward",
                                                         maxpool_backward_overwriting)

    def mask_of_maxima(dout, x, size, stride):  # the "x == max" trick: all tied maxima
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                rows = slice(i * stride, i * stride + size)
                cols = slice(j * stride, j * stride + size)
                window = x[:, :, rows, cols]
                mask = window == window.max(axis=(2, 3), keepdims=True)
                dx[:, :, rows, cols] += mask * dout[:, :, i : i + 1, j : j + 1]
        return dx

    assert "every tied maximum" in failing("maxpool_backward", mask_of_maxima)

    def average(dout, x, size, stride):
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                dx[:, :, i * stride : i * stride + size, j * stride : j * stride + size] += (
                    dout[:, :, i : i + 1, j : j + 1] / size**2)
        return dx

    assert "average pooling" in failing("maxpool_backward", average)


def test_maxpool_forward_and_coverage_mistakes():
    def non_overlapping(x, size, stride):
        return sol.maxpool_forward(x, size, size)

    assert "non-overlapping" in failing("maxpool_forward", non_overlapping)

    def partial_windows(height, width, size, stride):
        counts = np.zeros((height, width), dtype=int)
        for i in range(0, height, stride):
            for j in range(0, width, stride):
                counts[i : i + size, j : j + size] += 1
        return counts

    assert "fit entirely" in failing("pool_coverage", partial_windows)


# ---- lesson 6: dropout, fully connected, softmax ------------------------------------------------

def test_dropout_mistakes():
    def not_rescaled(x, p, rng):
        mask = (rng.random(x.shape) >= p).astype(x.dtype)
        return x * mask, mask

    assert "not rescaled by 1/(1-p)" in failing("dropout_forward", not_rescaled)

    def keeps_with_probability_p(x, p, rng):
        mask = (rng.random(x.shape) < p) / (1 - p)
        return x * mask, mask

    assert "with probability p" in failing("dropout_forward", keeps_with_probability_p)

    def another_draw(x, p, rng):
        mask = rng.binomial(1, 1 - p, x.shape) / (1 - p)
        return x * mask, mask

    assert "another draw" in failing("dropout_forward", another_draw)


def test_linear_backward_mistakes():
    def transposed_dw(dout, x, w):
        dx, dw, db = sol.linear_backward(dout, x, w)
        return dx, dw.T, db

    assert "w's layout" in failing("linear_backward", transposed_dw)

    def flat_dx(dout, x, w):
        _, dw, db = sol.linear_backward(dout, x, w)
        return dout @ w, dw, db

    assert "x's shape" in failing("linear_backward", flat_dx)

    def mean_db(dout, x, w):
        dx, dw, _ = sol.linear_backward(dout, x, w)
        return dx, dw, dout.mean(axis=0)

    assert "not a mean" in failing("linear_backward", mean_db)


def test_softmax_cross_entropy_mistakes():
    def unstable(logits, labels):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            e = np.exp(logits)
            p = e / e.sum(axis=1, keepdims=True)
            rows = np.arange(len(labels))
            d = p.copy()
            d[rows, labels] -= 1
            return -np.log(p[rows, labels]).mean(), d / len(labels)

    assert "subtract each row's maximum" in failing("softmax_cross_entropy", unstable)

    def not_divided(logits, labels):
        loss, d = sol.softmax_cross_entropy(logits, labels)
        return loss, d * len(labels)

    assert "N times too large" in failing("softmax_cross_entropy", not_divided)

    def summed(logits, labels):
        loss, d = sol.softmax_cross_entropy(logits, labels)
        return loss * len(labels), d

    assert "MEAN over the batch" in failing("softmax_cross_entropy", summed)


# ---- lesson 8: the SGD step -------------------------------------------------------------------

def test_sgd_mistakes():
    def pytorch_style(w, v, g, lr, momentum, weight_decay):
        v *= momentum
        v += g + weight_decay * w
        w -= lr * v

    assert "PyTorch's form" in failing("sgd_update", pytorch_style)

    def rebinding(w, v, g, lr, momentum, weight_decay):
        v = momentum * v - weight_decay * lr * w - lr * g
        w += v

    assert "in place" in failing("sgd_update", rebinding)

    def decay_without_lr(w, v, g, lr, momentum, weight_decay):
        v *= momentum
        v -= weight_decay * w + lr * g
        w += v

    assert "multiplied by the learning rate" in failing("sgd_update", decay_without_lr)


# ---- the lessons' helpers: experiments, images, plots ----------------------------------------

def test_experiment_net_swaps_the_activation_and_its_gradient_is_right():
    from tinyalex.gradcheck import numerical_gradient, rel_error
    from tinyalex.lessons import experiments

    config = experiments.micro_config(size=23, widths=(4, 4, 4), hidden=6)
    net = experiments.ExperimentNet(config, activation="tanh", seed=3, impl="textbook",
                                    dtype=np.float64)
    assert [s.kind for s in net.steps].count("tanh") == 4 and "relu" not in [s.kind
                                                                            for s in net.steps]
    x = np.random.default_rng(0).standard_normal((2, 3, 23, 23)) * 30
    labels = np.array([1, 7])
    _, _, dlogits = net.loss(x, labels, train=False)
    analytic = net.backward(dlogits)["conv1.w"]
    numeric = numerical_gradient(lambda: net.loss(x, labels, train=False)[0],
                                 net.params["conv1.w"])
    assert rel_error(analytic, numeric) < 1e-6
    with pytest.raises(ValueError, match="activation"):
        experiments.ExperimentNet(config, activation="sigmoid")


def test_lecun_init_and_the_race_settings():
    from tinyalex.lessons import experiments

    net = experiments.race_net("modern", "tanh", seed=0, size=24)
    w = net.params["conv2.w"]
    assert abs(w.std() * np.sqrt(np.prod(w.shape[1:])) - 1) < 0.1  # N(0, 1 / fan_in)
    paper = experiments.race_net("paper", "relu", seed=0, size=24)
    assert abs(paper.params["conv1.w"].std() - 0.01) < 0.001 and paper.config.input_scale == 1


def test_train_learns_and_is_deterministic():
    from tinyalex.lessons import experiments
    from tinyalex.lessons.images import shapes_arrays

    x, y, xv, yv = shapes_arrays(3, size=23, val_per_class=1)
    config = experiments.micro_config(widths=(8, 8, 8), hidden=8)
    runs = [experiments.train(experiments.ExperimentNet(config, seed=1), x, y, steps=60,
                              lr=0.02, batch_size=10, seed=2, x_val=xv, y_val=yv)
            for _ in range(2)]
    assert runs[0].errors == runs[1].errors and runs[0].losses == runs[1].losses
    assert np.mean(runs[0].losses[-5:]) < np.mean(runs[0].losses[:5]) - 0.5  # it fits 30
    assert runs[0].train_error < 0.8 and runs[0].val_error is not None
    assert len(runs[0].running_error(5)) == 56


def test_micro_config_pools_give_the_same_sizes_at_23_pixels():
    from tinyalex.lessons import experiments
    from tinyalex.model import layer_shapes

    sizes = [[shape for name, shape, _, _ in layer_shapes(experiments.micro_config(
        pool_size=z, pool_stride=2)) if name.startswith("pool")] for z in (3, 2)]
    assert sizes[0] == sizes[1] == [(16, 11, 11), (32, 5, 5), (32, 2, 2)]


def test_steps_to_error_and_summaries():
    from tinyalex.lessons import experiments

    errors = [1.0] * 10 + [0.0] * 10
    assert experiments.steps_to_error(errors, 0.5, 4) == 12
    assert experiments.steps_to_error(errors, -0.1, 4) is None
    assert experiments.summarize([0.1, 0.3]).startswith("20.0% +- 14.1")
    assert [list(b) for b in experiments.batches(5, 2, 3, seed=0)] == [
        list(b) for b in experiments.batches(5, 2, 3, seed=0)]


def test_images_without_a_download():
    from tinyalex.data import synthetic
    from tinyalex.lessons.images import sample_photo, shapes_arrays, shapes_images

    photo = sample_photo(64)
    assert photo.shape == (64, 64, 3) and photo.dtype == np.uint8 and photo.std() > 10
    images, labels = shapes_images(2, size=20)
    assert images.shape == (20, 20, 20, 3) and list(labels[:10]) == list(range(10))
    np.testing.assert_array_equal(images[13], synthetic.render(0, "train", 3, 1, size=20))
    x, y, xv, yv = shapes_arrays(2, size=20, val_per_class=1)
    assert x.shape == (20, 3, 20, 20) and x.dtype == np.float32 and abs(x.mean()) < 1e-3
    assert xv.shape == (10, 3, 20, 20) and yv is not None


def test_plots_have_titles_and_labelled_axes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyalex.lessons import experiments, plots
    from tinyalex.model import layer_shapes

    run = experiments.Run("a", errors=list(np.linspace(0.9, 0.1, 40)))
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    figures = [
        plots.plot_layer_costs(layer_shapes(experiments.micro_config())),
        plots.draw_im2col(x, 3, 3, 1, 0),
        plots.plot_activations(),
        plots.plot_error_curves({"relu": [run, run]}, window=5, target=0.25),
        plots.plot_seed_spread({"a": [0.1, 0.2], "b": [0.3]}),
        plots.plot_histograms({"a": x, "b": 2 * x}, xlabel="value"),
        plots.draw_pool_windows(7, 7, 3, 2),
        plots.plot_pool_routing(x[0, 0], 3, 1),
        plots.show_matrix(np.eye(3), title="eye", xlabel="j", ylabel="i", symmetric=True),
    ]
    for k, fig in enumerate(figures):
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.has_data()]
        assert axes, k
        for ax in axes:
            assert ax.get_xlabel() or ax.get_title(), (k, "an axis without a label")
        assert any(ax.get_title() for ax in axes) or fig._suptitle is not None, k
        fig.savefig(tmp_path / f"{k}.png")
        plt.close(fig)
    fig = plots.show_images(np.zeros((3, 5, 5, 3), dtype=np.uint8), titles="abc", title="t")
    fig2 = plots.show_maps(np.random.default_rng(0).random((5, 4, 4)), title="maps")
    assert fig._suptitle.get_text() == "t" and fig2._suptitle.get_text() == "maps"


# ---- lesson 7: data ---------------------------------------------------------------------------

def test_crop_mistakes():
    def off_by_one(images, mean, crop, top, left, flip):
        return sol.crop_batch(images, mean, crop - 1, top, left, flip)

    assert "t : t + crop" in failing("crop_batch", off_by_one)

    def hwc(images, mean, crop, top, left, flip):
        return sol.crop_batch(images, mean, crop, top, left, flip).transpose(0, 2, 3, 1)

    assert "HWC layout" in failing("crop_batch", hwc)

    def no_mean(images, mean, crop, top, left, flip):
        return sol.crop_batch(images, 0 * mean, crop, top, left, flip)

    assert "mean image is not subtracted" in failing("crop_batch", no_mean)

    def mean_not_flipped(images, mean, crop, top, left, flip):
        out = []
        for b in range(len(images)):
            window = images[b, top[b]:top[b] + crop, left[b]:left[b] + crop].transpose(2, 0, 1)
            if flip[b]:
                window = window[:, :, ::-1]
            out.append(window - mean[:, top[b]:top[b] + crop, left[b]:left[b] + crop])
        return np.array(out, dtype=np.float32)

    assert "its mean window is not" in failing("crop_batch", mean_not_flipped)

    def upside_down(images, mean, crop, top, left, flip):
        x = sol.crop_batch(images, mean, crop, top, left, np.zeros_like(flip))
        x[flip] = x[flip][:, :, ::-1, :]
        return x

    assert "mirrors up-down" in failing("crop_batch", upside_down)

    def swapped(images, mean, crop, top, left, flip):
        return sol.crop_batch(images, mean, crop, left, top, flip)

    assert "swapped" in failing("crop_batch", swapped)


def test_ten_crop_mistakes():
    def past_the_edge(size, crop):
        far, c = size - crop + 1, (size - crop) // 2
        five = [(0, 0), (0, far), (far, 0), (far, far), (c, c)]
        return [(t, lft, False) for t, lft in five] + [(t, lft, True) for t, lft in five]

    assert "past the image" in failing("ten_crop_windows", past_the_edge)

    def rounded_up(size, crop):
        far, c = size - crop, -(-(size - crop) // 2)
        five = [(0, 0), (0, far), (far, 0), (far, far), (c, c)]
        return [(t, lft, False) for t, lft in five] + [(t, lft, True) for t, lft in five]

    assert "rounded down" in failing("ten_crop_windows", rounded_up)

    def interleaved(size, crop):
        windows = sol.ten_crop_windows(size, crop)
        return [w for pair in zip(windows[:5], windows[5:], strict=True) for w in pair]

    assert "another order" in failing("ten_crop_windows", interleaved)


def test_lighting_mistakes():
    def in_pixel_units(rng, batch, eigvals, eigvecs, std):
        return (rng.normal(0.0, std, (batch, 3)) * eigvals) @ eigvecs.T

    assert "255 times too large" in failing("lighting_offsets", in_pixel_units)

    def rows(rng, batch, eigvals, eigvecs, std):
        return (rng.normal(0.0, std, (batch, 3)) * eigvals / 255) @ eigvecs

    assert "COLUMNS" in failing("lighting_offsets", rows)

    def square_roots(rng, batch, eigvals, eigvecs, std):
        return (rng.normal(0.0, std, (batch, 3)) * np.sqrt(eigvals) / 255) @ eigvecs.T

    assert "square roots" in failing("lighting_offsets", square_roots)


# ---- lesson 8: learning, continued ---------------------------------------------------------

def test_pytorch_sgd_mistakes():
    assert "the paper's form" in failing("pytorch_sgd_update", sol.sgd_update)

    def decay_after(w, buf, g, lr, momentum, weight_decay):
        buf *= momentum
        buf += g
        w -= lr * buf + weight_decay * w

    assert "applied the decay to w directly" in failing("pytorch_sgd_update", decay_after)

    def decay_forgotten(w, buf, g, lr, momentum, weight_decay):
        buf *= momentum
        buf += g
        w -= lr * buf

    assert "adds the decay to the gradient" in failing("pytorch_sgd_update", decay_forgotten)


def test_the_two_sgd_forms_agree_at_a_fixed_rate_and_differ_when_it_drops():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(20)
    grads = [rng.standard_normal(20) for _ in range(8)]
    paths = []
    for update in (sol.sgd_update, sol.pytorch_sgd_update):
        w, v, path = w0.copy(), np.zeros(20), []
        for k, g in enumerate(grads):
            update(w, v, g + 0.1 * w, 0.1 if k < 4 else 0.01, 0.9, 0.0)
            path.append(w.copy())
        paths.append(path)
    np.testing.assert_allclose(paths[0][3], paths[1][3], rtol=1e-12)  # same until the drop
    assert not np.allclose(paths[0][4], paths[1][4])


def test_plateau_mistakes():
    def impatient(errors, lr, patience, most):
        return sol.plateau_rates(errors, lr, patience - 1, most)

    assert "MORE than patience" in failing("plateau_rates", impatient)

    def no_limit(errors, lr, patience, most):
        return sol.plateau_rates(errors, lr, patience, 99)

    assert "at most max_reductions" in failing("plateau_rates", no_limit)

    def no_reset(errors, lr, patience, most):
        rates, best, bad, done = [lr], np.inf, 0, 0
        for e in errors:
            if e < best - 1e-4:
                best, bad = e, 0
            else:
                bad += 1
                if bad > patience and done < most:
                    lr, done = lr * 0.1, done + 1
            rates.append(lr)
        return rates

    assert "starts again at 0" in failing("plateau_rates", no_reset)

    def without_first(errors, lr, patience, most):
        return sol.plateau_rates(errors, lr, patience, most)[1:]

    assert "one rate more" in failing("plateau_rates", without_first)


def test_he_mistakes():
    assert "square root" in failing("he_std", lambda shape: 2 / np.prod(shape[1:]))
    assert "LeCun" in failing("he_std", lambda shape: np.sqrt(1 / np.prod(shape[1:])))
    assert "fan-out" in failing("he_std",
                                lambda shape: np.sqrt(2 / (shape[0] * np.prod(shape[2:]))))
    assert "not in_channels" in failing("he_std", lambda shape: np.sqrt(2 / shape[1]))


# ---- lesson 9: the kernels' index arithmetic ------------------------------------------------

def test_index_arithmetic_mistakes():
    def ow_by_height(index, OH, OW):
        return index // (OW * OH), (index // OW) % OH, index % OH

    assert "index % OW" in failing("thread_coords", ow_by_height)

    def no_wrap(index, OH, OW):
        return index // (OW * OH), index // OW, index % OW

    assert "% OH" in failing("thread_coords", no_wrap)

    assert "rounds DOWN" in failing("grid_blocks", lambda total, block: total // block)
    assert "useless block" in failing("grid_blocks", lambda total, block: total // block + 1)

    def floor_first(h, size, stride, count):
        return np.maximum(0, (h - size + 1) // stride), np.minimum(count - 1, h // stride)

    assert "ceiling" in failing("windows_containing", floor_first)

    def unclipped(h, size, stride, count):
        first, _ = sol.windows_containing(h, size, stride, count)
        return first, h // stride

    assert "clipped at count - 1" in failing("windows_containing", unclipped)


# ---- lessons 7-9: their exercises and helpers ------------------------------------------------

def test_lessons_7_to_9_have_three_exercises_each():
    counts = {n: sum(e.lesson == n for e in REGISTRY.values()) for n in (7, 8, 9)}
    assert all(count >= 3 for count in counts.values()), counts


def test_pipeline_trains_on_crops_and_measures_ten_crops():
    from tinyalex import data
    from tinyalex.lessons import experiments, pipeline

    train_set, val_set = pipeline.shapes_sets(3, 1, size=25)
    assert train_set.images.shape == (30, 25, 25, 3) and len(val_set) == 10
    stats = data.compute_stats(train_set)
    config = pipeline.crop_config(crop=23, image=25, widths=(4, 4, 4), hidden=8)
    net = experiments.ExperimentNet(config, seed=0)
    history = pipeline.train_epochs(net, train_set, stats, epochs=3, lr=0.02, batch_size=10,
                                    val_set=val_set, schedule=pipeline.plateau(0.02, patience=0))
    assert len(history.losses) == 9 and history.steps_per_epoch == 3
    assert len(history.val_errors) == 3 and history.lrs[0] == 0.02
    assert all(b <= a for a, b in zip(history.lrs[:-1], history.lrs[1:], strict=True))
    for error in (pipeline.center_error(net, val_set, stats),
                  pipeline.ten_crop_error(net, val_set, stats)):
        assert 0 <= error <= 1
    assert pipeline.center_error(net, val_set, stats) == history.val_errors[-1]


def test_paper_init_and_the_two_sgd_forms():
    from tinyalex.lessons import experiments, pipeline
    from tinyalex.optim import sgd_update

    config = pipeline.paper_init(experiments.micro_config())
    assert config.init == "paper" and config.input_scale == 1.0
    assert config.bias_one == ("conv2", "fc4")  # the grouped conv and the hidden fc layer
    net = experiments.ExperimentNet(config, seed=0)
    assert np.all(net.params["conv2.b"] == 1) and np.all(net.params["conv1.b"] == 0)
    assert abs(net.params["conv3.w"].std() - 0.01) < 1e-3
    x = np.random.default_rng(0).standard_normal((4, 3, 23, 23)).astype(np.float32) * 50
    scales = pipeline.activation_scales(net, x)
    assert list(scales) == ["conv1", "conv2", "conv3", "fc4", "fc5"]
    paper = pipeline.quadratic_paths(sgd_update, 20, 10)
    torch_form = pipeline.quadratic_paths(pipeline.pytorch_sgd_update, 20, 10)
    assert paper.shape == (21, 50) and np.array_equal(paper[0], torch_form[0])
    assert np.abs(paper[:11] - torch_form[:11]).max() < 1e-12  # the start and 10 steps
    assert np.abs(paper[11:] - torch_form[11:]).max() > 1e-3


def test_kernel_helpers_read_and_plant():
    from tinyalex.lessons import kernels

    text, first = kernels.kernel_text("maxpool.cu", "maxpool_forward_kernel")
    assert text.startswith('extern "C"') and text.endswith("}") and first > 1
    assert kernels.numbered("a\nb", 7) == "   7  a\n   8  b"
    source = "f(){ if (i >= n) return; }\ng(){ if (i >= n) return; }"
    planted = kernels.plant(source, "i >= n", "i > n", after="g(")
    assert planted.count("i >= n") == 1 and planted.index("i > n") > planted.index("g(")
    with pytest.raises(ValueError, match="say where"):
        kernels.plant(source, "i >= n", "i > n")
    assert kernels.line_of(planted, "i > n") == 2
    report = ("==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000001234\n"
              "READ of size 4 at 0x602000001234 thread T0\n"
              "    #0 0x7f00deadbeef in k /tmp/xyz/bug.cu:37\n    #1 0x7f in other\n")
    summary = kernels.asan_summary(report, "bug.cu")
    assert "k bug.cu:37" in summary and "/tmp" not in summary and "other" not in summary


def test_lesson_plots_have_titles_and_labelled_axes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyalex.lessons import pipeline, plots

    history = pipeline.History(losses=list(np.linspace(2.3, 1.0, 40)), lrs=[0.1, 0.1, 0.01],
                               val_errors=[0.8, 0.6, 0.5], steps_per_epoch=13)
    figures = [plots.draw_windows(np.zeros((20, 20, 3), np.uint8), [(0, 0), (4, 4)], 16,
                                  labels=["a", "b"]),
               plots.plot_learning({"run": history}, window=5),
               plots.plot_sgd_forms({"a": np.linspace(1, 0.1, 20), "b": np.linspace(1, 0.2, 20)},
                                    10),
               plots.draw_thread_map(2, 3, 5, 8)]
    for k, fig in enumerate(figures):
        axes = [ax for ax in fig.axes if ax.has_data()]
        assert axes, k
        for ax in axes:
            assert ax.get_xlabel() and (ax.get_title() or fig._suptitle is not None), k
        fig.savefig(tmp_path / f"{k}.png")
        plt.close(fig)


def test_lesson_9_gpu_timing_runs_on_a_fake_cupy(fake_cupy):
    # the GPU branch of lesson 9, on tests/fake_cupy.py: the real kernel through the emulator
    from tinyalex import backend
    from tinyalex.lessons import kernels

    assert backend.gpu_problem() is None
    timing = kernels.gpu_maxpool_timing(shape=(2, 3, 9, 13), repeats=2)
    assert timing["max_difference"] == 0.0 and timing["cpu_ms"] > 0 and timing["gpu_ms"] >= 0
