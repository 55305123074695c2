"""Sphinx configuration of the tinyalex book: the twelve lessons, executed, and the docs.

Built by ``python docs/book.py build`` (see that file), which lays out the source folder
``build/book/source/`` as the repository is laid out -- ``docs/`` (these pages) beside
``notebooks/`` (the executed lessons) -- so that a link from a page to
``../notebooks/01_tour.ipynb`` works both on a code host and in the book. The front page is
``docs/index``.

Nothing is loaded from the internet: MathJax is served from the site itself (npm's
``mathjax`` package, ``docs/package.json``), with its fonts and extensions, so the book works
offline, from ``file://`` as well as through ``python docs/book.py serve``.
"""

import json
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

from book import MATHJAX_DIR, MATHJAX_FILES, error_outputs  # noqa: E402
from sphinx.util import logging  # noqa: E402

logger = logging.getLogger("tinyalex.book")

project = "tinyalex"
author = "the tinyalex authors"
copyright = "tinyalex authors, MIT licence"
root_doc = "docs/index"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
exclude_patterns = ["docs/node_modules", "**/.ipynb_checkpoints", "notebooks/_clean"]

# ---- pages: MyST Markdown and notebooks ------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3  # [text](training.md#a-dead-network) links, as on a code host
nb_execution_mode = "off"  # the lessons arrive executed (book.py runs any that are missing)
nb_merge_streams = True  # one block per cell for its printed lines, as Jupyter shows them

# ---- the API reference, from the docstrings -------------------------------------------------
autodoc_member_order = "bysource"  # as the module reads
# tinyalex's docstrings are plain text, written to be read in an editor: shapes in columns,
# formulas as ASCII (``|w - w0| / |w0|``, ``sum_{j in window(i)} a[j]^2``), hanging indents.
# Read as reStructuredText they would be misread (|w| is a substitution, a_ a link); so the
# reference shows each one as it is written, in a literal block (_as_written below).
autodoc_typehints = "none"  # the docstrings say the shapes and types in words
autodoc_mock_imports = ["cupy", "mpi4py"]  # optional extras: documented without them

# ---- MathJax from the site itself ---------------------------------------------------------
# The subset of npm's mathjax package (version 3) that renders TeX to HTML: the combined
# script, the TeX extensions it loads on demand, and the fonts its CSS points at, all found
# relative to the script, so nothing is fetched from elsewhere.
STATIC = ROOT / "build" / "book" / "static"


def _copy_mathjax():
    if not (MATHJAX_DIR / MATHJAX_FILES[0]).exists():
        raise RuntimeError(f"MathJax is not installed in {MATHJAX_DIR}: run `npm install "
                           "--prefix docs` once (python docs/book.py build does it for you)")
    target = STATIC / "mathjax"
    for name in MATHJAX_FILES:
        source = MATHJAX_DIR / name
        if source.is_dir():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


_copy_mathjax()
html_static_path = [str(STATIC), str(DOCS / "_static")]
html_css_files = ["tinyalex.css"]
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]}}

# ---- the look ------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "tinyalex: AlexNet from scratch, a course"
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "launch_buttons": {},
}
html_extra_path = [str(DOCS / "_root")]  # index.html at the site's root: the front page
html_last_updated_fmt = None
html_show_sourcelink = False


def _no_error_outputs(app, env, docnames):
    """A lesson whose cell raised fails the build: its traceback is a warning (-W: an error)."""
    for docname in docnames:
        path = Path(env.doc2path(docname))
        if path.suffix == ".ipynb":
            for number, name in error_outputs(json.loads(path.read_text())):
                logger.warning(f"cell {number} raised {name}: the lesson must run cleanly",
                               location=docname)


def _as_written(app, what, name, obj, options, lines):
    """autodoc-process-docstring: the docstring ``lines`` become one literal block."""
    if any(line.strip() for line in lines):
        lines[:] = ([".. code-block:: text", "   :class: docstring", ""]
                    + [f"   {line}" if line.strip() else "" for line in lines] + [""])


def setup(app):
    app.connect("env-before-read-docs", _no_error_outputs)
    app.connect("autodoc-process-docstring", _as_written)
