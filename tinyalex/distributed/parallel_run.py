"""The run of several processes: ``tinyalex.run.Run`` with a communicator (``comm.Comm``).

``DataParallelRun`` (data_parallel.py) and ``TowerRun`` (towers.py) subclass it.
"""

from __future__ import annotations

from tinyalex.distributed.comm import Comm
from tinyalex.run import Run


class ParallelRun(Run):
    """What both parallel runs change in ``tinyalex.run.Run``: who writes, and what the ranks
    agree on.

    Every rank builds the whole single-process state first (``Run.__init__``: data, mean
    image, the network initialised from --seed, the optimiser, or all of it from --resume),
    so every rank starts from the same weights and sees the same batches. Then only rank 0
    writes files (the ranks use the run folder rank 0 named: ``launch.run``); they agree on
    Ctrl-C: ``mpiexec`` passes Ctrl-C to every rank, but they may see it during different
    steps, so "stop after this step" is decided at a control point (``stop_agreed``), by all
    at once.
    """

    def __init__(self, args, resume=None, *, comm: Comm):
        self.comm = comm
        self.is_writer = comm.rank == 0
        super().__init__(args, resume)

    def stop_agreed(self, stop) -> bool:
        """True on every rank when Ctrl-C reached any of them before this control point."""
        agreed = self.comm.agree(stop.requested)
        if agreed:
            stop.requested = True
        return agreed
