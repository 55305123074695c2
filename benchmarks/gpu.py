"""GPU benchmark: tinyalex on CuPy (raw kernels + cuBLAS) and, if installed, PyTorch (cuDNN).

    pip install -e ".[gpu]"                        # once; add torch to compare with PyTorch
    python benchmarks/gpu.py                       # paper preset, batch 128
    python benchmarks/gpu.py --config mini --batch 256 --repeat 20

Prints, all on the same GPU and in the same run:

1. per-layer forward and backward times of the paper network at the given batch, with the
   CUDA kernels (``impl="cuda"``, the default on a GPU) and with the textbook's array code
   run by CuPy (``impl="textbook"``), so one can see what the kernels buy;
2. full training steps (forward, loss, backward, the paper's SGD update) in images/s;
3. if ``torch`` is importable and sees the GPU: the same network in PyTorch eager, fp32
   (TF32 off, cuDNN autotuning on), its images/s, and the ratio tinyalex / PyTorch.

Times come from CUDA events around ``repeat`` calls after ``warmup`` calls. Without a usable
GPU the script exits at once with a one-line message (status 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout too

from tinyalex.backend import get_array_module, gpu_available, is_gpu_array  # noqa: E402
from tinyalex.model import AlexNet, get_config  # noqa: E402
from tinyalex.optim import SGD  # noqa: E402


def timed_ms(fn, repeat: int, warmup: int = 2) -> float:
    """Milliseconds per call of ``fn()``: CUDA events when fn works on CuPy, else the wall clock."""
    result = None
    for _ in range(warmup):
        result = fn()
    if result is not None and is_gpu_array(result if not isinstance(result, tuple) else result[0]):
        import cupy

        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(repeat):
            fn()
        end.record()
        end.synchronize()
        return cupy.cuda.get_elapsed_time(start, end) / repeat
    begin = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - begin) * 1000 / repeat


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


def train_images_per_second(net: AlexNet, x, labels, repeat: int) -> float:
    """Images/s of full training steps: forward, softmax loss, backward, SGD update."""
    optimizer = SGD(net.params, lr=0.01, impl=net.impl)

    def train_step():
        _, logits, dlogits = net.loss(x, labels, train=True)
        optimizer.step(net.params, net.backward(dlogits))
        return logits

    return x.shape[0] / (timed_ms(train_step, repeat) / 1000)


def torch_images_per_second(config_name: str, batch: int, repeat: int):
    """(images/s, description) of the same network in PyTorch eager fp32, or None."""
    try:
        import torch
        import torch.nn as nn
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False  # true fp32, like CuPy's default
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True  # let cuDNN pick its fastest algorithms
    config = get_config(config_name)
    modules, channels = [], config.in_channels
    for spec in config.convs:
        modules += [nn.Conv2d(channels, spec.out_channels, spec.kernel, spec.stride, spec.pad,
                              groups=spec.groups), nn.ReLU(inplace=True)]
        if spec.lrn:  # PyTorch divides alpha by n: its alpha = the paper's alpha * n
            modules.append(nn.LocalResponseNorm(config.lrn_n, alpha=config.lrn_alpha * config.lrn_n,
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

    for _ in range(3):
        train_step()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        train_step()
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / repeat
    what = f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}"
    return batch / (ms / 1000), what


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="paper", help="model preset (default: paper)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=10, help="timed calls per measurement")
    args = parser.parse_args(argv)
    if not gpu_available():
        print("benchmarks/gpu.py: no usable CUDA GPU (needs CuPy and a device); nothing measured",
              file=sys.stderr)
        return 1
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    device = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"device: {device}; CuPy {cupy.__version__}; config {args.config}; batch {args.batch}")

    nets = {impl: AlexNet(args.config, seed=0, impl=impl).to("gpu")
            for impl in ("cuda", "textbook")}  # the kernels, then the textbook's array code
    net, config = nets["cuda"], nets["cuda"].config
    shape = (args.batch, config.in_channels, config.input_size, config.input_size)
    x = cupy.random.standard_normal(shape, dtype=cupy.float32)
    labels = cupy.random.randint(0, config.num_classes, size=args.batch)

    results = {impl: layer_times(one, x, args.repeat) for impl, one in nets.items()}
    print(f"\nper layer, ms (batch {args.batch})   kernels fwd   bwd  |  textbook fwd   bwd")
    for (name, f_k, b_k), (_, f_a, b_a) in zip(results["cuda"], results["textbook"],
                                               strict=True):
        print(f"  {name:8s} {f_k:26.3f} {b_k:7.3f}  | {f_a:13.3f} {b_a:7.3f}")
    f_k, b_k, f_a, b_a = (sum(r[i] for r in results[m]) for m in ("cuda", "textbook")
                          for i in (1, 2))
    print(f"  {'total':8s} {f_k:26.3f} {b_k:7.3f}  | {f_a:13.3f} {b_a:7.3f}")

    ours = train_images_per_second(net, x, labels, args.repeat)
    print(f"\ntinyalex training step: {ours:,.0f} images/s")
    theirs = torch_images_per_second(args.config, args.batch, args.repeat)
    if theirs is None:
        print("PyTorch: not installed or no CUDA in torch; no comparison")
    else:
        rate, what = theirs
        print(f"{what} (eager fp32) training step: {rate:,.0f} images/s")
        print(f"ratio tinyalex / PyTorch: {ours / rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
