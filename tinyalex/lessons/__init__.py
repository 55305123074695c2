"""The lessons' helpers: exercise checkers, solutions, plots, small experiments.

The notebooks in ``notebooks/`` import everything they need from here; nothing but the
student's own exercise cells is written in a notebook.

    check("lrn_backward", my_lrn_backward)   # compare with tinyalex's on random cases
    hint("lrn_backward"); show_solution("lrn_backward")
    show_code(layers.lrn_backward)           # the textbook's own, printed where it is read
    print(exercise_table())                  # every exercise, by lesson

``check`` returns the function the lesson should go on with: the student's when it is
right, tinyalex's own when it is not done yet (it raises NotImplementedError or returns
None) or wrong, so every notebook runs from top to bottom as it is stored.
"""

from tinyalex.lessons import exercises  # noqa: E402, F401  (registers every exercise)
from tinyalex.lessons.checking import (
    REGISTRY,
    CheckResult,
    Exercise,
    check,
    exercise_table,
    get_exercise,
    hint,
    run_check,
    show_code,
    show_solution,
)

__all__ = ["REGISTRY", "CheckResult", "Exercise", "check", "exercise_table", "get_exercise",
           "hint", "run_check", "show_code", "show_solution"]
