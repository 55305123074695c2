"""Lesson 9, the CUDA kernels (``notebooks/09_cuda_kernels.ipynb``): read, plant a bug, catch it.

    print(numbered(*kernel_text("maxpool.cu", "maxpool_forward_kernel")))  # numbered
    buggy = plant(source, "index >= total", "index > total")              # a copy, one change
    report = run_under_asan(buggy, "maxpool_bug.cu", SCRIPT)               # a fresh process
    print(asan_summary(report.stderr, "maxpool_bug.cu"))                   # what ASan said

Nothing here writes into the working folder: the planted source and the script that launches
it live in a temporary folder, removed afterwards; the compiled libraries go to the
emulator's cache (``tinyalex.cuda.emulator.cache_dir``). Exercises: a thread's output
coordinates, the number of blocks, the pooling windows that hold a row (maxpool.cu's index
arithmetic). Figure: which thread of which block computes each output.
"""


from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tinyalex import layers
from tinyalex.cuda.emulator import _body_end
from tinyalex.cuda.sources import KERNEL_DECLARATION, kernel_source
from tinyalex.lessons import plots
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    first_match,
    matches,
    register,
)

LESSON = Lesson(
    9, "09_cuda_kernels.ipynb", "The CUDA kernels", ("3.2", "3.4"),
    "max-pooling's kernel read line by line, run on the CPU emulator against NumPy, two "
    "planted bugs and AddressSanitizer, the real launch on a GPU")


# ---- the lesson's helpers ------------------------------------------------------------------

