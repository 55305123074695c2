"""Lesson 8, learning: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex.lessons import lesson08_learning as lesson


def test_sgd_mistakes():
    def pytorch_style(w, v, g, lr, momentum, weight_decay):
        v *= momentum
        v += g + weight_decay * w
        w -= lr * v

    assert "PyTorch's form" in failing("sgd_update", pytorch_style)

    def rebinding_v(w, v, g, lr, momentum, weight_decay):
        v = momentum * v - weight_decay * lr * w - lr * g
        w += v

    assert "v did not: `v = ...` rebinds" in failing("sgd_update", rebinding_v)

    def rebinding_both(w, v, g, lr, momentum, weight_decay):  # what the exercise warns about
        v = momentum * v - weight_decay * lr * w - lr * g
        w = w + v  # noqa: F841

    message = failing("sgd_update", rebinding_both)
    assert "neither w nor v changed" in message and "not done" not in message

    def rebinding_w(w, v, g, lr, momentum, weight_decay):  # v in place, w rebound
        v *= momentum
        v -= weight_decay * lr * w + lr * g
        w = w + v  # noqa: F841

    assert "v is right, but w did not change" in failing("sgd_update", rebinding_w)

    def decay_without_lr(w, v, g, lr, momentum, weight_decay):
        v *= momentum
        v -= weight_decay * w + lr * g
        w += v

    assert "multiplied by the learning rate" in failing("sgd_update", decay_without_lr)


def test_pytorch_sgd_mistakes():
    assert "the paper's form" in failing("pytorch_sgd_update", lesson.sgd_update)

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

    def rebinding(w, buf, g, lr, momentum, weight_decay):
        buf = momentum * buf + g + weight_decay * w
        w = w - lr * buf  # noqa: F841

    assert "neither w nor buf changed" in failing("pytorch_sgd_update", rebinding)

    def rebinding_w(w, buf, g, lr, momentum, weight_decay):
        buf *= momentum
        buf += g + weight_decay * w
        w = w - lr * buf  # noqa: F841

    assert "buf is right, but w did not change" in failing("pytorch_sgd_update", rebinding_w)


def test_the_two_sgd_forms_agree_at_a_fixed_rate_and_differ_when_it_drops():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(20)
    grads = [rng.standard_normal(20) for _ in range(8)]
    paths = []
    for update in (lesson.sgd_update, lesson.pytorch_sgd_update):
        w, v, path = w0.copy(), np.zeros(20), []
        for k, g in enumerate(grads):
            update(w, v, g + 0.1 * w, 0.1 if k < 4 else 0.01, 0.9, 0.0)
            path.append(w.copy())
        paths.append(path)
    np.testing.assert_allclose(paths[0][3], paths[1][3], rtol=1e-12)  # same until the drop
    assert not np.allclose(paths[0][4], paths[1][4])


def test_plateau_mistakes():
    def impatient(errors, lr, patience, most):
        return lesson.plateau_rates(errors, lr, patience - 1, most)

    message = failing("plateau_rates", impatient)
    assert "MORE than patience" in message and "the paper has no patience" in message

    def no_limit(errors, lr, patience, most):
        return lesson.plateau_rates(errors, lr, patience, 99)

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
        return lesson.plateau_rates(errors, lr, patience, most)[1:]

    assert "one rate more" in failing("plateau_rates", without_first)


def test_he_mistakes():
    assert "square root" in failing("he_std", lambda shape: 2 / np.prod(shape[1:]))
    assert "LeCun" in failing("he_std", lambda shape: np.sqrt(1 / np.prod(shape[1:])))
    assert "fan-out" in failing("he_std",
                                lambda shape: np.sqrt(2 / (shape[0] * np.prod(shape[2:]))))
    assert "not in_channels" in failing("he_std", lambda shape: np.sqrt(2 / shape[1]))


def test_paper_init_and_the_two_sgd_forms():
    from tinyalex.lessons import experiments
    from tinyalex.optim import sgd_update

    config = lesson.paper_init(experiments.micro_config())
    assert config.init == "paper" and config.input_scale == 1.0
    assert config.bias_one == ("conv2", "fc4")  # the grouped conv and the hidden fc layer
    net = experiments.ExperimentNet(config, seed=0)
    assert np.all(net.params["conv2.b"] == 1) and np.all(net.params["conv1.b"] == 0)
    assert abs(net.params["conv3.w"].std() - 0.01) < 1e-3
    x = np.random.default_rng(0).standard_normal((4, 3, 23, 23)).astype(np.float32) * 50
    scales = lesson.activation_scales(net, x)
    assert list(scales) == ["conv1", "conv2", "conv3", "fc4", "fc5"]
    paper = lesson.quadratic_paths(sgd_update, 20, 10)
    torch_form = lesson.quadratic_paths(lesson.torch_sgd_update, 20, 10)
    assert paper.shape == (21, 50) and np.array_equal(paper[0], torch_form[0])
    assert np.abs(paper[:11] - torch_form[:11]).max() < 1e-12  # the start and 10 steps
    assert np.abs(paper[11:] - torch_form[11:]).max() > 1e-3
