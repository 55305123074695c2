"""Where this process sits in a parallel run: its rank, its share of a batch, its CPU cores.

Read from the launcher's environment only -- no MPI, no NumPy -- so that ``tinyalex.threads``
(imported before NumPy) can give each process its cores before OpenBLAS starts its threads,
and so that a launch without mpiexec, or without mpi4py, can be refused in one line.
"""

from __future__ import annotations

import os

# How launchers tell a process its place: (size, rank, local size, local rank) variables.
LAUNCHER_VARIABLES = (
    # MPICH's and Intel MPI's mpiexec (Hydra); Slurm's srun --mpi=pmi2 sets the first two
    ("PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS", "MPI_LOCALRANKID"),
    # Open MPI's mpirun / mpiexec
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
     "OMPI_COMM_WORLD_LOCAL_RANK"),
)


def _place(local: bool) -> tuple[int, int] | None:
    for size_name, rank_name, local_size_name, local_rank_name in LAUNCHER_VARIABLES:
        if size_name in os.environ:
            if local:
                size_name, rank_name = local_size_name, local_rank_name
            try:
                return int(os.environ.get(rank_name, "0")), int(os.environ[size_name])
            except (KeyError, ValueError):
                return None
    return None


def launcher() -> tuple[int, int] | None:
    """(rank, size) that ``mpiexec`` gave this process; None when it was not started by one."""
    return _place(local=False)


def share(count: int, rank: int, size: int) -> tuple[int, int]:
    """[lo, hi): the part of ``count`` items that rank ``rank`` of ``size`` takes.

    Consecutive blocks whose sizes differ by at most one, the larger ones last: 8 rows over 3
    ranks are 0-2, 2-5, 5-8 (2, 3, 3); 1000 classes over 2 towers 0-500, 500-1000.
    """
    return count * rank // size, count * (rank + 1) // size


def share_cores() -> list[int] | None:
    """Pin this process to its share of the machine's cores, when mpiexec started several here.

    Every process would otherwise start one OpenBLAS thread and one ``tinyalex.fast`` thread
    per core, and L processes on one machine would run L times more threads than cores; an
    MPI process waiting for the others also keeps its core busy (MPICH polls). Measured on 2
    cores, mini step, 2 processes: 146 images/s unpinned, 351 pinned. Local rank i of L takes
    the i-th of L consecutive blocks of the cores this process may use (core i mod the count
    when there are more processes than cores). Nothing changes without mpiexec, with one
    process per machine, where the launcher already pinned us (``mpiexec -bind-to core``),
    or where ``TINYALEX_PIN=0``. Returns the cores chosen, or None.
    """
    place = _place(local=True)
    if (place is None or place[1] < 2 or not hasattr(os, "sched_setaffinity")
            or os.environ.get("TINYALEX_PIN", "1") == "0"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < (os.cpu_count() or 0):  # already pinned by the launcher or the user
        return None
    rank, size = place
    if size <= len(allowed):
        lo, hi = share(len(allowed), rank, size)
        mine = allowed[lo:hi]
    else:
        mine = [allowed[rank % len(allowed)]]
    os.sched_setaffinity(0, mine)
    return mine
