"""What the per-lesson checker tests share (tests/test_lessonNN_*.py import it)."""

from tinyalex.lessons import get_exercise, run_check
from tinyalex.lessons.checking import FAIL


def failing(name, fn):
    """The checker's message for a wrong function (asserting that it fails)."""
    result = run_check(name, fn)
    assert result.status == FAIL, f"{name}: the checker passed a wrong function"
    assert result.function is get_exercise(name).reference  # the lesson goes on with tinyalex's
    return result.message
