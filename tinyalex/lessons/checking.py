"""The exercise checker: run a student's function on random cases and say what is wrong.

An ``Exercise`` knows four things: how to draw its random cases (odd shapes, several
seeds), how to call a function on a case, tinyalex's own answer (the ``reference``), and how
to explain a wrong answer (``diagnose``). ``check(name, fn)`` runs them in order:

1. The stub as the notebook gives it -- a function whose own body raises
   ``NotImplementedError`` -- is "not done yet": one friendly line, and the lesson goes on
   with tinyalex's own function. Anything else is an answer and is checked: a function that
   returns None is told that it returns nothing, an in-place update that changed nothing is
   diagnosed like any other wrong answer.
2. A function that raises an exception gets the exception and the case that raised it.
3. Every output of every case is compared with the reference. The first difference is
   reported with the case, the output's name (``out``, ``dx``, ``dw`` ...), its shape, where
   the largest difference is, and -- from the exercise's ``diagnose`` -- what the mistake
   probably is ("the gradient must add, not overwrite", "your LRN uses alpha/n", ...).
4. A function that changes its inputs in place is caught as well.

Cases use float64, and a result counts as right when every element is within
``1e-6 + 1e-5 |expected|`` of tinyalex's (float32 answers pass too).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ATOL, RTOL = 1e-6, 1e-5  # |got - want| <= ATOL + RTOL * |want|, elementwise

PASS, FAIL, NOT_DONE = "passed", "failed", "not done"


@dataclass
class Case:
    """One random input: positional ``args``, keyword ``kwargs`` and a readable ``label``."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    extra: dict = field(default_factory=dict)  # anything a diagnosis needs (e.g. the rng seed)


@dataclass
class Exercise:
    """A "your turn" exercise of a lesson; see the module docstring for how it is checked.

    name: what ``check`` and ``show_solution`` are called with.  lesson: the lesson number.
    task: one line saying what to write.  signature: the function line the student starts from.
    cases(): the random Cases.  outputs: the names of what the function returns, in order
        (one name: the function returns a single value).
    reference: tinyalex's own answer with the exercise's signature; reference_name: where the
        student can read it.  solution: the readable answer ``show_solution`` prints.
    diagnose(case, got, want): a sentence explaining a wrong answer, or None (got and want
        are dicts {output name: array}).  call: how a case is passed to a function (default:
        fn(*args, **kwargs)); it may wrap the arguments (e.g. a fresh random generator).
    hint: one or two sentences for ``hint(name)``: the next step, never the answer.
    answers: tinyalex's functions whose code is an answer (the textbook layer a wrapper
        reference calls, ...): a notebook prints them only after the exercise.
    """

    name: str
    lesson: int
    task: str
    signature: str
    cases: Callable[[], list[Case]]
    outputs: tuple[str, ...]
    reference: Callable
    reference_name: str
    solution: Callable
    diagnose: Callable | None = None
    call: Callable | None = None
    hint: str = ""
    atol: float = ATOL
    rtol: float = RTOL
    answers: tuple[Callable, ...] = ()

    def call_on(self, fn, case: Case):
        """fn's result on a case, as it returned it."""
        return self.call(fn, case) if self.call else fn(*case.args, **case.kwargs)

    def run(self, fn, case: Case) -> dict:
        """{output name: value} of fn on a case (values as NumPy arrays or scalars)."""
        return self.name_outputs(self.call_on(fn, case))

    def name_outputs(self, result) -> dict:
        if len(self.outputs) == 1:
            return {self.outputs[0]: result}
        if not isinstance(result, (tuple, list)) or len(result) != len(self.outputs):
            count = len(result) if isinstance(result, (tuple, list)) else 1
            raise _WrongResult(f"it should return {len(self.outputs)} values "
                               f"({', '.join(self.outputs)}), it returned {count}")
        return dict(zip(self.outputs, result, strict=True))


class _WrongResult(Exception):
    """Raised inside a check when the result has the wrong structure."""


