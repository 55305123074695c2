"""Images per second of the data pipeline alone: BatchLoader reading the decoded cache.

    python benchmarks/data.py [--data builtin] [--preset mini|paper] [--workers 0,1,2]

Times full training epochs (random crop + flip + PCA lighting + mean subtraction, shuffled
reads from the memory-mapped cache) and an evaluation pass (centre crops), for each worker
count, after one warm-up epoch so the cache file sits in the page cache, as it does from
the second epoch of a training run on. Nothing else runs: compare the figure with the
training images/s of ``python -m tinyalex.train`` to see that the loader is not the
bottleneck. The paper preset's 256 -> 227 crops are timed on the same images rescaled to 256.

A third column times what the loader does for a GPU run (``iterate(parts=True)``: the uint8
images gathered and the windows and lighting drawn; tinyalex.cuda.staging crops on the GPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from tinyalex import data

PRESETS = {"mini": (72, 63), "paper": (256, 227)}   # (image_size, crop_size)


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), for the report line."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def images_per_second(loader, epochs: int, parts: bool = False) -> float:
    start, count = time.perf_counter(), 0
    for epoch in range(epochs):
        loader.set_epoch(epoch + 1)
        for batch in loader.iterate(parts=parts):
            count += len(batch[1])  # (x, y) or BatchParts(images, labels, ...)
    return count / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="builtin")
    parser.add_argument("--preset", default="mini", choices=sorted(PRESETS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    image_size, crop = PRESETS[args.preset]
    train, val = data.open_splits(args.data, image_size)
    stats = data.compute_stats(train)
    print(f"{train}; crop {crop}, batch {args.batch_size}; {cpu_name()}, "
          f"{os.cpu_count()} cores")
    for workers in (int(w) for w in args.workers.split(",")):
        loader = data.BatchLoader(train, args.batch_size, crop, stats, train=True,
                                  num_workers=workers)
        images_per_second(loader, 1)                                          # warm-up
        train_rate = images_per_second(loader, args.epochs)
        evaluation = data.BatchLoader(val, args.batch_size, crop, stats, train=False,
                                      num_workers=workers)
        eval_rate = images_per_second(evaluation, args.epochs)
        parts_rate = images_per_second(loader, args.epochs, parts=True)
        print(f"workers={workers}: train (crop+flip+lighting) {train_rate:8.0f} images/s   "
              f"eval (centre crop) {eval_rate:8.0f} images/s   "
              f"GPU run (uint8, crops on the GPU) {parts_rate:8.0f} images/s")


if __name__ == "__main__":
    main()
