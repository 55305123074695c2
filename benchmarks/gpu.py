"""GPU benchmark: tinyalex on CuPy (raw kernels + cuBLAS) against PyTorch + cuDNN, one GPU, one run.

    python benchmarks/gpu.py                       # paper preset, batch 128
    python benchmarks/gpu.py --config mini --batch 256 --repeat 20 --json out.json

Prints, all on the same GPU and in the same process:

1. per-layer forward and backward milliseconds of the network with the CUDA kernels
   (``impl="cuda"``, the default on a GPU) and with the textbook's array code run by CuPy
   (``impl="textbook"``), so one can see what the kernels buy (``--no-layers`` skips it);
2. full training steps (forward, loss, backward, the paper's SGD) in images/s with the batch
   already on the GPU, in float32 and with TF32 products (``tinyalex.cuda.layers.set_tf32``);
3. the same step as ``python -m tinyalex.train`` runs it, from a BatchLoader over in-memory
   uint8 images of the preset's size: "staged" is train.py's GPU path (uint8 batches through
   pinned memory, crops on the GPU, the loss read every 50 steps: ``tinyalex.cuda.staging``);
   "host" is the path it replaced (float32 crops made on the CPU and copied each step, the
   loss and the logits read back each step);
4. if ``torch`` sees the GPU: the same network in PyTorch eager, TF32 off and on (cuDNN
   autotuning on), and the ratios tinyalex / PyTorch.

Every GPU time is measured between CUDA events after a device synchronisation, or as wall
time ending with one, so no row counts launch time only. Without a usable GPU the script exits
at once with a one-line message (status 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

from tinyalex import data  # noqa: E402
from tinyalex.backend import get_array_module, gpu_available, gpu_problem, to_numpy  # noqa: E402
from tinyalex.cuda import staging  # noqa: E402
from tinyalex.metrics import topk_correct  # noqa: E402
from tinyalex.model import AlexNet, get_config  # noqa: E402
from tinyalex.optim import SGD  # noqa: E402
from tinyalex.run import Tally  # noqa: E402

GOAL_VS_PYTORCH = 0.7  # tinyalex's training step / PyTorch's, float32, TF32 off
GOAL_TRAIN_VS_STEP = 0.9  # train.py's rate / the step with the batch already on the GPU


def synchronize() -> None:
    """Wait until the GPU has finished everything queued so far."""
    import cupy

    cupy.cuda.Device().synchronize()


def timed_ms(fn, repeat: int, warmup: int = 2) -> float:
    """GPU milliseconds per call of ``fn()``: CUDA events around ``repeat`` calls.

    The device is synchronised before the first event, and the last event is waited for,
    whatever fn returns (a backward that returns (None, grads) is timed like any other).
    """
    import cupy

    for _ in range(warmup):
        fn()
    synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / repeat


def layer_times(net: AlexNet, x, repeat: int) -> list[tuple[str, float, float]]:
    """(step name, forward ms, backward ms) for every step, each fed the previous output."""
    xp = get_array_module(x)
    rows = []
    x = net.scale_input(x)
    for step in net.steps:
        out, cache = net.step_forward(step, x, train=True)
        dout = xp.ones_like(out)
        forward_ms = timed_ms(lambda s=step, a=x: net.step_forward(s, a, train=True), repeat)
        backward_ms = timed_ms(lambda s=step, d=dout, c=cache: net.step_backward(s, d, c),
                               repeat)
        rows.append((step.name, forward_ms, backward_ms))
        x = out
    return rows


def step_images_per_second(net: AlexNet, x, labels, repeat: int) -> float:
    """Images/s of full training steps on a batch already on the GPU."""
    optimizer = SGD(net.params, lr=0.01, impl=net.impl)

    def train_step():
        _, _, dlogits = net.loss(x, labels, train=True)
        optimizer.step(net.params, net.backward(dlogits))

    return x.shape[0] / (timed_ms(train_step, repeat) / 1000)


def synthetic_loader(config, batch: int, steps: int, workers: int):
    """A training BatchLoader over random uint8 images of the preset's size, in memory."""
    size, count = config.image_size, batch * steps
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, config.num_classes, count)
    image_set = data.ImageSet(images, labels, [str(c) for c in range(config.num_classes)])
    vecs = np.linalg.qr(rng.standard_normal((3, 3)))[0].astype(np.float32)
    stats = {"mean": np.full((3, size, size), 127.5, np.float32),
             "pca_eigvals": np.array([5000.0, 300.0, 50.0], np.float32), "pca_eigvecs": vecs}
    return data.BatchLoader(image_set, batch, config.input_size, stats, train=True, seed=0,
                            num_workers=workers, drop_last=True)


