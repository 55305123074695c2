"""The book as a reader sees it: the built site opened in a real headless browser.

``python docs/book.py build`` builds the site into ``build/book/html/`` (or wherever
``$TINYALEX_BOOK`` points); these tests open it in Debian's ``chromium``, driven through
Playwright's Python API (``executable_path``: Playwright's own browsers are never
downloaded), from the files (``file://``) and through the serve command's HTTP server, and
on every page reached from the front page check what a reader would notice:

- every image has loaded (``naturalWidth > 0``);
- every formula is rendered: each maths element holds MathJax's output (no ``mjx-merror``),
  and no ``\\(``, ``\\[`` or ``$$`` is left in the visible text outside code;
- no page shows an error output (a cell that raised);
- no request leaves the machine: every request to another host is blocked and counted, and
  the count must be 0; no request for a file of the site fails either;
- the links from the front page reach every lesson.

A screenshot of each lesson page is saved in the test's temporary folder (printed; ``pytest
-s`` shows it). Without the browser, Playwright or a built site the tests are skipped with
the reason, except under CI (``CI=true``), where ``.ci/run`` installs the browser and builds
the book first, and where a missing browser fails the test instead.

``test_each_check_fails_on_its_planted_defect`` runs the same checks on a small site with
one defect of each kind planted, so that none of them can pass by looking at nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

ROOT = Path(__file__).parent.parent
_spec = importlib.util.spec_from_file_location("tinyalex_book", ROOT / "docs" / "book.py")
book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book)

IN_CI = os.environ.get("CI", "").strip().lower() == "true"
SITE = Path(os.environ.get("TINYALEX_BOOK") or book.SITE).resolve()
LESSONS = sorted(path.stem for path in book.NOTEBOOKS.glob("*.ipynb"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as root, in a closed network: no sandbox, and none of chromium's own background traffic
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: .ci/run installs it, so a skip would hide a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright's Python package is missing: pip install -e \".[docs]\"")
    if CHROMIUM is None:
        unavailable("no chromium on the PATH: apt-get install chromium (Debian's browser)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site():
    if not (SITE / "index.html").exists():
        if os.environ.get("TINYALEX_BOOK"):
            pytest.fail(f"TINYALEX_BOOK={SITE} holds no built book (index.html)")
        pytest.skip(f"the book is not built in {SITE}: python docs/book.py build "
                    "(.ci/run builds it after the tests, then runs this file)")
    return SITE


# ---- what the build reads ------------------------------------------------------------------

def _notebook(*outputs, source="1 / 0"):
    return {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Lesson 0"},
                      {"cell_type": "code", "metadata": {}, "source": source,
                       "outputs": list(outputs), "execution_count": None}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_an_error_output_is_found_for_the_build_to_refuse():
    error = {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
             "traceback": []}
    printed = {"output_type": "stream", "name": "stderr", "text": "a warning\n"}
    assert book.error_outputs(_notebook(printed, error)) == [(2, "ZeroDivisionError")]
    assert book.error_outputs(_notebook(printed)) == []


def test_an_executed_copy_is_used_only_while_it_matches_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "EXECUTED", tmp_path / "executed")
    (tmp_path / "executed").mkdir()
    lesson = tmp_path / "00_lesson.ipynb"
    lesson.write_text(json.dumps(_notebook(source="print(1)")))
    assert not book.executed_copy_is_current(lesson)  # none yet
    ran = {"output_type": "stream", "name": "stdout", "text": "1\n"}
    copy = tmp_path / "executed" / lesson.name
    copy.write_text(json.dumps(_notebook(ran, source="print(1)")))
    assert book.executed_copy_is_current(lesson)
    lesson.write_text(json.dumps(_notebook(source="print(2)")))  # the lesson changed since
    assert not book.executed_copy_is_current(lesson)


# ---- the checks ------------------------------------------------------------------------------

# Run in each page once it has loaded: waits for MathJax and the images, then reports.
PAGE_REPORT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  document.body.getBoundingClientRect();  // lay the page out: the fonts it needs start loading
  await document.fonts.ready;
  for (const img of document.images) img.loading = "eager";
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(done => { img.addEventListener("load", done);
                            img.addEventListener("error", done); })));
  const brokenImages = [...document.images]
      .filter(img => !(img.complete && img.naturalWidth > 0))
      .map(img => img.getAttribute("src"));
  const maths = [...document.querySelectorAll(".math")];
  const unrenderedMaths = maths
      .filter(m => !m.querySelector("mjx-container") || m.querySelector("mjx-merror"))
      .map(m => m.textContent.trim().slice(0, 60));
  const leftTeX = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest("pre, code, script, style, mjx-container, .math")) continue;
    if (!parent.checkVisibility()) continue;
    for (const marker of ["\\\\(", "\\\\[", "$$"]) {
      if (node.textContent.includes(marker)) leftTeX.push(node.textContent.trim().slice(0, 60));
    }
  }
  const errorOutputs = [...document.querySelectorAll(".output.traceback, .output.error")]
      .map(e => e.textContent.trim().slice(0, 120));
  const links = [...document.querySelectorAll("a[href]")].map(a => a.href);
  return {brokenImages, unrenderedMaths, leftTeX, errorOutputs, links,
          images: document.images.length, maths: maths.length};
}"""


