"""The package's import graph, read from the source: no import circles, and every import goes
down the declared layer order (or sideways within a layer).

Every import statement counts, those inside functions too, and so does
``importlib.import_module`` with a literal name: deferring an import does not make a circle
go away. The order, bottom first (a module may import from its own layer and those below):
"""

from __future__ import annotations

import ast
import fnmatch
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinyalex"

LAYERS = (
    # arrays and devices, files, the dropout noise, threads set before NumPy loads
    ("base", ("tinyalex", "tinyalex.backend", "tinyalex.storage", "tinyalex.noise",
              "tinyalex.gradcheck", "tinyalex.threads", "tinyalex.distributed.placement")),
    # the textbook: one file per mechanism of the paper
    ("layers", ("tinyalex.layers", "tinyalex.layers.*")),
    # the same functions for speed: the CPU path, the CUDA kernels and their emulator
    ("implementations", ("tinyalex.fast", "tinyalex.fast.*", "tinyalex.cuda", "tinyalex.cuda.*")),
    # the network, the optimiser, checkpoints, data, what a network gets right, the choice
    # of implementation
    ("model", ("tinyalex.impl", "tinyalex.model", "tinyalex.optim", "tinyalex.checkpoint",
               "tinyalex.data", "tinyalex.data.*", "tinyalex.metrics")),
    # one-line errors and what the programs share
    ("cli", ("tinyalex.cli",)),
    # the training run as a library class
    ("run", ("tinyalex.run", "tinyalex.runfolder", "tinyalex.dead_network")),
    # the run on several processes
    ("distributed", ("tinyalex.distributed", "tinyalex.distributed.*")),
    # the command-line programs
    ("programs", ("tinyalex.train", "tinyalex.evaluate", "tinyalex.predict", "tinyalex.viz",
                  "tinyalex.cache", "tinyalex.__main__", "tinyalex.distributed.__main__")),
    # the course: what the notebooks import
    ("course", ("tinyalex.lessons", "tinyalex.lessons.*")),
)


def module_names(root: Path) -> dict[str, Path]:
    """{dotted name: file} of every module under ``root`` (a package folder)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def imported(node: ast.AST, modules) -> list[str]:
    """The dotted names one AST node imports (with importlib too): for ``from M import x``,
    the module M.x when it is one, else M (the parent packages Python loads first are not
    counted: every submodule import loads them)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                else node.module for a in node.names]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [node.args[0].value]
    return []


def import_graph(root: Path) -> dict[str, set[str]]:
    """{module: modules of the package it imports}, from every import in its source."""
    modules = module_names(root)
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in imported(node, modules):
                # `import pkg.mod.thing` or a name outside the package: its nearest module
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(name: str) -> int:
    """The position of ``name`` in LAYERS (0 = bottom); a KeyError names an unplaced module."""
    for position, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            # the most specific layer wins (distributed.placement is base, the rest of
            # distributed is its own layer): an exact name beats a pattern
            exact = [i for i, (_, ps) in enumerate(LAYERS) if name in ps]
            return exact[0] if exact else position
    raise KeyError(f"{name} is in no layer of LAYERS: add it where it belongs")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a layer above the importing module's, as 'a (layer) -> b (layer)'."""
    bad = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer_of(target) > layer_of(name):
                bad.append(f"{name} ({LAYERS[layer_of(name)][0]}) -> {target} "
                           f"({LAYERS[layer_of(target)][0]})")
    return bad


def test_the_package_has_no_import_circle():
    assert circles(import_graph(PACKAGE)) == []


def test_every_module_is_in_a_layer():
    for name in import_graph(PACKAGE):
        layer_of(name)


def test_imports_go_down_the_layer_order():
    assert upward_imports(import_graph(PACKAGE)) == []


@pytest.fixture
def planted(tmp_path):
    """A copy of the package in which the textbook's conv layer imports the training run,
    inside a function (a deferred import)."""
    copy = tmp_path / "tinyalex"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    conv = copy / "layers" / "conv.py"
    conv.write_text(conv.read_text() + "\n\ndef _planted():\n    from tinyalex.run import Run\n"
                    "    return Run\n")
    return copy


def test_a_planted_circle_is_found(planted):
    found = circles(import_graph(planted))
    assert any({"tinyalex.layers.conv", "tinyalex.run"} <= set(c) for c in found), found
    assert "tinyalex.layers.conv (layers) -> tinyalex.run (run)" in upward_imports(
        import_graph(planted))


def test_a_circle_hidden_behind_importlib_is_found(tmp_path, planted):
    model = planted / "model.py"
    model.write_text(model.read_text() + "\n\ndef _planted():\n    import importlib\n\n"
                     "    return importlib.import_module(\"tinyalex.train\")\n")
    assert "tinyalex.model (model) -> tinyalex.train (programs)" in upward_imports(
        import_graph(planted))
