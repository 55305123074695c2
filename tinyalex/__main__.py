"""``python -m tinyalex``: the programs tinyalex installs, and what each one does.

``python -m tinyalex COMMAND [ARGS]`` runs ``python -m tinyalex.COMMAND [ARGS]``.
"""

import importlib
import sys

COMMANDS = (
    ("train", "train AlexNet (the mini preset on the built-in shapes set by default)"),
    ("evaluate", "top-1 / top-5, per-class accuracy and confusion matrix of a checkpoint"),
    ("predict", "classify image files, folders or patterns (text, CSV or JSON)"),
    ("viz", "figures: conv1 kernels (Figure 3), neighbours (Figure 4), feature maps, "
            "confusion matrix, learning curves"),
    ("cache", "list what tinyalex's cache holds, with sizes, and remove it or parts of it"),
)


def main(argv=None) -> int:
    from tinyalex import __version__

    argv = sys.argv[1:] if argv is None else argv
    lines = [f"tinyalex {__version__}: AlexNet (Krizhevsky, Sutskever & Hinton, 2012) from "
             "scratch on NumPy and CuPy", "",
             "commands (each has --help; python -m tinyalex COMMAND ... runs one too):"]
    width = max(len(name) for name, _ in COMMANDS)
    for name, text in COMMANDS:
        lines.append(f"  python -m tinyalex.{name:<{width}}  {text}")
    lines += ["", "installed as tinyalex-train, tinyalex-evaluate, tinyalex-predict, "
                  "tinyalex-viz, tinyalex-cache"]
    known = {name for name, _ in COMMANDS}
    if argv and argv[0] not in ("-h", "--help"):
        if argv[0] not in known:
            print(f"error: unknown command {argv[0]!r}: use one of "
                  f"{', '.join(name for name, _ in COMMANDS)}", file=sys.stderr)
            return 2
        from tinyalex import cli

        return cli.run(importlib.import_module(f"tinyalex.{argv[0]}").main, argv[1:])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
