"""Run ``python -m tinyalex.train`` with a fault injected on one rank (tests/test_distributed.py).

    mpiexec -n 2 python tests/mpi_inject.py KIND RANK STEP TRAIN_ARGS...

On rank RANK only, at its training step STEP (1 = the first step this process runs):

    data    the loader fails building that batch (a DataError, as for an unreadable image)
    nan     that step's loss is NaN
    bug     a RuntimeError inside the towers' forward pass, between two exchanges (conv4)
    kill    the process kills itself (SIGKILL), as the kernel's out-of-memory killer would
    sigint  Ctrl-C reaches this process alone, during that step
"""

import os
import signal
import sys

import numpy as np

from tinyalex import cli, train
from tinyalex.data import DataError
from tinyalex.data.loader import BatchLoader
from tinyalex.model import AlexNet

KIND, RANK, STEP = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
steps = 0  # training steps begun on this rank


def patch():
    real_parts, real_loss = BatchLoader.parts, AlexNet.loss

    def parts(self, i):
        if self.train and KIND == "data" and steps + 1 == STEP:
            raise DataError(f"injected: train batch {i} has an unreadable image")
        return real_parts(self, i)

    def loss(self, x, labels, train=True):  # every training step (both modes) calls it once
        global steps
        steps += bool(train)
        if KIND == "kill" and train and steps == STEP:
            os.kill(os.getpid(), signal.SIGKILL)
        value, logits, dlogits = real_loss(self, x, labels, train)
        if KIND == "nan" and train and steps == STEP:
            value = value * np.float32("nan")
        if KIND == "sigint" and train and steps == STEP:
            signal.raise_signal(signal.SIGINT)  # the handler asks to stop after this step
        return value, logits, dlogits

    BatchLoader.parts, AlexNet.loss = parts, loss
    if KIND == "bug":
        from tinyalex.distributed.towers import TowerNet

        real_forward = TowerNet.step_forward

        def step_forward(self, step, x, train=False):
            if train and step.name == "conv4" and steps == STEP:
                raise RuntimeError("injected bug in conv4")
            return real_forward(self, step, x, train)

        TowerNet.step_forward = step_forward


if int(os.environ.get("PMI_RANK", "0")) == RANK:
    patch()
sys.exit(cli.run(train.main, sys.argv[4:]))
