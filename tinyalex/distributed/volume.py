"""What one training step sends between processes: data parallelism vs the two towers, in bytes.

    python -m tinyalex.distributed [--config paper] [--batch-size 128] [--processes 2]

prints, per learned layer, its weights, its share of the multiply-adds, and the bytes each
process sends per step in either parallel mode (float32). The lesson of Krizhevsky's "One
weird trick for parallelizing convolutional neural networks" (2014) in numbers: the
convolutions hold 3.8% of AlexNet's weights and do 92% of its multiply-adds, the fully
connected layers the opposite. Data parallelism sends every *weight* (its gradient)
once per step, whatever the batch; the towers send *activations*, which grow with the
batch. So the convolutions want data parallelism (little to send, much to compute per
process) and the fully connected layers model parallelism; the paper's towers do the latter
everywhere.

The figures are computed from the network's shapes, and are what ``Comm.sent_bytes`` counts
in a run (the tests check that they agree): for the all-reduce, the 2 (N - 1) / N of the
buffer that each process sends in the standard large-array algorithms (a reduce-scatter and
an all-gather, or NCCL's ring); for the towers, the exact arrays of ``towers.py``.
"""

from __future__ import annotations

import argparse

import numpy as np

from tinyalex.distributed.placement import share
from tinyalex.model import PRESETS, TRAINING, build_steps, get_config, layer_shapes

FLOAT32 = 4


def data_parallel_bytes(config, processes: int, itemsize: int = FLOAT32) -> int:
    """Bytes each process sends per step: the all-reduce of every gradient (+ 2 totals)."""
    count = sum(params for _, _, params, _ in layer_shapes(get_config(config))) + 2
    return 2 * (processes - 1) * count * itemsize // processes


def tower_exchanges(config, batch: int, rank: int, itemsize: int = FLOAT32) -> list:
    """[(layer it belongs to, what, forward bytes, backward bytes)] that tower ``rank`` sends.

    Walks the steps as ``TowerNet.forward`` does: a gather into conv3 and every fc layer (this
    rank's block forward, the other block's gradient backward), the n//2 seam maps at each
    LRN (forward and backward), and the logits of this rank's classes (forward only).
    """
    config = get_config(config)
    rows = []
    shape_in = (config.in_channels, config.input_size, config.input_size)
    split, owner, first = None, None, True
    for step, (name, shape, _, _) in zip(build_steps(config), layer_shapes(config), strict=True):
        reads_both = step.kind == "fc" or (step.kind == "conv" and step.options["groups"] == 1
                                           and not first)
        if reads_both and split is not None:
            lo, hi, total = split
            per_unit = int(np.prod(shape_in[1:]))
            rows.append((name, f"into {name}", batch * (hi - lo) * per_unit * itemsize,
                         batch * (total - (hi - lo)) * per_unit * itemsize))
            split = None
        if step.kind == "lrn" and step.options["n"] // 2:
            seam = batch * (step.options["n"] // 2) * shape[1] * shape[2] * itemsize
            rows.append((owner, f"{name} seam", seam, seam))
        if step.kind in ("conv", "fc"):
            split, owner, first = (*share(shape[0], rank, 2), shape[0]), name, False
        shape_in = shape
    lo, hi, _ = split
    rows.append((owner, "logits", batch * (hi - lo) * itemsize, 0))
    return rows


def tower_bytes(config, batch: int, rank: int = 0, itemsize: int = FLOAT32) -> int:
    """Bytes tower ``rank`` sends per step (forward and backward)."""
    return sum(f + b for _, _, f, b in tower_exchanges(config, batch, rank, itemsize))


def table(config, batch: int, processes: int = 2) -> str:
    """The per-layer comparison printed by ``python -m tinyalex.distributed``."""
    config = get_config(config)
    learned = [(name, params, macs) for name, _, params, macs in layer_shapes(config) if params]
    total_params = sum(p for _, p, _ in learned)
    total_macs = sum(m for _, _, m in learned)
    towers = {}
    for owner, _, forward, backward in tower_exchanges(config, batch, 0):
        towers[owner] = towers.get(owner, 0) + forward + backward
    scale = 2 * (processes - 1) / processes * FLOAT32 / 1e6
    lines = [f"AlexNet '{config.name}', batch {batch}, float32: MB each process sends per step",
             f"{'layer':<7}{'weights':>13}{'mult-adds':>11}{'data parallel':>15}"
             f"{'two towers':>12}",
             f"{'':<7}{'':>13}{'':>11}{f'({processes} processes)':>15}{'(rank 0)':>12}"]
    for name, params, macs in learned:
        lines.append(f"{name:<7}{params:>13,}{100 * macs / total_macs:>10.1f}%"
                     f"{params * scale:>15.1f}{towers.get(name, 0) / 1e6:>12.1f}")
    lines.append(f"{'total':<7}{total_params:>13,}{100:>10.1f}%"
                 f"{data_parallel_bytes(config, processes) / 1e6:>15.1f}"
                 f"{tower_bytes(config, batch, 0) / 1e6:>12.1f}")
    convs = [(p, m) for name, p, m in learned if name.startswith("conv")]
    lines.append(f"convolutions: {100 * sum(p for p, _ in convs) / total_params:.1f}% of the "
                 f"weights, {100 * sum(m for _, m in convs) / total_macs:.1f}% of the "
                 "multiply-adds; fully connected layers: the rest")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyalex.distributed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(PRESETS), default="paper")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: the preset's training batch (paper 128, mini 64)")
    parser.add_argument("--processes", type=int, default=2, help="for data parallelism")
    args = parser.parse_args(argv)
    batch = args.batch_size or TRAINING[args.config]["batch_size"]
    print(table(args.config, batch, args.processes))
    return 0
