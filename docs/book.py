"""The tinyalex book: the twelve lessons, executed, and the docs, built into one website.

    python docs/book.py build     # -> build/book/html/index.html (open it, or serve it)
    python docs/book.py serve     # http://127.0.0.1:8000/ (--port to choose)

``build`` needs the ``docs`` extra (``pip install -e ".[docs]"``: Sphinx, MyST-NB,
sphinx-book-theme) and MathJax from npm (``npm install --prefix docs``; ``build`` runs it
the first time). After that it needs no network, and neither does the site it builds.

What ``build`` does:

1. The lessons, executed. ``tests/test_notebooks.py`` writes each notebook it has run
   cleanly, with its outputs, to ``build/executed-notebooks/``; ``build`` uses those copies
   and runs on a Jupyter kernel only the lessons that have none, or whose copy no longer
   matches the notebook cell for cell (so a full ``pytest`` followed by ``build`` runs the
   course once).
2. The source folder ``build/book/source/``, laid out like the repository: ``docs/`` (the
   pages and figures of this folder, and an API reference generated from the package, one
   page per package) and ``notebooks/`` (the executed lessons, each with a note under its
   title saying how to run it).
3. Sphinx with warnings as errors (``docs/conf.py``): a broken link or cross-reference, a
   missing figure, a docstring that does not parse, or a lesson with an error output stops
   the build.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "build" / "executed-notebooks"  # tests/test_notebooks.py writes here too
BOOK = ROOT / "build" / "book"
SOURCE = BOOK / "source"
SITE = BOOK / "html"
FRONT_PAGE = "docs/index.html"  # the site's own index.html leads there

MATHJAX_DIR = DOCS / "node_modules" / "mathjax" / "es5"
# what of npm's mathjax the book serves: the script first (TeX in, HTML out), then what it
# loads on demand from beside itself (TeX extensions, fonts, the menu's accessibility parts)
MATHJAX_FILES = ("tex-chtml.js", "input/tex", "output/chtml", "a11y", "sre", "ui", "adaptors")

# the packages whose modules the API reference documents, each on a page of its own
API_PACKAGES = ("tinyalex", "tinyalex.layers", "tinyalex.fast", "tinyalex.cuda",
                "tinyalex.data", "tinyalex.distributed", "tinyalex.lessons")


# ---- the executed lessons --------------------------------------------------------------------

def error_outputs(notebook: dict) -> list[tuple[int, str]]:
    """(cell number from 1, exception name) of every error output in a notebook's JSON."""
    return [(number, output.get("ename", "an error"))
            for number, cell in enumerate(notebook["cells"], 1)
            if cell["cell_type"] == "code"
            for output in cell.get("outputs", ()) if output["output_type"] == "error"]


def _cells(notebook: dict) -> list[tuple[str, str]]:
    def text(source):
        return source if isinstance(source, str) else "".join(source)
    return [(cell["cell_type"], text(cell["source"])) for cell in notebook["cells"]]


def executed_copy_is_current(path: Path) -> bool:
    """Whether build/executed-notebooks/ holds a clean run of exactly this notebook's cells."""
    copy = EXECUTED / path.name
    if not copy.exists():
        return False
    executed = json.loads(copy.read_text())
    return (_cells(executed) == _cells(json.loads(path.read_text()))
            and not error_outputs(executed))


def execute(path: Path) -> None:
    """Run one lesson top to bottom on a Jupyter kernel of this Python; save the executed copy.

    As tests/test_notebooks.py runs it: a kernelspec for ``sys.executable`` in a temporary
    JUPYTER_PATH, a temporary working folder. The copy is written only if no cell raised.
    """
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="tinyalex-book-") as folder:
        spec = Path(folder) / "jupyter" / "kernels" / "tinyalex-book"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "tinyalex book", "language": "python"}))
        work = Path(folder) / "work"
        work.mkdir()
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = str(spec.parent.parent)
        try:
            nbclient.NotebookClient(notebook, kernel_name="tinyalex-book", timeout=1200,
                                    resources={"metadata": {"path": str(work)}}).execute()
        finally:
            if previous is None:
                del os.environ["JUPYTER_PATH"]
            else:
                os.environ["JUPYTER_PATH"] = previous
    EXECUTED.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, EXECUTED / path.name)


def run_note(path: Path) -> str:
    """The note added to each lesson's title cell in the book: how to run it."""
    text = (
        ":::{note}\n"
        f"This page is `notebooks/{path.name}` as CI ran it, every output in place. The "
        "exercises are shown as you meet them: not done yet, so the lesson goes on with "
        "tinyalex's own function (the answers are not in the book either). To do them, run "
        f"the notebook ({{download}}`{path.name}, as stored <_clean/{path.name}>`), from a "
        "clone of tinyalex:\n\n"
        f"    pip install -e . jupyter && jupyter lab notebooks/{path.name}\n"
        ":::\n")
    return text


