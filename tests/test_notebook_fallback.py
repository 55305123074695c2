"""Lesson 11 without Fashion-MNIST: it says how to install it and runs on the built-in shapes.

The notebook is run as stored except for one line, its FASHION_MNIST folder, pointed at a
folder that does not exist (as on a machine without the Debian package).
"""

import pytest
from test_notebooks import FOLDER, execute, kernel_home  # noqa: F401  (kernel_home: a fixture)

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")

STORED = 'FASHION_MNIST = "/usr/share/datasets/fashion-mnist"'


@pytest.mark.slow
def test_lesson_11_without_fashion_mnist(kernel_home, tmp_path, monkeypatch):  # noqa: F811
    notebook = nbformat.read(FOLDER / "11_real_images.ipynb", as_version=4)
    setup = next(c for c in notebook.cells if c.cell_type == "code")
    assert STORED in setup.source
    setup.source = setup.source.replace(STORED, f'FASHION_MNIST = "{tmp_path / "absent"}"')
    execute(notebook, kernel_home, tmp_path, monkeypatch)
    printed = "".join(o.get("text", "") for o in setup.outputs)
    assert "Fashion-MNIST was not found" in printed
    assert "sudo apt-get install dataset-fashion-mnist" in printed
    assert "built-in shapes" in printed
    shown = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                    for o in c.outputs)
    assert "colour images: both parts learn" in shown  # the RGB branch of the conv1 check
