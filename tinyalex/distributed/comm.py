"""The processes of a parallel run and what passes between them: MPI, and NCCL on GPUs.

``mpiexec -n N python -m tinyalex.train --parallel ...`` starts N copies of the program, the
*ranks* 0 .. N-1. Nothing is shared between them: every array one rank needs from another
crosses explicitly, through an existing engine --

- MPI (the ``mpi4py`` bindings, on NumPy buffers) between processes, on one machine (shared
  memory) or several (the network); it also starts the processes (``mpiexec``);
- NCCL (NVIDIA's collective library, through ``cupy.cuda.nccl``) between GPU memories, for
  CuPy arrays; NCCL needs a shared "unique id" to connect, and rank 0 broadcasts it over MPI,
  the way llm.c and ChainerMN start NCCL.

Two kinds of traffic, on two MPI communicators, so that they can never be mistaken for each
other:

    data      the arrays of training: gradients all-reduced (data parallelism), activations
              and their gradients exchanged between the two towers (section 3.2)
    control   one small status per process at fixed points of every step: "still running"
              (and whether Ctrl-C was pressed), "finished" or "failed"

Why the control traffic. An MPI collective returns only when *every* rank has called it. A
rank that stops -- a bad image, a NaN loss, a bug, Ctrl-C -- would leave the others waiting
for it forever. So the ranks agree, at *control points*, that they are all still running,
and every data collective is entered straight after a control point (``together``), with
nothing that can fail in between. A rank that fails outside such a region therefore knows
that the others will reach a control point without needing it; it goes there itself,
reports "failed", and all ranks stop with one message printed by rank 0
(``tinyalex.distributed.launch``). A rank that fails *inside* a region (the others may be
blocked in a collective that needs it) cannot do that: it prints its error and calls
``MPI_Abort``, which stops every process at once. A rank killed outright is noticed by
``mpiexec`` itself, which ends the job. Never a hang.
"""

from __future__ import annotations

import contextlib

import numpy as np

from tinyalex.backend import get_array_module, is_gpu_array

RUNNING, DONE, FAILED = "running", "done", "failed"  # the states a control point exchanges

class ParallelStop(BaseException):
    """Raised on a running rank when a control point shows that another rank has stopped.

    A BaseException (like SystemExit), so that no ``except Exception`` on the way out
    swallows it. ``statuses`` is what the control point gathered, one (state, exit code,
    Ctrl-C pressed) per rank.
    """

    def __init__(self, statuses):
        super().__init__("another process of the parallel run stopped")
        self.statuses = statuses


class Comm:
    """The ranks of a parallel run: control points, and the data collectives tinyalex needs.

    world: an mpi4py communicator (``MPI.COMM_WORLD``). device: "cpu" (NumPy arrays through
    MPI) or "gpu" (CuPy arrays through NCCL; ``connect_nccl`` first).

    ``sent_bytes`` counts what this rank has sent through the data collectives, so that a
    run can print what a step costs in traffic (``tinyalex.distributed.volume`` computes the
    same figure from the network's shapes).
    """

    def __init__(self, world, device: str = "cpu"):
        from mpi4py import MPI

        self.MPI = MPI
        self.world = world  # data traffic
        self.control = world.Dup()  # control traffic: a communicator of its own
        self.rank, self.size = world.Get_rank(), world.Get_size()
        self.device = device
        self.nccl = None  # a cupy.cuda.nccl.NcclCommunicator once connect_nccl has run
        self.region: str | None = None  # the data collectives in progress, for error messages
        self.sent_bytes = 0

    # -- control ------------------------------------------------------------------------------

    def agree(self, stop: bool = False) -> bool:
        """A control point: True when some rank asks to stop (Ctrl-C); ParallelStop when some
        rank has finished or failed. Every rank must call it at the same points."""
        statuses = self.control.allgather((RUNNING, 0, bool(stop)))
        if any(state != RUNNING for state, _, _ in statuses):
            raise ParallelStop(statuses)
        return any(asked for _, _, asked in statuses)

    @contextlib.contextmanager
    def together(self, what: str):
        """A control point, then the data collectives of the block (``what`` names them).

        An exception inside the block leaves ``region`` set: the launcher then knows that the
        other ranks may be blocked in one of these collectives, and aborts instead of
        reporting at the next control point.
        """
        self.agree()
        self.region = what
        yield
        self.region = None

    def report(self, state: str, code: int):
        """The last control point of a rank that finished (DONE) or failed (FAILED)."""
        return self.control.allgather((state, int(code), False))

    def gather_messages(self, message: str | None) -> list | None:
        """Every rank's message (None where it has nothing to say) on rank 0, after a stop."""
        return self.control.gather(message, root=0)

    def abort(self, code: int) -> None:
        """MPI_Abort: every process of the job stops now (mpiexec exits with ``code``)."""
        self.world.Abort(int(code))

    # -- data ---------------------------------------------------------------------------------

    def connect_nccl(self) -> None:
        """NCCL between the ranks' GPUs: rank 0 makes the unique id, MPI broadcasts it."""
        from cupy.cuda import nccl

        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.world.bcast(uid, root=0)
        self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)

    def allreduce_sum(self, buffer) -> None:
        """buffer <- the sum over the ranks of their buffers, in place (a 1-d float array).

        Counted as the traffic of the standard algorithms for large arrays (a reduce-scatter,
        then an all-gather, or NCCL's ring): each rank sends 2 (N - 1) / N of the buffer.
        """
        if is_gpu_array(buffer):
            import cupy
            from cupy.cuda import nccl

            self.nccl.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size,
                                _nccl_type(nccl, buffer.dtype), nccl.NCCL_SUM,
                                cupy.cuda.get_current_stream().ptr)
        else:
            self.world.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        self.sent_bytes += 2 * (self.size - 1) * buffer.nbytes // self.size

    def exchange(self, send, recv_shape):
        """Send ``send`` to the other rank and return what it sent us (shape ``recv_shape``).

        Two ranks only (the towers): MPI_Sendrecv, or an NCCL send and receive grouped so that
        neither waits for the other.
        """
        xp = get_array_module(send)
        send = xp.ascontiguousarray(send)
        received = xp.empty(recv_shape, dtype=send.dtype)
        peer = 1 - self.rank
        if is_gpu_array(send):
            import cupy
            from cupy.cuda import nccl

            stream = cupy.cuda.get_current_stream().ptr
            kind = _nccl_type(nccl, send.dtype)
            nccl.groupStart()
            self.nccl.send(send.data.ptr, send.size, kind, peer, stream)
            self.nccl.recv(received.data.ptr, received.size, kind, peer, stream)
            nccl.groupEnd()
        else:
            self.world.Sendrecv(send, dest=peer, recvbuf=received, source=peer)
        self.sent_bytes += send.nbytes
        return received

    def gather_to_root(self, array):
        """Every rank's array (NumPy) in a list on rank 0, None elsewhere (for checkpoints)."""
        array = np.ascontiguousarray(array)
        if self.rank:
            self.sent_bytes += array.nbytes
        return self.world.gather(array, root=0)


def _nccl_type(nccl, dtype):
    """NCCL's name for a float dtype."""
    kinds = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}
    return kinds[np.dtype(dtype)]
