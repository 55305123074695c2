"""Lesson 9's helpers: read a kernel of ``kernels/*.cu``, plant a bug in a copy, catch it.

    print(numbered(kernel_text("maxpool.cu", "maxpool_forward_kernel")))  # the kernel, numbered
    buggy = plant(source, "index >= total", "index > total")             # a copy, one change
    report = run_under_asan(buggy, "maxpool_bug.cu", SCRIPT)              # a fresh process
    print(asan_summary(report.stderr))                                    # what ASan said

Nothing here writes into the working folder: the planted source and the script that launches
it live in a temporary folder, removed afterwards; the compiled libraries go to the
emulator's cache (``tinyalex.cuda.emulator.cache_dir``).
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

from tinyalex.cuda.emulator import _body_end
from tinyalex.cuda.sources import KERNEL_DECLARATION, kernel_source


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

    from tinyalex import layers
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
