"""Forward and backward time of every AlexNet layer at the paper's shapes, per implementation.

    python benchmarks/layers.py                              # paper preset, batch 32, fast
    python benchmarks/layers.py --impl textbook fast         # both, one table each
    python benchmarks/layers.py --preset mini --batch 128     # or --preset fashion

Walks the network's own layer sequence (``tinyalex.model.build_steps``) one step at a time,
calling the layer functions of the chosen implementation exactly as ``AlexNet.forward`` and
``backward`` do (``AlexNet.step_forward`` / ``step_backward``), and times each call. Every
layer is timed ``--repeats`` times; the table shows the median. The machine is usually
shared, so compare ratios between runs, not single numbers; ``--clock cpu`` times the CPU
time of the calling thread instead of the wall clock, which a loaded machine disturbs far less
(meaningful with one thread: ``TINYALEX_THREADS=1 OPENBLAS_NUM_THREADS=1``).
"""

from __future__ import annotations

# isort: off
import tinyalex.threads  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on
import argparse
import os
import platform
import time

import numpy as np

from tinyalex.model import PRESETS, AlexNet, layer_shapes
from tinyalex.optim import SGD

CLOCK = time.perf_counter  # or time.thread_time (--clock cpu)


def timed(fn, *args):
    start = CLOCK()
    result = fn(*args)
    return result, CLOCK() - start


def time_layers(net, x0, labels, repeats: int):
    """{step: [forward seconds]}, {step: [backward seconds]}, [loss seconds], [SGD update
    seconds] over ``repeats``."""
    fwd = {s.name: [] for s in net.steps}
    bwd = {s.name: [] for s in net.steps}
    loss_times, update_times = [], []
    opt = SGD(net.params, lr=0.01, momentum=0.9, weight_decay=5e-4, impl=net.impl)
    for _ in range(repeats):
        x, caches = net.scale_input(x0), []
        for step in net.steps:
            (x, cache), seconds = timed(net.step_forward, step, x, True)
            caches.append(cache)
            fwd[step.name].append(seconds)
        (_, dx), seconds = timed(net.layers.softmax_cross_entropy, x, labels)
        loss_times.append(seconds)
        grads = {}
        for step, cache in zip(reversed(net.steps), reversed(caches), strict=True):
            first = step is net.steps[0]
            (dx, step_grads), seconds = timed(net.step_backward, step, dx, cache, not first)
            grads.update(step_grads)
            bwd[step.name].append(seconds)
        del caches, cache, x, dx
        update_times.append(timed(opt.step, net.params, grads)[1])
    return fwd, bwd, loss_times, update_times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--impl", nargs="+", default=["fast"],
                        choices=("textbook", "fast", "cuda"),
                        help="implementations to time (cuda: the CPU emulator here)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock time, or the CPU time of this thread (one thread)")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter

    rng = np.random.default_rng(0)
    print(f"tinyalex layers, preset {args.preset}, batch {args.batch}, float32, "
          f"median of {args.repeats}, {args.clock} clock, "
          f"TINYALEX_COMPILED={os.environ.get('TINYALEX_COMPILED', 'unset')}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.2f}")
    for impl in args.impl:
        net = AlexNet(args.preset, dtype=np.float32, impl=impl)
        size = net.config.input_size
        x0 = rng.standard_normal((args.batch, net.config.in_channels, size, size),
                                 dtype=np.float32)
        labels = rng.integers(0, net.config.num_classes, args.batch)
        shapes = {name: shape for name, shape, _, _ in layer_shapes(net.config)}
        fwd, bwd, loss_times, update_times = time_layers(net, x0, labels, args.repeats)
        print(f"\nimplementation {impl}")
        print(f"{'layer':<8}{'output':>16}{'forward ms':>12}{'backward ms':>13}")
        total_f = total_b = 0.0
        for step in net.steps:
            f_ms, b_ms = 1e3 * np.median(fwd[step.name]), 1e3 * np.median(bwd[step.name])
            total_f, total_b = total_f + f_ms, total_b + b_ms
            shape = " x ".join(str(s) for s in shapes[step.name])
            print(f"{step.name:<8}{shape:>16}{f_ms:>12.1f}{b_ms:>13.1f}")
        loss_ms = 1e3 * np.median(loss_times)
        print(f"{'loss':<8}{'':>16}{loss_ms:>12.1f}{'':>13}")
        update_ms = 1e3 * np.median(update_times)
        print(f"{'sgd':<8}{'':>16}{'':>12}{update_ms:>13.1f}   (the update of every parameter)")
        total = total_f + total_b + loss_ms + update_ms
        print(f"{'total':<8}{'':>16}{total_f + loss_ms:>12.1f}{total_b + update_ms:>13.1f}"
              f"   = {total:.0f} ms, {args.batch / total * 1e3:.1f} images/s")


if __name__ == "__main__":
    main()
