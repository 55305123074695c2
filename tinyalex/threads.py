"""Threads and cores, set before NumPy loads: imported first by tinyalex's programs.

Two settings that must be made before OpenBLAS starts its threads: its idle threads sleep at
once, and a process started by mpiexec keeps to its share of the cores.

OpenBLAS, NumPy's matrix-product library, keeps its worker threads busy-waiting for the
next product for about 2^28 CPU cycles (~0.1 s) after each one. The fast path
(``tinyalex.fast``) alternates products with multi-core array work (im2col, LRN, pooling),
and on a 2-core machine the spinning threads take a core away from that work: the mini
training step ran 1.5x slower. ``OPENBLAS_THREAD_TIMEOUT=4`` (2^4 cycles) means "sleep at
once".

OpenBLAS reads the variable when NumPy first loads it, so this module must be imported
before NumPy: ``python -m tinyalex.train``, ``evaluate``, ``predict``, ``viz`` and the
benchmarks import it first. Importing the library (``import tinyalex``) changes nothing;
in your own program, set the variable yourself before importing NumPy. A value the user
set is kept.

For the same reason -- more busy threads than cores -- a process that ``mpiexec`` started
alongside others on the same machine (``--parallel``) is pinned here to its share of the
cores, before OpenBLAS counts them (``tinyalex.distributed.placement.share_cores``).
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# Several processes started on this machine by mpiexec (python -m tinyalex.train --parallel):
# each keeps to its share of the cores, so that OpenBLAS starts threads for those only.
from tinyalex.distributed.placement import share_cores  # noqa: E402 (no NumPy: see the module)

share_cores()
