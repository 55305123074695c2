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

    checking.py     the checker: Exercise, check, run_check, hint, show_solution, show_code
    exercises.py    every exercise: random cases, tinyalex's answer, the classic mistakes
    exercises_10_12.py  the same for lessons 10-12
    solutions.py    one readable answer per exercise (what show_solution prints)
    course.py       the lessons in reading order (the notebooks, tested and in the README)
    experiments.py  small AlexNet-shaped nets (ReLU or tanh), training, ablations
    images.py       a photograph and the built-in shapes, without a download
    plots.py        the lessons' figures
    pipeline.py     the paper's input pipeline and training loop, small (lessons 7 and 8)
    kernels.py      read a CUDA kernel, plant a bug in a copy, run it under ASan (lesson 9)
    learned.py      lesson 10: a net trained in seconds, colour share, fc7 neighbours, saliency
    real.py         lesson 11: Fashion-MNIST in memory (the shapes without it), predictions
    paper_code.py   lesson 12: the 2012 code's LRN, layer order and rate history as switches
"""

from tinyalex.lessons import (
    exercises,  # noqa: E402, F401  (registers every exercise)
    exercises_10_12,  # noqa: E402, F401  (lessons 10-12's)
)
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