@dataclass
class Crawl:
    """What the browser found on the pages reached from ``start``."""
    pages: dict = field(default_factory=dict)  # url -> the page's report
    outside: list = field(default_factory=list)  # requests to other hosts (blocked)
    failed: list = field(default_factory=list)  # requests for the site's own files that failed

    def problems(self) -> dict:
        kinds = ("brokenImages", "unrenderedMaths", "leftTeX", "errorOutputs")
        found = {f"{kind}: {url}": report[kind] for url, report in self.pages.items()
                 for kind in kinds if report[kind]}
        if self.outside:
            found["requests that left the machine"] = self.outside
        if self.failed:
            found["requests that failed"] = self.failed
        return found

    def reached(self, name: str) -> bool:
        return any(urlparse(url).path.endswith(f"/{name}.html") for url in self.pages)


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("file", "data", "blob", "about") or parsed.hostname in (
        "127.0.0.1", "localhost")


def crawl(browser, start: str, front: str | None = None,
          screenshots: Path | None = None) -> Crawl:
    """Visit every page of the site that links from ``start`` reach, checking each one.

    ``front``: the page ``start`` forwards to, if it does (the site's own index.html leads
    to docs/index.html, the book's front page).
    """
    result = Crawl()
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(route):
        if is_local(route.request.url):
            route.continue_()
        else:
            result.outside.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("requestfailed", lambda request: is_local(request.url)
            and result.failed.append(f"{request.url}: {request.failure}"))
    page.on("response", lambda response: response.status >= 400
            and result.failed.append(f"{response.url}: HTTP {response.status}"))
    root = start.rsplit("/", 1)[0] + "/"
    if front is not None:
        page.goto(start)
        page.wait_for_url(front)
        start = front
    queue, seen = [start], {start}
    while queue:
        url = queue.pop(0)
        page.goto(url, wait_until="load")
        report = page.evaluate(PAGE_REPORT)
        page.wait_for_load_state("networkidle")  # nothing still loading is cut off by the next
        result.pages[page.url] = report
        name = Path(urlparse(page.url).path).stem
        if screenshots is not None and name in LESSONS:
            page.screenshot(path=screenshots / f"{name}.png", full_page=True)
        for link in report["links"]:
            link = urldefrag(link).url
            if link.startswith(root) and link.endswith(".html") and link not in seen:
                seen.add(link)
                queue.append(link)
    context.close()
    return result


# ---- the built book --------------------------------------------------------------------------

def check_book(result: Crawl):
    assert result.problems() == {}
    unreached = [name for name in LESSONS if not result.reached(name)]
    assert not unreached, f"the front page's links never reach {unreached}"
    assert sum(report["images"] for report in result.pages.values()) >= 20
    assert sum(report["maths"] for report in result.pages.values()) >= 5  # the check is live


def test_the_book_from_its_files(site, browser, tmp_path):
    shots = tmp_path / "lessons"
    shots.mkdir()
    result = crawl(browser, (site / "index.html").as_uri(),
                   front=(site / book.FRONT_PAGE).as_uri(), screenshots=shots)
    print(f"{len(result.pages)} pages read; lesson screenshots in {shots}")
    check_book(result)
    assert sorted(path.stem for path in shots.glob("*.png")) == LESSONS


def serve_and_crawl(browser, folder: Path, front: str | None) -> Crawl:
    """crawl() through the serve command's HTTP server (on a free port) for ``folder``."""
    httpd = book.server(port=0, folder=folder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        root = f"http://127.0.0.1:{httpd.server_port}/"
        return crawl(browser, root + "index.html", front=front and root + front)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_book_through_the_serve_command(site, browser):
    check_book(serve_and_crawl(browser, site, book.FRONT_PAGE))


# ---- the checks themselves -------------------------------------------------------------------

PLANTED_FRONT = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>front</title></head>
<body><p>The course starts at <a href="notebooks/01_first.html">lesson 1</a>.</p></body></html>"""

PLANTED_LESSON = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>lesson</title></head>
<body>
<img src="missing.png" alt="a figure that is not there">
<img src="https://example.com/figure.png" alt="a figure from elsewhere">
<p>The loss is <span class="math notranslate nohighlight">\\(-\\log p_y\\)</span>.</p>
<p>Written outside any maths element: $$ x^2 $$</p>
<div class="cell_output"><div class="output traceback"><pre>ZeroDivisionError</pre></div></div>
</body></html>"""


def test_each_check_fails_on_its_planted_defect(browser, tmp_path):
    """One defect of each kind, each found; and a lesson no link reaches is not reached."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "index.html").write_text(PLANTED_FRONT)
    (tmp_path / "notebooks" / "01_first.html").write_text(PLANTED_LESSON)
    (tmp_path / "notebooks" / "02_second.html").write_text(PLANTED_FRONT)  # never linked
    result = crawl(browser, (tmp_path / "index.html").as_uri())
    lesson = next(report for url, report in result.pages.items() if "01_first" in url)
    assert lesson["brokenImages"] == ["missing.png", "https://example.com/figure.png"]
    assert lesson["unrenderedMaths"] == ["\\(-\\log p_y\\)"]  # no MathJax on that page
    assert lesson["leftTeX"] == ["Written outside any maths element: $$ x^2 $$"]
    assert lesson["errorOutputs"] == ["ZeroDivisionError"]
    assert result.outside == ["https://example.com/figure.png"]
    assert any("missing.png" in failure for failure in result.failed)
    assert result.reached("01_first") and not result.reached("02_second")
    with pytest.raises(AssertionError):
        check_book(result)
    served = serve_and_crawl(browser, tmp_path, None)  # a missing file over HTTP: a 404
    assert any("missing.png: HTTP 404" in failure for failure in served.failed)
