"""Start a parallel run under mpiexec; stop all of it, with one message, when any rank stops.

``run(args, training)`` is what ``python -m tinyalex.train --parallel data|towers`` calls on
every rank instead of ``training(args)``:

1. check the launch, before anything else: started by mpiexec, mpi4py importable, 2 ranks
   for the towers -- otherwise one line, ``error: ...``, from rank 0, and exit status 2;
2. ranks other than 0 keep quiet: their standard output goes nowhere, their standard error
   into a small buffer (its last line is sent to rank 0 if the rank stops with an error);
3. on GPUs each rank takes one GPU of its machine (``local rank mod GPU count``) and NCCL
   connects them;
4. ``training(args, Runner)`` runs with ``Runner`` a parallel subclass of
   ``tinyalex.run.Run`` (``DataParallelRun`` or ``TowerRun``), the run folder named by rank
   0 for all;
5. however it ends, the rank reports at a last control point (``comm.Comm``), so that the
   others stop too: if a rank failed, rank 0 prints ``error: rank k of N: ...`` and every
   rank exits with the failing rank's status (2 for bad input, 1 otherwise).
"""

from __future__ import annotations

import collections
import functools
import os
import sys
import time
import traceback

from tinyalex import cli, storage
from tinyalex.checkpoint import CheckpointError
from tinyalex.data import DataError
from tinyalex.distributed.comm import DONE, FAILED, Comm, ParallelStop
from tinyalex.distributed.data_parallel import DataParallelRun
from tinyalex.distributed.placement import launcher
from tinyalex.distributed.towers import TowerRun
from tinyalex.runfolder import default_out

# printed as one line, exit status 2
USER_ERRORS = (cli.UserError, DataError, CheckpointError, storage.NotEnoughRoom)
RUN_ERRORS = (storage.WriteError,)  # printed as one line (the path, cause and fix), exit status 1
ABORT_GRACE = 0.5  # seconds between printing a rank's last words and MPI_Abort


class _Tail:
    """A quiet rank's standard error: kept (the last lines only), not shown."""

    def __init__(self, lines: int = 20):
        self.lines = collections.deque(maxlen=lines)
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        self.lines.extend(line for line in complete if line.strip())
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def last(self) -> str | None:
        return self.lines[-1] if self.lines else None


def quiet() -> None:
    """Silence this process (a rank other than 0): stdout to nowhere, stderr into a _Tail."""
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (open for the life of the process)
    sys.stderr = _Tail()


def check_launch(mode: str | None, place: tuple[int, int] | None) -> None:
    """UserError (one line, exit 2) for a launch that cannot work; see ``connect``."""
    if mode is None:
        raise cli.UserError(f"mpiexec started {place[1]} processes, but without --parallel: "
                            "add --parallel data (or --parallel towers with 2 processes)")
    if place is None:
        raise cli.UserError(f"--parallel {mode} runs several processes: start it with mpiexec, "
                            f"e.g. `mpiexec -n 2 python -m tinyalex.train --parallel {mode} ...`"
                            " (pip install -e \".[mpi]\" brings mpiexec)")
    if mode == "towers" and place[1] != 2:
        raise cli.UserError(f"--parallel towers needs exactly 2 processes (the paper's two "
                            f"GPUs, section 3.2), not {place[1]}: use mpiexec -n 2")


def import_mpi():
    """mpi4py's MPI module (initialising MPI), or a UserError naming the fix."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise cli.UserError(f"--parallel needs mpi4py and an MPI library ({e}): pip install "
                            "-e \".[mpi]\" (mpi4py and the mpich wheel)") from None
    except RuntimeError as e:  # mpi4py installed, but no MPI library it can load
        raise cli.UserError(f"--parallel: mpi4py cannot load an MPI library ({e}): pip install "
                            "mpich, or point mpi4py at your system's MPI") from None
    return MPI


def connect(args) -> Comm:
    """Steps 1 and 2 of the module docstring; returns this rank's Comm.

    What fails here fails alike on every rank (each exits with status 2, rank 0 says why);
    anything that could fail on one rank only comes later, under ``run``'s guard.
    """
    place = launcher()
    if place is not None and place[0] > 0:
        quiet()
        args.progress = False
    check_launch(args.parallel, place)
    MPI = import_mpi()
    world = MPI.COMM_WORLD
    check_launch(args.parallel, (world.Get_rank(), world.Get_size()))  # the launcher agrees?
    return Comm(world)


def choose_device(comm: Comm, args) -> None:
    """Step 3: the device; on GPUs, this rank's GPU (local rank mod count) and NCCL."""
    from tinyalex.backend import SettingError, resolve_device

    try:
        comm.device = resolve_device(args.device)
    except SettingError as e:
        raise cli.UserError(str(e)) from None
    if comm.device == "gpu":
        import cupy

        local_rank = comm.world.Split_type(comm.MPI.COMM_TYPE_SHARED).Get_rank()
        cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount()).use()
        with comm.together("connecting NCCL"):
            comm.connect_nccl()


