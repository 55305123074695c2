"""The lessons run as a reader runs them: every notebook, top to bottom, on a real Jupyter kernel.

nbclient starts an IPython kernel (ipykernel) for each notebook and executes its cells in
order, so magics, ``display`` and inline figures behave as they do for a reader; any error
fails the test. The kernel is THIS test run's Python (a kernelspec written into a temporary
``JUPYTER_PATH``), so CI on a fresh machine needs no Jupyter setup beyond the ``test``
extra. The notebooks run in a temporary folder with ``TINYALEX_CACHE`` inside it, so nothing
lands in the user's cache. They are stored without outputs and stay small.
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tinyalex.lessons import REGISTRY
from tinyalex.lessons.checking import answer_lines
from tinyalex.lessons.course import COURSE

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")

FOLDER = Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
MAX_BYTES = 500_000
KERNEL = "tinyalex-test-python"
# Each notebook that runs cleanly is also written here with its outputs, git-ignored: the
# book (docs/book.py) is built from these copies without running the course again.
EXECUTED = FOLDER.parent / "build" / "executed-notebooks"


@pytest.fixture(scope="module")
def kernel_home(tmp_path_factory):
    """A JUPYTER_PATH whose only kernelspec runs ipykernel in this very interpreter."""
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tinyalex tests", "language": "python"}))
    return home


def test_there_are_lessons():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size} bytes"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}: commit notebooks without outputs (Kernel > Restart & Clear "
                "Output, or `jupyter nbconvert --clear-output --inplace`)")


def execute(notebook, kernel_home, folder, monkeypatch):
    """Run every cell of ``notebook`` in order on a fresh kernel, with ``folder`` as its cwd."""
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_home))
    monkeypatch.setenv("TINYALEX_CACHE", str(folder / "cache"))
    client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=600,
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_a_jupyter_kernel(path, kernel_home, tmp_path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    (EXECUTED / path.name).unlink(missing_ok=True)  # never leave an older run's copy behind
    start = time.perf_counter()
    execute(notebook, kernel_home, tmp_path, monkeypatch)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s on a Jupyter kernel")
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors
    assert not answers_shown_before_their_exercise(notebook)
    assert set(os.listdir(tmp_path)) <= {"cache"}, (
        f"{path.name} wrote files into its working folder: {os.listdir(tmp_path)}")
    EXECUTED.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, EXECUTED / path.name)


def answers_shown_before_their_exercise(notebook) -> list[str]:
    """'exercise X: its answer (function k) is on the page before it' for every exercise whose
    answer's code -- half of its lines or more -- is in a markdown cell or an output above the
    exercise's check cell (printed by show_code, inspect.getsource, a print, a helper...)."""
    found, seen = [], set()  # seen: the stripped lines of the page so far
    for cell in notebook.cells:
        names = [name for name in REGISTRY if f'check("{name}"' in cell.source]
        for name in names if cell.cell_type == "code" else ():
            for k, lines in enumerate(answer_lines(REGISTRY[name])):
                shown = sum(line in seen for line in lines)
                if shown >= min(len(lines), max(2, -(-len(lines) // 2))):
                    found.append(f"exercise {name}: its answer (function {k}) is on the page "
                                 f"before it ({shown} of its {len(lines)} lines)")
        texts = [cell.source] if cell.cell_type == "markdown" else [
            output.get("text", "") or output.get("data", {}).get("text/plain", "")
            for output in cell.get("outputs", [])]
        seen.update(line.strip() for text in texts for line in text.splitlines())
    return found


def test_an_answer_printed_before_its_exercise_is_found():
    answer = "\n".join(["# tinyalex/layers/lrn.py", *answer_lines(REGISTRY["lrn_forward"])[-1]])
    printed = nbformat.v4.new_code_cell("show_code(layers.lrn_forward)", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=answer)])
    exercise = nbformat.v4.new_code_cell('lrn_forward = check("lrn_forward", lrn_forward)')
    after = nbformat.v4.new_notebook(cells=[exercise, printed])
    before = nbformat.v4.new_notebook(cells=[printed, exercise])
    assert not answers_shown_before_their_exercise(after)
    assert "exercise lrn_forward" in answers_shown_before_their_exercise(before)[0]


@pytest.mark.slow
def test_the_kernel_is_this_python_and_an_error_fails_the_run(kernel_home, tmp_path,
                                                              monkeypatch):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import sys; print(sys.executable)"),
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell("print('never reached')")])
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="ZeroDivisionError"):
        execute(notebook, kernel_home, tmp_path, monkeypatch)
    assert notebook.cells[0].outputs[0].text.strip() == sys.executable
    assert not notebook.cells[2].outputs


# ---- the course: what every lesson must have --------------------------------------------------

def _cells(path, kind):
    return ["".join(c.source) for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == kind]


@pytest.mark.parametrize("lesson", COURSE, ids=lambda lesson: lesson.file)
def test_each_lesson_teaches_before_it_tests(lesson):
    path = FOLDER / lesson.file
    assert path.exists(), f"the course lists {lesson.file}, which is not in notebooks/"
    prose = _cells(path, "markdown")
    code = _cells(path, "code")
    assert sum(len(text) for text in prose) >= 4000, f"{lesson.file}: too little prose"
    assert prose[0].startswith(f"# Lesson {lesson.number}"), prose[0][:60]
    for section in lesson.sections:  # the title cell cites the paper's sections
        assert section in prose[0], (lesson.file, section)
    # its exercises (at least three, each checked in the notebook): tests/test_lessons.py
    assert "not done" not in "".join(code)  # the stubs raise NotImplementedError


def test_every_lesson_is_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for lesson in COURSE:
        assert f"notebooks/{lesson.file}" in readme, lesson.file