def compiler_problem() -> str | None:
    """None when the emulator's C++ compiler runs; else one line saying what is missing and
    how to get it (the lesson then skips what needs it, and says so)."""
    from tinyalex.cuda import emulator

    try:
        subprocess.run([emulator.CXX, "--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return (f"No C++ compiler here: the CPU emulator needs {emulator.CXX!r} (g++ with "
                "C++20; `sudo apt-get install g++`, or set $CXX)")
    return None


def skip(what: str) -> None:
    """Say that a step of the lesson is skipped because there is no C++ compiler."""
    print(f"(skipped, no C++ compiler: {what})")


def kernel_text(filename: str, kernel: str) -> tuple[str, int]:
    """(the source of one kernel, from its declaration to its closing brace; its first line
    number in the file)."""
    source = kernel_source(filename)
    for match in KERNEL_DECLARATION.finditer(source):
        if match.group(3) == kernel:
            end = _body_end(source, source.index("{", match.end()))
            return source[match.start() : end], source.count("\n", 0, match.start()) + 1
    raise KeyError(f"{filename} has no kernel {kernel!r}")


def numbered(text: str, first: int = 1) -> str:
    """The text with line numbers, starting at ``first``."""
    return "\n".join(f"{first + k:4d}  {line}" for k, line in enumerate(text.splitlines()))


def plant(source: str, old: str, new: str, after: str = "") -> str:
    """A copy of source with ``old`` replaced by ``new``: its first occurrence after the text
    ``after`` (e.g. a kernel's name), which must be unique, as ``old`` must be when no
    ``after`` is given."""
    start = 0
    if after:
        if source.count(after) != 1:
            raise ValueError(f"{after!r} occurs {source.count(after)} times in the source")
        start = source.index(after)
    elif source.count(old) != 1:
        raise ValueError(f"{old!r} occurs {source.count(old)} times in the source; say where "
                         "with after=")
    at = source.find(old, start)
    if at < 0:
        raise ValueError(f"{old!r} is not in the source" + (f" after {after!r}" if after else ""))
    return source[:at] + new + source[at + len(old):]


def line_of(source: str, text: str) -> int:
    """The 1-based number of the first line of source that contains text."""
    for number, line in enumerate(source.splitlines(), start=1):
        if text in line:
            return number
    raise ValueError(f"{text!r} is not in the source")


def run_under_asan(source: str, name: str, script: str, timeout: float = 300,
                   ) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python under the emulator's debug mode (AddressSanitizer).

    The kernel source is written to ``<tmp>/<name>`` and the script to ``<tmp>/run.py``; the
    script finds the source's path in ``sys.argv[1]``. The process is started as
    ``python -m tinyalex.cuda.emulator --debug -- python run.py <source>``, the way a reader
    would debug a kernel by hand: the ASan runtime must be loaded before Python starts.
    """
    with tempfile.TemporaryDirectory(prefix="tinyalex-lesson9-") as folder:
        kernel_path = Path(folder) / name
        kernel_path.write_text(source)
        script_path = Path(folder) / "run.py"
        script_path.write_text(script)
        command = [sys.executable, "-m", "tinyalex.cuda.emulator", "--debug", "--",
                   sys.executable, str(script_path), str(kernel_path)]
        return subprocess.run(command, cwd=folder, capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ))


def asan_summary(stderr: str, name: str) -> str:
    """The lines of an AddressSanitizer report that a reader needs: what, where, which line."""
    keep = []
    for line in stderr.splitlines():
        if ("ERROR: AddressSanitizer" in line or re.match(r"\s*(READ|WRITE) of size", line)
                or name in line or "is located" in line or line.startswith("SUMMARY")):
            line = re.sub(r"0x[0-9a-f]{6,}", "0x...", line.strip())
            keep.append(re.sub(r"\S*/" + re.escape(name), name, line))  # no temporary folder
    return "\n".join(keep) if keep else "(no AddressSanitizer report)"


def gpu_maxpool_timing(shape=(128, 96, 55, 55), size: int = 3, stride: int = 2,
                       repeats: int = 20) -> dict:
    """Max-pool forward of ``shape`` on the GPU (kernels/maxpool.cu through CuPy) and on the CPU
    (the textbook layer): {"gpu_ms", "cpu_ms", "max_difference"}. Needs a working GPU."""
    import cupy

    from tinyalex.cuda import layers as cuda_layers

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x_gpu = cupy.asarray(x)
    cuda_layers.maxpool_forward(x_gpu, size, stride)  # compile and warm up
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeats):
        out_gpu, _ = cuda_layers.maxpool_forward(x_gpu, size, stride)
    stop.record()
    stop.synchronize()
    gpu_ms = cupy.cuda.get_elapsed_time(start, stop) / repeats
    begin = time.perf_counter()
    out_cpu, _ = layers.maxpool_forward(x, size=size, stride=stride)
    cpu_ms = 1000 * (time.perf_counter() - begin)
    return {"gpu_ms": gpu_ms, "cpu_ms": cpu_ms,
            "max_difference": float(np.abs(cupy.asnumpy(out_gpu) - out_cpu).max())}


# ---- the lesson's figures ------------------------------------------------------------------

def draw_thread_map(NC: int, OH: int, OW: int, block: int):
    """Which thread of which block computes each output of (NC, OH, OW): one panel per plane.

    Each cell shows its flat thread index (blockIdx.x * blockDim.x + threadIdx.x) and is
    coloured by its block; threads past the last output are counted in the title.
    """
    plt = plots.pyplot()
    total = NC * OH * OW
    blocks = -(-total // block)
    index = np.arange(total).reshape(NC, OH, OW)
    fig, axes = plt.subplots(1, NC, figsize=(1.0 + 0.55 * OW * NC, 0.55 * OH + 2.4),
                             squeeze=False)
    for nc, ax in enumerate(axes[0]):
        ax.imshow(index[nc] // block, cmap="tab10", vmin=0, vmax=9, aspect="equal")
        for (i, j), value in np.ndenumerate(index[nc]):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
        ax.set(title=f"plane nc = {nc}", xlabel="ow", ylabel="oh" if nc == 0 else "")
        ax.set_xticks(range(OW))
        ax.set_yticks(range(OH))
    from matplotlib.patches import Patch

    cmap = plt.get_cmap("tab10")
    fig.legend(handles=[Patch(color=cmap(b % 10), label=f"block {b}") for b in range(blocks)],
               loc="lower center", ncol=min(blocks, 8), fontsize=8, title="blockIdx.x",
               title_fontsize=8)
    fig.suptitle(f"{total} outputs, {blocks} blocks of {block} threads (colour = blockIdx.x);\n"
                 f"{blocks * block - total} threads find nothing to do")
    fig.tight_layout(rect=(0, 0.14, 1, 1))  # room for the legend below
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _coords_cases():
    values = [(2 * 3, 4, 5), (1, 7, 3), (5, 1, 6), (4, 6, 6)]
    return [Case((np.arange(nc * oh * ow), oh, ow), label=f"N*C={nc}, OH={oh}, OW={ow}")
            for nc, oh, ow in values]


def _own_thread_coords(index, OH, OW):
    # np.unravel_index is the definition of "row-major order"
    return np.unravel_index(index, (int(index.max()) // (OH * OW) + 1, OH, OW))


def _diagnose_coords(case, got, want):
    index, OH, OW = case.args
    nc, oh, ow = (np.asarray(got[k]) for k in ("nc", "oh", "ow"))
    if matches(ow, index % OH) and OH != OW:
        return "ow is index % OW (the width): the last axis varies fastest"
    if matches(oh, index // OW) and len(index) > OH * OW:
        return ("oh is (index // OW) % OH: without the % OH it keeps counting into the next "
                "(n, c) plane")
    if matches(nc, index // OW) and OH > 1:
        return "nc is index // (OW * OH): one (n, c) plane holds OH * OW outputs"
    if matches(oh, index % OH) and matches(ow, index // OH % OW):
        return ("you made oh vary fastest (column-major); in row-major (N, C, OH, OW) memory the "
                "LAST axis, ow, varies fastest")
    return None


def thread_coords(index, OH, OW):
    # The flat index runs over (nc, oh, ow) in row-major order: ow fastest.
    ow = index % OW
    oh = (index // OW) % OH
    nc = index // (OW * OH)
    return nc, oh, ow


register(Exercise(
    name="thread_coords", lesson=9,
    task="which output (nc, oh, ow) a thread with a flat index computes (maxpool.cu's first lines)",
    signature="def thread_coords(index, OH, OW):",
    cases=_coords_cases, outputs=("nc", "oh", "ow"),
    reference=_own_thread_coords, reference_name="np.unravel_index(index, (NC, OH, OW))",
    solution=thread_coords, diagnose=_diagnose_coords,
    hint="The flat index counts the outputs in row-major (NC, OH, OW) order: the last axis, ow, "
         "changes fastest. Which operation gives the position inside a row of OW outputs, and "
         "which the number of whole rows before it? Then the same one level up."))


def _blocks_cases():
    values = [(1000, 256), (1024, 256), (1, 256), (255, 256), (257, 256), (100000, 128),
              (9216, 1024)]
    return [Case(v, label=f"{v[0]} elements, {v[1]} threads a block") for v in values]


def _own_grid_blocks(total, block):
    return -(-total // block)


def _diagnose_blocks(case, got, want):
    total, block = case.args
    value = got["blocks"]
    if isinstance(value, float) and not float(value).is_integer():
        return "a number of blocks is a whole number: round up, in integers"
    return first_match(value, [
        ("total // block rounds DOWN: the last total % block elements get no thread (the "
         "launch must cover every element; the kernel's `if (index >= total) return;` "
         "idles the extra threads)", total // block),
        ("total // block + 1 launches a whole useless block when total is a multiple of "
         "block: use (total + block - 1) // block", total // block + 1),
    ])


def grid_blocks(total, block):
    # Enough blocks for one thread per element: ceil(total / block), in integers.
    return (total + block - 1) // block


register(Exercise(
    name="grid_blocks", lesson=9,
    task="how many blocks of `block` threads give one thread to each of `total` elements",
    signature="def grid_blocks(total, block):",
    cases=_blocks_cases, outputs=("blocks",),
    reference=_own_grid_blocks, reference_name="tinyalex.cuda.ops (the launchers)",
    solution=grid_blocks, diagnose=_diagnose_blocks,
    hint="total / block is rarely a whole number, and the last, partial block must still be "
         "launched: round up. How do you round a division up with integers only (no float)?"))


def _containing_cases():
    values = [(27, 3, 2), (13, 3, 2), (12, 2, 2), (10, 4, 3), (9, 3, 1), (11, 5, 2)]
    cases = []
    for H, size, stride in values:
        count = (H - size) // stride + 1
        covered = (count - 1) * stride + size  # rows past this are in no window
        cases.append(Case((np.arange(covered), size, stride, count),
                          label=f"{covered} rows, window {size}, stride {stride}"))
    return cases


def _own_windows_containing(h, size, stride, count):
    # by brute force: every window o, and whether it holds row h
    starts = np.arange(count)[None, :] * stride
    holds = (starts <= h[:, None]) & (h[:, None] <= starts + size - 1)  # (rows, windows)
    first = np.argmax(holds, axis=1)
    last = count - 1 - np.argmax(holds[:, ::-1], axis=1)
    return first, last


def _diagnose_containing(case, got, want):
    h, size, stride, count = case.args
    first, last = np.asarray(got["first"]), np.asarray(got["last"])
    if not matches(first, want["first"]):
        if matches(first, np.maximum(0, (h - size) // stride + 1)) or matches(
                first, np.maximum(0, (h - size + 1) // stride)):
            return ("first is a ceiling: the first window o with o*stride + size - 1 >= h is "
                    "ceil((h - size + 1) / stride), i.e. -(-(h - size + 1) // stride); floor "
                    "division rounds the wrong way")
        if np.any(first < 0):
            return "first is clipped at 0: rows near the top are in window 0 first"
        return None
    if np.any(last > count - 1):
        return f"last is clipped at count - 1 = {count - 1}: there is no window past the last"
    if matches(last, np.minimum(count - 1, (h + 1) // stride)):
        return "last is h // stride: the last window starting at or before row h"
    return None


def windows_containing(h, size, stride, count):
    # Window o covers rows o*stride .. o*stride + size - 1; it holds h when
    # o*stride <= h <= o*stride + size - 1, i.e. ceil((h - size + 1) / stride) <= o <= h // stride.
    first = np.maximum(0, -(-(h - size + 1) // stride))  # -(-a // b) is ceil(a / b)
    last = np.minimum(count - 1, h // stride)
    return first, last


register(Exercise(
    name="windows_containing", lesson=9,
    task="the first and last pooling window that holds each row h (maxpool.cu's backward)",
    signature="def windows_containing(h, size, stride, count):",
    cases=_containing_cases, outputs=("first", "last"),
    reference=_own_windows_containing, reference_name="the windows counted one by one",
    solution=windows_containing, diagnose=_diagnose_containing,
    hint="Window o covers rows o*stride .. o*stride + size - 1. Write the two inequalities "
         "that say 'window o holds row h', solve each for o (one gives a floor, the other a "
         "ceiling), then keep o within the windows that exist, 0 .. count - 1."))