# ---- the source folder -------------------------------------------------------------------

def api_pages(folder: Path) -> None:
    """docs/api/: one page per package, each module's docstring and members (autodoc)."""
    import importlib

    folder.mkdir(parents=True)
    index = ["# API reference\n",
             "Generated from the docstrings, one page per package; the shapes of arrays, the",
             "paper's sections and the maths are in them.\n",
             "```{toctree}\n:maxdepth: 1\n"]
    for package_name in API_PACKAGES:
        package = importlib.import_module(package_name)
        summary = (package.__doc__ or "").strip().splitlines()[0]
        # the package's docstring, then each module's with its members (autodoc writes
        # reStructuredText, hence eval-rst)
        lines = [f"# `{package_name}`\n", f"```{{eval-rst}}\n.. automodule:: {package_name}\n```\n"]
        for module in pkgutil.iter_modules(package.__path__, package_name + "."):
            if module.ispkg or module.name.endswith("__main__"):
                continue
            lines += [f"## `{module.name}`\n",
                      f"```{{eval-rst}}\n.. automodule:: {module.name}\n   :members:\n```\n"]
        (folder / f"{package_name}.md").write_text("\n".join(lines))
        index.append(package_name)
        print(f"  API: {package_name}: {summary}")
    index.append("```\n")
    (folder / "index.md").write_text("\n".join(index))


def stage() -> None:
    """Lay out build/book/source/: docs/ (pages, figures, API) and notebooks/ (executed)."""
    if SOURCE.exists():
        shutil.rmtree(SOURCE)
    shutil.copytree(DOCS, SOURCE / "docs", ignore=shutil.ignore_patterns(
        "node_modules", "*.py", "__pycache__", "package*.json", "_root", "_static"))
    api_pages(SOURCE / "docs" / "api")
    lessons = SOURCE / "notebooks"
    (lessons / "_clean").mkdir(parents=True)
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        shutil.copy2(path, lessons / "_clean" / path.name)
        notebook = json.loads((EXECUTED / path.name).read_text())
        title = notebook["cells"][0]  # the note goes in it: cell numbers stay the notebook's
        title["source"] = "".join(title["source"]).rstrip() + "\n\n" + run_note(path)
        (lessons / path.name).write_text(json.dumps(notebook, indent=1))


def ensure_mathjax() -> None:
    if (MATHJAX_DIR / MATHJAX_FILES[0]).exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("error: MathJax is not installed and npm is not found: install Node.js and "
                 "npm, then run `npm install --prefix docs` (once)")
    print("MathJax: npm install --prefix docs (once; needs the npm registry)")
    subprocess.run([npm, "install", "--prefix", str(DOCS), "--no-audit", "--no-fund",
                    "--no-package-lock"], check=True)


def build(args) -> int:
    start = time.perf_counter()
    ensure_mathjax()
    lessons = sorted(NOTEBOOKS.glob("*.ipynb"))
    missing = [path for path in lessons if not executed_copy_is_current(path)]
    print(f"lessons: {len(lessons) - len(missing)} executed copies in "
          f"{EXECUTED.relative_to(ROOT)}/, {len(missing)} to run")
    for path in missing:
        tick = time.perf_counter()
        execute(path)
        print(f"  ran {path.name} in {time.perf_counter() - tick:.0f} s")
    stage()
    if SITE.exists():
        shutil.rmtree(SITE)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
               "-c", str(DOCS), str(SOURCE), str(SITE)]
    if subprocess.run(command).returncode != 0:
        print("error: the book did not build (the warnings above are errors)", file=sys.stderr)
        return 1
    lessons = list((SITE / "notebooks").glob("*.html"))
    pages = list((SITE / "docs").rglob("*.html"))  # the front page, the docs, the API
    figures = list((SITE / "_images").glob("*.png"))  # the lessons' figures and the docs'
    print(f"built {SITE.relative_to(ROOT)}/index.html in {time.perf_counter() - start:.0f} s: "
          f"{len(lessons)} lessons and {len(pages)} other pages, {len(figures)} figures")
    return 0


# ---- serving ---------------------------------------------------------------------------------

def server(port: int = 8000, folder: Path = SITE) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the built site on 127.0.0.1 only (not yet serving)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def serve(args) -> int:
    if not (SITE / "index.html").exists():
        print("error: the book is not built: run python docs/book.py build", file=sys.stderr)
        return 2
    with server(args.port) as httpd:
        print(f"serving {SITE.relative_to(ROOT)}/ at http://127.0.0.1:{httpd.server_port}/ "
              "(Ctrl-C stops)")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            return 0
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/book.py", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the book into build/book/html/")
    serve_parser = commands.add_parser("serve", help="serve the built book on 127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    return {"build": build, "serve": serve}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
