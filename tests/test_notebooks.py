"""The lessons stay runnable: every code cell of every notebook is executed in order."""

import json
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # the lessons plot; a test run has no display

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_lessons():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_has_no_stored_outputs(path, monkeypatch, tmp_path):
    notebook = json.loads(path.read_text())
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__notebook__"}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name}: commit notebooks without outputs"
            exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)