def train_like_images_per_second(net: AlexNet, loader, warmup: int, staged: bool) -> float:
    """Images/s of train.py's loop over ``loader`` (wall time, ending with a synchronisation).

    staged=True: tinyalex.cuda.staging.gpu_batches and tinyalex.run.Tally, as a run does on a GPU.
    staged=False: float32 crops from the loader, copied every step, the loss and the top-1
    count read back every step (how train.py ran before staging).
    """
    import cupy

    optimizer = SGD(net.params, lr=0.01, impl=net.impl)
    classes = net.config.num_classes
    tally = Tally({"loss": 0.0, "correct": 0, "seen": 0}, lambda loss, batch: None)
    batches = (staging.gpu_batches(loader, 0, classes) if staged else loader.iterate())
    images, start = 0, None
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            synchronize()
            start, images = time.perf_counter(), 0
        if staged:
            loss, logits, dlogits = net.loss(x, y, train=True)
            optimizer.step(net.params, net.backward(dlogits))
            tally.add(loss, (logits.argmax(axis=1) == y).sum(), len(y), i + 1)
        else:
            loss, logits, dlogits = net.loss(cupy.asarray(x), cupy.asarray(y), train=True)
            float(loss)  # the old per-step NaN check
            optimizer.step(net.params, net.backward(dlogits))
            topk_correct(to_numpy(logits), y, 1)
        images += len(y)
    tally.read()
    synchronize()
    return images / (time.perf_counter() - start)


def torch_images_per_second(config_name: str, batch: int, repeat: int):
    """{"fp32": images/s, "tf32": images/s, "what": description} of PyTorch eager, or None."""
    try:
        import torch
        import torch.nn as nn
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cudnn.benchmark = True  # let cuDNN pick its fastest algorithms
    config = get_config(config_name)
    modules, channels = [], config.in_channels
    for spec in config.convs:
        modules += [nn.Conv2d(channels, spec.out_channels, spec.kernel, spec.stride, spec.pad,
                              groups=spec.groups), nn.ReLU(inplace=True)]
        if spec.lrn:  # PyTorch divides alpha by n: its alpha = the paper's alpha * n
            modules.append(nn.LocalResponseNorm(config.lrn_n,
                                                alpha=config.lrn_alpha * config.lrn_n,
                                                beta=config.lrn_beta, k=config.lrn_k))
        if spec.pool:
            modules.append(nn.MaxPool2d(config.pool_size, config.pool_stride))
        channels = spec.out_channels
    features = nn.Sequential(*modules).cuda()
    size = config.input_size
    flat = features(torch.zeros(1, config.in_channels, size, size, device="cuda")).numel()
    head, width = [nn.Flatten()], flat
    for hidden in config.hidden:
        head += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
        width = hidden
    head.append(nn.Linear(width, config.num_classes))
    model = nn.Sequential(features, *head).cuda().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, config.in_channels, size, size, device="cuda")
    labels = torch.randint(0, config.num_classes, (batch,), device="cuda")

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()

    rates = {}
    for name, tf32 in (("fp32", False), ("tf32", True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        for _ in range(3):
            train_step()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeat):
            train_step()
        end.record()
        torch.cuda.synchronize()
        rates[name] = batch / (start.elapsed_time(end) / repeat / 1000)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rates["what"] = f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}"
    return rates