@dataclass
class CheckResult:
    """What ``check`` found: status (passed / failed / not done), the message it printed,
    and the function the lesson should go on with (the student's when it passed)."""

    status: str
    message: str
    function: Callable
    case: Case | None = None


@dataclass(frozen=True)
class Lesson:
    """A lesson of the course: its notebook in ``notebooks/`` and its module
    ``tinyalex.lessons.lesson<file without .ipynb>``, which holds its exercises."""

    number: int
    file: str  # in notebooks/
    title: str
    sections: tuple[str, ...]  # the paper's sections it covers, cited in its first cell
    summary: str  # one line for the README


REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    if exercise.name in REGISTRY:
        raise ValueError(f"exercise {exercise.name!r} is registered twice")
    REGISTRY[exercise.name] = exercise
    return exercise


def get_exercise(name: str) -> Exercise:
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"no exercise named {name!r}; the exercises are: {known}")
    return REGISTRY[name]


# ---- comparing arrays -----------------------------------------------------------------------

def as_array(value) -> np.ndarray | None:
    """value as a NumPy array (CuPy arrays are brought to the host), or None if not numeric."""
    if hasattr(value, "get") and not isinstance(value, np.ndarray):
        value = value.get()  # a CuPy array
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001  (anything that is not array-like)
        return None
    return array if array.dtype.kind in "biuf" else None


def close(got, want, atol: float = ATOL, rtol: float = RTOL) -> bool:
    """Same shape and every element within atol + rtol |want|."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False
    return bool(np.all(np.abs(got - want) <= atol + rtol * np.abs(want)))


def where_it_differs(got, want) -> str:
    """'max |difference| 0.31 at [0, 2, 1, 3] (yours 0.5, tinyalex's 0.19); 12 of 60 elements
    differ'."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    diff = np.abs(got - want)
    bad = diff > ATOL + RTOL * np.abs(want)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    at = f" at [{', '.join(str(int(i)) for i in index)}]" if index else ""
    return (f"max |difference| {diff.max():.3g}{at} (yours {got[index]:.4g}, tinyalex's "
            f"{want[index]:.4g}); {int(bad.sum())} of {bad.size} elements differ")


def compare(exercise: Exercise, got: dict, want: dict) -> tuple[str, str] | None:
    """(output name, what is wrong with it) for the first output that differs, else None."""
    for name in exercise.outputs:
        if want[name] is None or got[name] is None:
            if want[name] is None and got[name] is None:
                continue
            if want[name] is None:
                return name, f"{name} is {got[name]!r}, expected None"
            return name, f"{name} is None, expected a value (is a `return` missing?)"
        g, w = as_array(got[name]), as_array(want[name])
        if g is None:
            return name, f"{name} is not an array of numbers (got {type(got[name]).__name__})"
        if g.shape != w.shape:
            return name, f"{name} has shape {g.shape}, expected {w.shape}"
        if not np.all(np.isfinite(g)) and np.all(np.isfinite(w)):
            return name, f"{name} has NaN or inf values (an overflow? a division by zero?)"
        if not close(g, w, exercise.atol, exercise.rtol):
            return name, f"{name} differs: {where_it_differs(g, w)}"
    return None


def matches(got, want) -> bool:
    """Whether an output equals a given (wrong) answer: used to recognise classic mistakes."""
    g, w = as_array(got), as_array(want)
    return g is not None and w is not None and close(g, w)


# ---- the diagnosis kit: what every lesson's diagnoses are written with -------------------------

def randn(shape, seed, scale=1.0):
    """float64 standard normal numbers of a shape, from a seed."""
    return np.random.default_rng(seed).standard_normal(shape) * scale

def dims(a) -> str:
    """'2x3x7x5' for an array or a shape tuple."""
    shape = a if isinstance(a, tuple) else np.shape(a)
    return "x".join(str(s) for s in shape)

def first_match(got, candidates) -> str | None:
    """The message of the first (message, wrong answer) pair that got equals."""
    for message, wrong in candidates:
        if matches(got, wrong):
            return message
    return None

