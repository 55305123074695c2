"""The lessons' checker and what every lesson shares; each lesson's own checkers are tested in
``tests/test_lessonNN_*.py``, one file per lesson.

Here: every exercise's answer passes and a stub is "not done"; every lesson has at least three
exercises, all of them checked in its notebook; the package mirrors the course (one module per
notebook, no private imports between lesson modules); the shared helpers (experiments, images,
pipeline) work; every figure of the course has a title and labelled axes.
"""

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from lesson_checks import failing

from tinyalex.lessons import COURSE, REGISTRY, check, get_exercise, hint, run_check, show_solution
from tinyalex.lessons.checking import NOT_DONE, PASS, answer_lines
from tinyalex.lessons.course import MODULES, module_name

PACKAGE = Path(__file__).parent.parent / "tinyalex" / "lessons"
NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


# ---- every exercise: the solution passes, a stub is "not done", tinyalex's own passes ------

@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_solution_and_tinyalex_pass(name):
    exercise = get_exercise(name)
    for fn in (exercise.solution, exercise.reference):
        result = run_check(name, fn)
        assert result.status == PASS, result.message
        assert result.function is fn


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_only_the_stub_is_not_done_and_the_lesson_goes_on(name, capsys):
    def stub(*args):
        raise NotImplementedError  # your code here

    for fn in (stub, None):
        result = run_check(name, fn)
        assert result.status == NOT_DONE, result.message
        assert result.function is get_exercise(name).reference
    assert check(name, stub) is get_exercise(name).reference
    out = capsys.readouterr().out
    assert out.startswith("[TODO]") and "not done yet" in out and out.count("\n") == 1

    def empty(*args):  # an answer that does nothing is an answer: it gets a diagnosis
        pass

    message = failing(name, empty)
    assert "a `return` missing" in message or "neither" in message, message

    def calls_a_stub(*args):  # NotImplementedError from deeper down is not the stub
        return stub()

    assert "NotImplementedError from something it called" in failing(name, calls_a_stub)


def test_every_exercise_has_a_hint_a_solution_and_cases_of_several_seeds(capsys):
    for name, exercise in REGISTRY.items():
        assert len(exercise.cases()) >= 3, name
        hint(name)
        show_solution(name)
        out = capsys.readouterr().out
        assert f"def {name}(" in out and exercise.hint in out


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_hint_gives_the_next_step_not_the_answer(name):
    """Most of the answer's expressions (right-hand sides, returned values) must not be in the
    hint, spaces aside."""
    exercise = get_exercise(name)
    hint_text = exercise.hint.replace(" ", "")
    lines = [line.split("=", 1)[-1] if " = " in line else line.removeprefix("return ")
             for line in answer_lines(exercise)[0]]
    expressions = [e.replace(" ", "") for e in lines if len(e.replace(" ", "")) >= 6]
    given = [e for e in expressions if e in hint_text]
    assert len(given) < max(1, len(expressions) / 2), (name, given)


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

# ---- the course: one module per lesson, at least three exercises each ---------------------

@pytest.mark.parametrize("lesson", COURSE, ids=lambda lesson: lesson.file)
def test_every_lesson_has_three_exercises_and_its_notebook_checks_them(lesson):
    names = [name for name, e in REGISTRY.items() if e.lesson == lesson.number]
    assert len(names) >= 3, f"{lesson.file}: fewer than three self-checking exercises"
    code = "\n".join(c.source for c in nbformat.read(NOTEBOOKS / lesson.file, as_version=4).cells
                     if c.cell_type == "code")
    for name in names:
        assert f'check("{name}"' in code, f"{lesson.file} never checks exercise {name!r}"


def test_the_package_mirrors_the_course():
    on_disk = sorted(p.stem for p in PACKAGE.glob("lesson[0-9][0-9]_*.py"))
    assert on_disk == [module_name(lesson) for lesson in COURSE], "a lesson module not listed"
    assert [m.__name__.rsplit(".", 1)[1] for m in MODULES] == on_disk
    modules = MODULES
    assert [lesson.number for lesson in COURSE] == list(range(1, len(COURSE) + 1))
    for module in modules:  # a lesson's module registers that lesson's exercises only
        for exercise in REGISTRY.values():
            source = Path(module.__file__).read_text()
            if f'name="{exercise.name}"' in source:
                assert exercise.lesson == module.LESSON.number, (module.__name__, exercise.name)
    assert not [p.name for p in PACKAGE.glob("*.py") if re.search(r"\d+_\d+", p.stem)], (
        "a file named after a range of lessons")


def test_no_private_imports_between_the_lessons_modules():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "tinyalex.lessons"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"



# ---- the shared helpers: experiments, images, pipeline --------------------------------------

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

# ---- every figure of the course: a title and labelled axes --------------------------------

def test_every_figure_has_a_title_and_labelled_axes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyalex.lessons import experiments, pipeline, plots
    from tinyalex.lessons import lesson01_tour as l01
    from tinyalex.lessons import lesson02_convolution as l02
    from tinyalex.lessons import lesson03_relu_vs_tanh as l03
    from tinyalex.lessons import lesson05_overlapping_pooling as l05
    from tinyalex.lessons import lesson06_dropout_and_the_classifier as l06
    from tinyalex.lessons import lesson07_data as l07
    from tinyalex.lessons import lesson08_learning as l08
    from tinyalex.lessons import lesson09_cuda_kernels as l09
    from tinyalex.lessons import lesson10_what_it_learned as l10
    from tinyalex.model import layer_shapes

    run = experiments.Run("a", errors=list(np.linspace(0.9, 0.1, 40)))
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    history = pipeline.History(losses=list(np.linspace(2.3, 1.0, 40)), lrs=[0.1, 0.1, 0.01],
                               val_errors=[0.8, 0.6, 0.5], steps_per_epoch=13)
    figures = [
        l01.plot_layer_costs(layer_shapes(experiments.micro_config())),
        l02.draw_im2col(x, 3, 3, 1, 0),
        l03.plot_activations(),
        plots.plot_error_curves({"relu": [run, run]}, window=5, target=0.25),
        plots.plot_seed_spread({"a": [0.1, 0.2], "b": [0.3]}),
        l06.plot_histograms({"a": x, "b": 2 * x}, xlabel="value"),
        l05.draw_pool_windows(7, 7, 3, 2),
        l05.plot_pool_routing(x[0, 0], 3, 1),
        plots.show_matrix(np.eye(3), title="eye", xlabel="j", ylabel="i", symmetric=True),
        l07.draw_windows(np.zeros((20, 20, 3), np.uint8), [(0, 0), (4, 4)], 16,
                         labels=["a", "b"]),
        l08.plot_learning({"run": history}, window=5),
        l08.plot_sgd_forms({"a": np.linspace(1, 0.1, 20), "b": np.linspace(1, 0.2, 20)}, 10),
        l09.draw_thread_map(2, 3, 5, 8),
        l10.plot_figure3(x[0, 0][None, None].repeat(3, 1).repeat(4, 0) + 1, np.ones((4, 3, 4, 4))),
        l10.plot_colourfulness({"initial": np.full(4, 0.6), "trained": np.full(4, 0.5)}),
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