def goal(ratio: float, target: float) -> str:
    return f"{ratio:.2f} (goal >= {target:.2f}: {'met' if ratio >= target else 'NOT met'})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="paper", help="model preset (default: paper)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--workers", type=int, default=4, help="loader threads (train.py-like)")
    parser.add_argument("--no-layers", dest="layers", action="store_false",
                        help="skip the per-layer table")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not gpu_available():
        print(f"benchmarks/gpu.py: no usable CUDA GPU ({gpu_problem()}); nothing measured",
              file=sys.stderr)
        return 1
    import cupy

    from tinyalex.cuda.layers import set_tf32

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    device = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"device: {device}; CuPy {cupy.__version__}; config {args.config}; batch {args.batch}; "
          f"{args.repeat} timed steps", flush=True)
    results = {"device": device, "cupy": cupy.__version__, "config": args.config,
               "batch": args.batch}

    net = AlexNet(args.config, seed=0).to("gpu")
    config = net.config
    shape = (args.batch, config.in_channels, config.input_size, config.input_size)
    x = cupy.random.standard_normal(shape, dtype=cupy.float32) * 64  # centred 0..255 units
    labels = cupy.random.randint(0, config.num_classes, size=args.batch)

    if args.layers:
        textbook = AlexNet(args.config, seed=0, impl="textbook").to("gpu")
        rows = {"cuda": layer_times(net, x, args.repeat),
                "textbook": layer_times(textbook, x, args.repeat)}
        del textbook
        print(f"\nper layer, ms (batch {args.batch})   kernels fwd   bwd  |  textbook fwd   bwd")
        for (name, f_k, b_k), (_, f_a, b_a) in zip(rows["cuda"], rows["textbook"], strict=True):
            print(f"  {name:8s} {f_k:26.3f} {b_k:7.3f}  | {f_a:13.3f} {b_a:7.3f}")
        totals = [sum(r[i] for r in rows[m]) for m in ("cuda", "textbook") for i in (1, 2)]
        print(f"  {'total':8s} {totals[0]:26.3f} {totals[1]:7.3f}  | {totals[2]:13.3f} "
              f"{totals[3]:7.3f}")
        results["layers_ms"] = {impl: [list(r) for r in table] for impl, table in rows.items()}

    print("\ntraining step, images/s (forward, loss, backward, SGD)")
    results["tinyalex_fp32"] = step_images_per_second(net, x, labels, args.repeat)
    print(f"  tinyalex, batch on the GPU, float32      {results['tinyalex_fp32']:10,.0f}")
    set_tf32(True)
    results["tinyalex_tf32"] = step_images_per_second(net, x, labels, args.repeat)
    set_tf32(False)
    print(f"  tinyalex, batch on the GPU, TF32         {results['tinyalex_tf32']:10,.0f}")
    warmup = 3
    loader = synthetic_loader(config, args.batch, warmup + args.repeat, args.workers)
    for name, staged in (("staged", True), ("host", False)):
        rate = train_like_images_per_second(net, loader, warmup, staged)
        results[f"train_like_{name}"] = rate
        what = ("uint8 + GPU crops (train.py)" if staged else "float32 crops, reads per step")
        print(f"  train.py-like, {what:27s}{rate:10,.0f}  ({args.workers} loader threads)")
    del x, labels, net
    cupy.get_default_memory_pool().free_all_blocks()

    torch_rates = torch_images_per_second(args.config, args.batch, args.repeat)
    if torch_rates is None:
        print("  PyTorch: not installed or no CUDA in torch; no comparison")
    else:
        results.update(torch_fp32=torch_rates["fp32"], torch_tf32=torch_rates["tf32"],
                       torch=torch_rates["what"])
        print(f"  {torch_rates['what']}, TF32 off {torch_rates['fp32']:10,.0f}")
        print(f"  {torch_rates['what']}, TF32 on  {torch_rates['tf32']:10,.0f}")

    print("\nratios")
    if torch_rates is not None:
        results["ratio_fp32"] = results["tinyalex_fp32"] / results["torch_fp32"]
        results["ratio_tf32"] = results["tinyalex_tf32"] / results["torch_tf32"]
        versus = goal(results["ratio_fp32"], GOAL_VS_PYTORCH)
        print(f"  tinyalex / PyTorch, float32 (TF32 off)   {versus}")
        print(f"  tinyalex / PyTorch, TF32 on              {results['ratio_tf32']:.2f}")
    results["ratio_train_like"] = results["train_like_staged"] / results["tinyalex_fp32"]
    versus = goal(results["ratio_train_like"], GOAL_TRAIN_VS_STEP)
    print(f"  train.py-like / step on the GPU          {versus}")
    print(f"  staged / host path                       "
          f"{results['train_like_staged'] / results['train_like_host']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
