"""The lessons' helpers: one module per lesson, and what several lessons share.

The notebooks in ``notebooks/`` import everything they need from here; nothing but the
student's own exercise cells is written in a notebook.

    check("lrn_backward", my_lrn_backward)   # compare with tinyalex's on random cases
    hint("lrn_backward"); show_solution("lrn_backward")
    show_code(layers.lrn_backward)           # the textbook's own, printed where it is read
    print(exercise_table())                  # every exercise, by lesson

``check`` returns the function the lesson should go on with: the student's when it is
right, tinyalex's own when it is not done yet (it raises NotImplementedError) or wrong, so
every notebook runs from top to bottom as it is stored.

    lesson01_tour.py ... lesson12_paper_and_code.py
                    one per notebook (same name): the lesson's exercises -- random cases,
                    tinyalex's answer, the classic mistakes, one readable answer -- its own
                    helpers and the figures only it draws
    checking.py     the checker (Exercise, check, run_check, hint, show_solution, show_code)
                    and the diagnosis kit the lessons write their diagnoses with
    course.py       the lessons in reading order, built from the lesson modules
    experiments.py  small AlexNet-shaped nets (ReLU or tanh), training, ablations
    pipeline.py     the paper's input pipeline and training loop, small (lessons 7 and 8)
    images.py       a photograph and the built-in shapes, without a download
    plots.py        the figures several lessons draw
"""

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
from tinyalex.lessons.course import COURSE  # imports every lesson module: registers its exercises

__all__ = ["COURSE", "REGISTRY", "CheckResult", "Exercise", "check", "exercise_table",
           "get_exercise", "hint", "run_check", "show_code", "show_solution"]
