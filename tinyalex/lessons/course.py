"""The course: the lessons in reading order, each a notebook in ``notebooks/`` and a module here.

Lesson N's notebook ``notebooks/NN_name.ipynb`` has its module ``lessonNN_name.py`` in this
package: its exercises (cases, diagnoses, answers, registration), its own helpers and the
figures only it draws, and ``LESSON``, what the course says about it. ``COURSE`` is built by
finding those modules, so a new lesson is one notebook and one module.

``tests/test_notebooks.py`` runs every notebook on a Jupyter kernel and checks each lesson
listed here (prose before code, the paper's sections cited in its title cell);
``tests/test_lessons.py`` that each has at least three exercises, all checked in its
notebook; the README lists the same lessons.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

from tinyalex.lessons.checking import Lesson

MODULE_NAME = re.compile(r"lesson(\d\d)_\w+$")  # lesson04_local_response_normalization


def lesson_modules() -> tuple[ModuleType, ...]:
    """Every lesson module of this package, imported (which registers its exercises), in
    lesson order."""
    import tinyalex.lessons as package

    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__)
                   if MODULE_NAME.match(info.name))
    return tuple(importlib.import_module(f"{package.__name__}.{name}") for name in names)


def module_name(lesson: Lesson) -> str:
    """The module of a lesson: 'lesson' + its notebook's name without '.ipynb'."""
    return "lesson" + lesson.file.removesuffix(".ipynb")


COURSE: tuple[Lesson, ...] = tuple(module.LESSON for module in lesson_modules())

__all__ = ["COURSE", "Lesson", "lesson_modules", "module_name"]
