"""The lessons' fallbacks, run as a reader without the optional pieces would run them.

Lesson 11 without Fashion-MNIST: the notebook is run as stored except for one line, its
FASHION_MNIST folder, pointed at a folder that does not exist (as on a machine without the
Debian package); it shows the shapes, runs its exercises, and says that it skips the training
run and what needs it. Lesson 9 without a C++ compiler: run with $CXX naming a compiler that does
not exist (the emulator's compiler is $CXX, default g++).
"""

import pytest
from test_notebooks import FOLDER, execute, kernel_home  # noqa: F401  (kernel_home: a fixture)

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")

STORED = 'FASHION_MNIST = "/usr/share/datasets/fashion-mnist"'


def printed(notebook) -> str:
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                   for o in c.outputs)


@pytest.mark.slow
def test_lesson_11_without_fashion_mnist(kernel_home, tmp_path, monkeypatch):  # noqa: F811
    notebook = nbformat.read(FOLDER / "11_real_images.ipynb", as_version=4)
    setup = next(c for c in notebook.cells if c.cell_type == "code")
    assert STORED in setup.source
    setup.source = setup.source.replace(STORED, f'FASHION_MNIST = "{tmp_path / "absent"}"')
    execute(notebook, kernel_home, tmp_path, monkeypatch)
    first = "".join(o.get("text", "") for o in setup.outputs)
    assert "Fashion-MNIST was not found" in first
    assert "sudo apt-get install dataset-fashion-mnist" in first
    assert "built-in shapes" in first
    shown = printed(notebook)
    assert "Fashion-MNIST is not installed: the shapes' statistics only" in shown
    assert shown.count("eigenvalues [") == 1  # one row, labelled by what it is
    skipped = shown.count("(skipped without Fashion-MNIST:")
    assert skipped == 5, f"{skipped} steps said they were skipped"
    assert "test accuracy" not in shown  # no net that guesses, no confusion matrix of one
    assert "confusion_counts: not done yet" in shown  # the exercises still run


@pytest.mark.slow
def test_lesson_9_without_a_compiler(kernel_home, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    notebook = nbformat.read(FOLDER / "09_cuda_kernels.ipynb", as_version=4)
    execute(notebook, kernel_home, tmp_path, monkeypatch)  # raises on any error
    shown = printed(notebook)
    assert "No C++ compiler here" in shown and "sudo apt-get install g++" in shown
    assert shown.count("(skipped, no C++ compiler:") >= 5
    assert "thread_coords: not done yet" in shown  # the exercises still run
