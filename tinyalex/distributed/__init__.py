"""Training on several processes: data parallelism, and the paper's two towers (section 3.2).

    mpiexec -n 2 python -m tinyalex.train --parallel data ...     # N processes, rows of a batch
    mpiexec -n 2 python -m tinyalex.train --parallel towers ...   # 2 processes, half a network each
    python -m tinyalex.distributed --config paper                  # bytes per step, both ways

Files, by concern:

    placement.py      a process's rank, its share of a batch and of the CPU cores (no MPI)
    comm.py           the ranks, MPI (mpi4py) and NCCL (CuPy), control points that keep a
                      failing rank from leaving the others waiting
    parallel_run.py   ParallelRun: tinyalex.run.Run with a communicator (who writes, Ctrl-C)
    launch.py         checks the launch; runs train.py's loop with a parallel Run; stops every
                      rank, with one message from rank 0, when one stops
    data_parallel.py  each rank trains on its rows of every batch; gradients all-reduced
    towers.py         each rank is one tower; activations exchanged into conv3, fc6, fc7, fc8
                      and at the LRN seam
    volume.py         what a step sends in either mode, computed from the network's shapes

Both modes compute the single process's training step (same batches, same augmentation,
same dropout masks: ``tinyalex.noise`` draws them by global sample and unit), up to the order
of floating-point additions, and write the single process's checkpoints. Importing this
package loads neither MPI nor NumPy; ``launched_processes`` reads only the environment.
"""

from tinyalex.distributed.placement import launcher, share


def launched_processes() -> int:
    """How many processes mpiexec started with this one (1 without mpiexec)."""
    place = launcher()
    return 1 if place is None else place[1]


def run(args, training) -> int:
    """``python -m tinyalex.train --parallel ...`` on one rank (see ``launch.run``); MPI and
    NumPy load here, not when this package is imported."""
    from tinyalex.distributed.launch import run as run_parallel

    return run_parallel(args, training)


__all__ = ["launched_processes", "launcher", "run", "share"]