def run(args, training) -> int:
    """Run ``training(args, Runner)`` as one rank of a parallel job; returns the exit status.

    training: the training program's function (``tinyalex.train.training``); ``Runner`` is
    ``DataParallelRun`` or ``TowerRun`` (subclasses of ``tinyalex.run.Run``) with this rank's
    ``comm``.
    """
    comm = connect(args)  # bad launch: UserError on every rank, shown by rank 0 only
    runner = {"data": DataParallelRun, "towers": TowerRun}[args.parallel]
    try:
        choose_device(comm, args)
        if args.out is None and not args.resume:  # one folder for all: rank 0 names it
            with comm.together("naming the run folder"):
                args.out = comm.world.bcast(str(default_out()) if comm.rank == 0 else None,
                                            root=0)
        code = training(args, functools.partial(runner, comm=comm))
    except ParallelStop as stop:  # another rank stopped: this one has nothing to add
        return finish(comm, stop.statuses)
    except KeyboardInterrupt:  # a second Ctrl-C: stop everything now, save nothing
        abort(comm, 130, "interrupted")
    except BaseException as error:  # noqa: BLE001 (every failure must reach the other ranks)
        code = cli.EXIT_BAD_INPUT if isinstance(error, USER_ERRORS) else 1
        if isinstance(error, SystemExit):
            code = error.code if isinstance(error.code, int) else 1
        if comm.region is not None:  # the others may wait inside a collective: abort
            abort(comm, code, error)
        return finish(comm, comm.report(FAILED, code), error)
    return finish(comm, comm.report(DONE, code))


def describe(error: BaseException) -> tuple[str | None, str]:
    """(traceback or None, one line): a user error or a failed write is its message alone; a
    bug shows where."""
    if isinstance(error, USER_ERRORS + RUN_ERRORS):
        return None, str(error)
    trace = "".join(traceback.format_exception(error)).rstrip()
    return trace, f"{type(error).__name__}: {error}"


def abort(comm: Comm, code: int, error: BaseException | str) -> None:
    """Print this rank's error where the user sees it, then MPI_Abort the whole job."""
    trace, line = (None, error) if isinstance(error, str) else describe(error)
    if trace:
        print(trace, file=sys.__stderr__)
    print(f"error: rank {comm.rank} of {comm.size}: {line} (during {comm.region or 'a step'}); "
          "stopping every process", file=sys.__stderr__, flush=True)
    time.sleep(ABORT_GRACE)  # mpiexec forwards our output from a pipe: let it arrive first
    comm.abort(code)


def finish(comm: Comm, statuses, error: BaseException | None = None) -> int:
    """After the last control point: rank 0 says why the job stopped; returns the exit status.

    statuses: (state, exit code, Ctrl-C) of every rank. A rank "failed" if it raised, or if
    it finished with a non-zero status while others were still running (it printed its
    reason on its own, hidden, standard error). When no rank failed, every rank that finished
    already said what there was to say (rank 0 printed its own lines), and the exit status
    is the largest.
    """
    all_done = all(state == DONE for state, _, _ in statuses)
    failed = [rank for rank, (state, code, _) in enumerate(statuses)
              if state == FAILED or (state == DONE and code and not all_done)]
    if not failed:
        return max(code for _, code, _ in statuses)
    first = failed[0]
    message = None
    if comm.rank == first:
        code = statuses[first][1]
        tail = sys.stderr.last() if isinstance(sys.stderr, _Tail) else None
        message = describe(error) if error is not None else (None, tail or f"exit status {code}")
    messages = comm.gather_messages(message)
    if comm.rank == 0 and first == 0 and error is not None:
        raise error  # rank 0's own error: shown exactly as a single process shows it
    if comm.rank == 0 and first != 0:  # (rank 0's own non-zero exit: it has spoken already)
        trace, line = messages[first]
        if trace:
            print(trace, file=sys.stderr)
        print(f"error: rank {first} of {comm.size}: {line.removeprefix('error: ')}",
              file=sys.stderr, flush=True)
    return statuses[first][1]
