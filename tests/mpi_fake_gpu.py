"""``python -m tinyalex.train --device gpu --parallel ...`` with no GPU, for the tests.

    mpiexec -n 2 python tests/mpi_fake_gpu.py TRAIN_ARGS...

``cupy`` is tests/fake_cupy.py (NumPy arrays dressed as device arrays, the kernels on the CPU
emulator), and ``cupy.cuda.nccl`` is the stand-in below: it takes the device pointers and
counts that tinyalex passes to NCCL, exactly as NCCL would, and moves the memory behind them
with MPI. So the GPU code of tinyalex.distributed -- the unique id broadcast, the all-reduce of
the gradient buffer, the grouped send/receive of the towers, the GPU staging of a data-parallel
rank, the device tally -- runs in CI; only NCCL itself does not.
"""

import ctypes
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_cupy  # noqa: E402

NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = 7, 8, 0
C_TYPES = {NCCL_FLOAT32: ctypes.c_float, NCCL_FLOAT64: ctypes.c_double}


def memory(pointer: int, count: int, kind: int) -> np.ndarray:
    """The NumPy view of ``count`` numbers of NCCL type ``kind`` at a raw address."""
    return np.ctypeslib.as_array((C_TYPES[kind] * count).from_address(pointer))


class NcclCommunicator:
    """What tinyalex calls of cupy.cuda.nccl.NcclCommunicator, over MPI on host memory."""

    group: list = []  # the send/recv calls queued between groupStart and groupEnd

    def __init__(self, ndev: int, uid: bytes, rank: int):
        from mpi4py import MPI

        self.world = MPI.COMM_WORLD
        assert (self.world.Get_size(), self.world.Get_rank()) == (ndev, rank)
        assert self.world.allgather(uid) == [uid] * ndev, "every rank needs rank 0's unique id"

    def allReduce(self, send, recv, count, kind, op, stream):  # noqa: N802 (NCCL's name)
        from mpi4py import MPI

        assert op == NCCL_SUM and send == recv and isinstance(stream, int)
        self.world.Allreduce(MPI.IN_PLACE, memory(recv, count, kind), op=MPI.SUM)

    def send(self, pointer, count, kind, peer, stream):
        self.group.append(("send", memory(pointer, count, kind).copy(), peer))

    def recv(self, pointer, count, kind, peer, stream):
        self.group.append(("recv", memory(pointer, count, kind), peer))


def group_end():
    """NCCL runs the grouped calls together, so a send and a receive never wait for each other."""
    (_, sent, to), (_, received, source) = NcclCommunicator.group
    NcclCommunicator.group = []
    from mpi4py import MPI

    MPI.COMM_WORLD.Sendrecv(sent, dest=to, recvbuf=received, source=source)


nccl = types.ModuleType("cupy.cuda.nccl")
nccl.NCCL_FLOAT32, nccl.NCCL_FLOAT64, nccl.NCCL_SUM = NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM
nccl.NcclCommunicator = NcclCommunicator
nccl.get_unique_id = lambda: bytes(np.random.default_rng().integers(0, 256, 128, np.uint8))
nccl.groupStart = lambda: NcclCommunicator.group.clear()
nccl.groupEnd = group_end
fake_cupy.cuda.nccl = nccl
fake_cupy.cuda.Device.use = lambda self: None
# A device array's raw address, as CuPy's ``a.data.ptr``.
fake_cupy.ndarray.data = property(lambda a: types.SimpleNamespace(ptr=a.ctypes.data))
fake_cupy.get_current_stream = fake_cupy.cuda.get_current_stream
fake_cupy.cuda.get_current_stream().ptr = 0
sys.modules.update({"cupy": fake_cupy, "cupy.cuda": fake_cupy.cuda, "cupy.cuda.nccl": nccl})

from tinyalex import cli, train  # noqa: E402

sys.exit(cli.run(train.main, sys.argv[1:]))