def differs_only_where(got, want, mask) -> bool:
    """Whether every element where got and want differ has mask True (and some differ)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False
    bad = ~np.isclose(got, want, rtol=1e-5, atol=1e-6)
    return bool(bad.any()) and bool(np.all(np.broadcast_to(mask, bad.shape)[bad]))


def rebinding(before: dict, got: dict, want: dict) -> str | None:
    """The diagnosis of an in-place update that rebinds a name instead of changing its array.

    before, got, want: {name: array} for the two arrays the update must change, the weights
    first and the velocity second (e.g. {"w": ..., "v": ...}), as they were, as the caller
    sees them after the student's update, and as they should be. ``v = ...`` or
    ``w = w + v`` make new arrays bound to local names: the caller's arrays stay as they were.
    Returns None when both changed.
    """
    w, v = before
    w_same = np.array_equal(np.asarray(got[w]), np.asarray(before[w]))
    v_same = np.array_equal(np.asarray(got[v]), np.asarray(before[v]))
    if w_same and v_same:
        return (f"neither {w} nor {v} changed: `{v} = ...` and `{w} = {w} + ...` make new "
                "arrays bound to local names, which the caller (the optimiser that owns the "
                f"arrays) never sees. Change the arrays in place: {v} *= ...; {v} -= ...; "
                f"{w} += ... (or {v}[...] = ..., {w}[...] = ...)")
    if w_same:
        right = "is right" if matches(got[v], want[v]) else "changed"
        return (f"{v} {right}, but {w} did not change: `{w} = {w} + ...` makes a new array bound "
                f"to the local name; write {w} += ... (or {w}[...] = ...) to change the "
                "caller's array")
    if v_same:
        return (f"{w} changed, but {v} did not: `{v} = ...` rebinds the local name, so the "
                f"optimiser's {v} never remembers this step; update it in place ({v} *= ...; "
                f"{v} -= ..., or {v}[...] = ...)")
    return None


def answer_lines(exercise: Exercise) -> list[list[str]]:
    """The code of every function that answers ``exercise`` (its solution, its reference, its
    ``answers``), one list per function: the stripped lines of its body, without the
    docstring, comments and short lines. What a page must not show before the exercise."""
    found = []
    for fn in (exercise.solution, exercise.reference, *exercise.answers):
        try:
            source = textwrap.dedent(inspect.getsource(fn))
        except (TypeError, OSError):  # a builtin or a lambda without a file
            continue
        node = ast.parse(source).body[0]
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue  # a lambda assigned in a call
        body = node.body[1:] if ast.get_docstring(node) else node.body
        lines = source.splitlines()[body[0].lineno - 1 : node.end_lineno]
        code = [line.split("  #")[0].strip() for line in lines]
        found.append([line for line in code if len(line) >= 10 and not line.startswith("#")])
    return [lines for lines in found if lines]


# ---- the check ------------------------------------------------------------------------------

def _is_the_stub(err: NotImplementedError, fn) -> bool:
    """Whether ``err`` was raised by ``fn``'s own body (the notebook's stub), not by something
    it called."""
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code is getattr(fn, "__code__", None)


def _returned_nothing(result) -> bool:
    """Whether a result is None (or all None): a ``return`` is missing, unless None is one of
    tinyalex's answers. (An in-place exercise's ``call`` returns the arrays it changed.)"""
    return result is None or (isinstance(result, tuple) and all(r is None for r in result))


def _snapshot(case: Case) -> list:
    return [np.array(a, copy=True) if isinstance(a, np.ndarray) else None for a in case.args]


def _changed_input(case: Case, before: list) -> int | None:
    for i, (a, saved) in enumerate(zip(case.args, before, strict=True)):
        if saved is not None and not np.array_equal(a, saved, equal_nan=True):
            return i
    return None


def run_check(name: str, fn: Callable | None) -> CheckResult:
    """Check ``fn`` against exercise ``name``; print nothing, return a CheckResult."""
    exercise = get_exercise(name)
    fallback = exercise.reference
    own = f"tinyalex's own ({exercise.reference_name})"
    not_done = CheckResult(NOT_DONE, (
        f"{name}: not done yet -- the lesson goes on with {own}. Fill in the function and "
        f"run this cell again; hint(\"{name}\") helps, show_solution(\"{name}\") shows an "
        "answer."), fallback)
    if fn is None:
        return not_done
    cases = exercise.cases()
    for number, case in enumerate(cases, start=1):
        where = f"case {number} of {len(cases)} ({case.label})"
        before = _snapshot(case)
        try:
            raw = exercise.call_on(fn, case)
            if _returned_nothing(raw) and not any(
                    _returned_nothing(exercise.call_on(exercise.reference, c)) for c in cases):
                raise _WrongResult("it returned None (is a `return` missing? it should "
                                   f"return {', '.join(exercise.outputs)})")
            got = exercise.name_outputs(raw)
        except NotImplementedError as err:
            if _is_the_stub(err, fn):
                return not_done
            return CheckResult(FAIL, f"{name}: your function raised NotImplementedError from "
                               f"something it called, on {where}. The lesson goes on with "
                               f"{own}.", fallback, case)
        except _WrongResult as err:
            return CheckResult(FAIL, f"{name}: wrong result on {where}: {err}. The lesson goes "
                               f"on with {own}.", fallback, case)
        except Exception as err:  # noqa: BLE001  (any mistake of the student's is reported)
            return CheckResult(FAIL, f"{name}: your function raised {type(err).__name__}: "
                               f"{err} on {where}. The lesson goes on with {own}.",
                               fallback, case)
        changed = _changed_input(case, before)
        want = exercise.run(exercise.reference, case)
        problem = compare(exercise, got, want)
        if problem is None and changed is not None:
            problem = ("input", f"your function changed its argument {changed} in place; "
                       "a layer must leave its inputs as they were (copy first, or write "
                       "into a new array)")
        if problem is not None:
            output, what = problem
            why = exercise.diagnose(case, got, want) if exercise.diagnose else None
            message = f"{name}: wrong on {where}: {what}."
            if why:
                message += f"\n  Probably: {why}"
            message += f"\n  The lesson goes on with {own}."
            return CheckResult(FAIL, message, fallback, case)
    return CheckResult(PASS, f"{name}: right on all {len(cases)} cases ({cases[0].label}; "
                       "...). Well done: the lesson goes on with yours.", fn)


def check(name: str, fn: Callable | None) -> Callable:
    """Check your function for exercise ``name``; print what was found.

    Returns the function the lesson should go on with: yours when it is right, tinyalex's
    own when it is not done yet or wrong, so a notebook always runs on to the end.
    """
    result = run_check(name, fn)
    mark = {PASS: "PASS", FAIL: "FAIL", NOT_DONE: "TODO"}[result.status]
    print(f"[{mark}] {result.message}")
    return result.function


def show_solution(name: str) -> None:
    """Print one answer to exercise ``name`` (its source code)."""
    exercise = get_exercise(name)
    source = textwrap.dedent(inspect.getsource(exercise.solution))
    print(f"# One answer to {name!r} (lesson {exercise.lesson}): {exercise.task}\n")
    print(source.rstrip())


def show_code(obj) -> None:
    """Print the source of a tinyalex function or module, with the file it lives in."""
    import tinyalex

    path = inspect.getsourcefile(obj)
    root = inspect.getsourcefile(tinyalex).rsplit("tinyalex", 1)[0] if path else ""
    where = path[len(root):] if path and path.startswith(root) else path
    print(f"# {where}\n")
    print(textwrap.dedent(inspect.getsource(obj)).rstrip())


def hint(name: str) -> None:
    """Print a hint for exercise ``name``."""
    exercise = get_exercise(name)
    print(f"{name}: {exercise.hint or exercise.task}")


def exercise_table(lesson: int | None = None) -> str:
    """Every exercise (of one lesson): name, lesson, what to write."""
    rows = [e for e in REGISTRY.values() if lesson is None or e.lesson == lesson]
    rows.sort(key=lambda e: e.lesson)
    width = max(len(e.name) for e in rows)
    return "\n".join(f"lesson {e.lesson:>2}  {e.name:<{width}}  {e.task}" for e in rows)
