"""Images per second of the training step on one process, or on several under mpiexec.

    python benchmarks/parallel_step.py --preset mini                        # one process
    mpiexec -n 2 python benchmarks/parallel_step.py --mode data --preset mini
    mpiexec -n 2 python benchmarks/parallel_step.py --mode towers --preset paper

One training step as ``python -m tinyalex.train`` runs it (forward with dropout, softmax
cross-entropy, backward, the parallel mode's communication, the SGD update), on a fixed
random batch of the global batch size (the data loader is not timed: see
``benchmarks/data.py``). Two warm-up steps, then ``--steps`` timed ones; rank 0 prints the
global images per second and the bytes this rank sent per step (``Comm.sent_bytes``).
"""

from __future__ import annotations

# isort: off
import tinyalex.threads  # noqa: F401  (first, before NumPy loads OpenBLAS)

# isort: on

import argparse
import os
import time

import numpy as np

from tinyalex.distributed import share
from tinyalex.model import PRESETS, AlexNet
from tinyalex.optim import SGD


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("single", "data", "towers"), default="single")
    p.add_argument("--preset", choices=sorted(PRESETS), default="mini")
    p.add_argument("--batch-size", type=int, default=None, help="mini 64, paper 128")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)
    config = PRESETS[args.preset]
    batch = args.batch_size or {"mini": 64, "paper": 128}[args.preset]
    net = AlexNet(config, seed=0)
    rng = np.random.default_rng(0)
    side = config.input_size
    x = (rng.standard_normal((batch, 3, side, side)) * 50).astype(np.float32)
    y = rng.integers(0, config.num_classes, batch)

    comm = None
    if args.mode != "single":
        from mpi4py import MPI

        from tinyalex.distributed.comm import Comm

        comm = Comm(MPI.COMM_WORLD)
    if args.mode == "towers":
        from tinyalex.distributed.towers import TowerNet

        net = TowerNet(net, comm)
    opt = SGD(net.params, 0.01, 0.9, 5e-4, impl=net.impl)
    if args.mode == "data":
        from tinyalex.distributed.data_parallel import GradientBucket, summed_gradients

        bucket = GradientBucket(net.params)
        rows = slice(*share(batch, comm.rank, comm.size))

        def step():
            grads, _, _ = summed_gradients(net, comm, bucket, x[rows], y)
            opt.step(net.params, grads)
    else:
        def step():
            _, _, dlogits = net.loss(x, y, train=True)
            opt.step(net.params, net.backward(dlogits))

    for _ in range(2):
        step()
    sent = comm.sent_bytes if comm else 0
    if comm:
        comm.world.Barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if comm:
        comm.world.Barrier()
    seconds = time.perf_counter() - start
    if comm is None or comm.rank == 0:
        processes = comm.size if comm else 1
        per_step = ((comm.sent_bytes - sent) / args.steps) if comm else 0
        print(f"{args.preset} batch {batch}, {args.mode} on {processes} process(es), "
              f"{os.cpu_count()} cores: {batch * args.steps / seconds:.1f} images/s "
              f"({seconds / args.steps * 1000:.0f} ms/step), rank 0 sent "
              f"{per_step / 1e6:.2f} MB/step", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
