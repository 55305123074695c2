"""The course: the lessons in reading order, each a notebook in ``notebooks/`` and a module here.

Lesson N's notebook ``notebooks/NN_name.ipynb`` has its module ``lessonNN_name.py`` in this
package: its exercises (cases, diagnoses, answers, registration), its own helpers and the
figures only it draws, and ``LESSON``, what the course says about it. ``COURSE`` is built
from those modules: a new lesson is one notebook, one module and one line below
(``tests/test_lessons.py`` checks that every lesson module on disk is listed).

``tests/test_notebooks.py`` runs every notebook on a Jupyter kernel and checks each lesson
listed here (prose before code, the paper's sections cited in its title cell);
``tests/test_lessons.py`` that each has at least three exercises, all checked in its
notebook; the README lists the same lessons.
"""

from __future__ import annotations

from tinyalex.lessons import (  # importing a lesson module registers its exercises
    lesson01_tour,
    lesson02_convolution,
    lesson03_relu_vs_tanh,
    lesson04_local_response_normalization,
    lesson05_overlapping_pooling,
    lesson06_dropout_and_the_classifier,
    lesson07_data,
    lesson08_learning,
    lesson09_cuda_kernels,
    lesson10_what_it_learned,
    lesson11_real_images,
    lesson12_paper_and_code,
)
from tinyalex.lessons.checking import Lesson

MODULES = (lesson01_tour, lesson02_convolution, lesson03_relu_vs_tanh,
           lesson04_local_response_normalization, lesson05_overlapping_pooling,
           lesson06_dropout_and_the_classifier, lesson07_data, lesson08_learning,
           lesson09_cuda_kernels, lesson10_what_it_learned, lesson11_real_images,
           lesson12_paper_and_code)

COURSE: tuple[Lesson, ...] = tuple(module.LESSON for module in MODULES)


def module_name(lesson: Lesson) -> str:
    """The module of a lesson: 'lesson' + its notebook's name without '.ipynb'."""
    return "lesson" + lesson.file.removesuffix(".ipynb")


__all__ = ["COURSE", "MODULES", "Lesson", "module_name"]
