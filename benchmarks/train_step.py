"""One AlexNet training step, tinyalex (NumPy) against PyTorch CPU eager, on this machine.

    python benchmarks/train_step.py                        # paper preset, batch 32, fast
    python benchmarks/train_step.py --preset mini --batch 128
    python benchmarks/train_step.py --impl textbook        # the readable layers instead

A step is what training does per batch: forward (train mode, dropout on), softmax
cross-entropy, backward, and the SGD update (momentum 0.9, weight decay 5e-4), float32.

- Throughput: the two frameworks run in this one process, one step each in turn
  (alternating, so that a busy shared machine slows both alike); the median step time of
  each gives images/s, and the ratio tinyalex / PyTorch (> 1 means tinyalex is faster).
- Peak memory: allocations made inside BLAS or PyTorch are invisible to tracemalloc, so each
  framework runs a few steps alone in a fresh subprocess and reports its peak resident set
  size (ru_maxrss, the operating system's high-water mark), and also that peak minus the
  resident size just after the imports (the memory of the model and the step themselves).
- GFLOP/s: multiply-adds of the conv and fc layers (``tinyalex.model.layer_shapes``) x 2
  flops x 3 (forward, input gradient, weight gradient) minus conv1's input gradient, which
  neither framework computes; against the float32 matrix-product peak measured here
  (a 4096 x 4096 NumPy/OpenBLAS product, best of 3).

PyTorch is optional: without it the script says so and times tinyalex only. It is never a
dependency of tinyalex itself. The PyTorch network is built from the same config (grouped
convs, ``nn.LocalResponseNorm(n, alpha=n * alpha, beta, k)`` -- PyTorch divides alpha by n
-- the same pools and dropout) and starts from tinyalex's weights; the script checks that
both give the same loss before timing.
"""

from __future__ import annotations

# isort: off
import tinyalex.threads  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from tinyalex.model import PRESETS, AlexNet, get_config, layer_shapes
from tinyalex.optim import SGD


def _proc_status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    raise RuntimeError(f"no {field} in /proc/self/status (this needs Linux)")


def peak_rss_mib() -> float:
    """The resident set high-water mark of this process (VmHWM). Not ru_maxrss: on Linux a
    child process inherits its parent's ru_maxrss across fork and exec."""
    return _proc_status_mib("VmHWM")


def current_rss_mib() -> float:
    return _proc_status_mib("VmRSS")


def matmul_peak_gflops(size: int = 4096, repeats: int = 3) -> float:
    """Best float32 matrix-product rate of this machine's BLAS, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_flops(config, batch: int) -> float:
    """Flops of one training step's conv and fc products (see the module docstring)."""
    rows = layer_shapes(config)
    macs = sum(r[3] for r in rows)
    first_conv_macs = next(r[3] for r in rows if r[0].startswith("conv"))
    return 2.0 * batch * (3 * macs - first_conv_macs)


def make_batch(config, batch: int, seed: int = 0):
    """Random mean-centred images (pixel units, about +-50) and labels."""
    rng = np.random.default_rng(seed)
    size = config.input_size
    x = rng.standard_normal((batch, config.in_channels, size, size), dtype=np.float32)
    x *= np.float32(50.0)
    labels = rng.integers(0, config.num_classes, batch)
    return x, labels


# ---------------------------------------------------------------- tinyalex

class TinyalexStep:
    def __init__(self, preset: str, batch: int, impl: str = "fast"):
        self.net = AlexNet(preset, dtype=np.float32, impl=impl)
        self.opt = SGD(self.net.params, lr=0.01, momentum=0.9, weight_decay=5e-4,
                       impl=self.net.impl)
        self.x, self.labels = make_batch(self.net.config, batch)

    def __call__(self):
        loss, _, dlogits = self.net.loss(self.x, self.labels, train=True)
        grads = self.net.backward(dlogits)
        self.opt.step(self.net.params, grads)
        return float(loss)

    def eval_loss(self):
        logits = self.net.forward(self.x, train=False)
        return float(self.net.layers.softmax_cross_entropy(logits, self.labels)[0])


# ---------------------------------------------------------------- PyTorch

class TorchStep:
    """The same network in PyTorch eager mode; with ``params``, started from those weights."""

    def __init__(self, config, batch: int, params: dict | None = None):
        import torch
        from torch import nn

        modules, channels = [], config.in_channels
        for spec in config.convs:
            modules += [nn.Conv2d(channels, spec.out_channels, spec.kernel, spec.stride,
                                  spec.pad, groups=spec.groups), nn.ReLU()]
            if spec.lrn:  # PyTorch's alpha is divided by n: pass n * (the paper's alpha)
                modules.append(nn.LocalResponseNorm(config.lrn_n, alpha=config.lrn_n
                                                    * config.lrn_alpha, beta=config.lrn_beta,
                                                    k=config.lrn_k))
            if spec.pool:
                modules.append(nn.MaxPool2d(config.pool_size, config.pool_stride))
            channels = spec.out_channels
        modules.append(nn.Flatten())
        features = None
        for name, shape, _, _ in layer_shapes(config):
            if name.startswith("fc"):
                modules += [nn.LazyLinear(shape[0]), nn.ReLU(), nn.Dropout(config.dropout)]
                features = shape[0]
        modules = modules[:-2]  # the last fc (fc8) has neither ReLU nor dropout
        assert features == config.num_classes
        self.torch = torch
        self.net = nn.Sequential(*modules)
        x, labels = make_batch(config, batch)
        self.x = torch.from_numpy(x * np.float32(config.input_scale))
        self.labels = torch.from_numpy(labels)
        with torch.no_grad():
            self.net(self.x[:1])  # gives the lazy fc layers their input sizes
        if params is not None:
            learned = [m for m in self.net if isinstance(m, (nn.Conv2d, nn.Linear))]
            names = [n for n, *_ in layer_shapes(config) if n[:2] in ("co", "fc")]
            with torch.no_grad():
                for module, name in zip(learned, names, strict=True):
                    module.weight.copy_(torch.from_numpy(params[f"{name}.w"]))
                    module.bias.copy_(torch.from_numpy(params[f"{name}.b"]))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9,
                                   weight_decay=5e-4)
        self.loss_fn = nn.CrossEntropyLoss()

    def __call__(self):
        self.net.train()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.net(self.x), self.labels)
        loss.backward()
        self.opt.step()
        return loss.item()

    def eval_loss(self):
        self.net.eval()
        with self.torch.no_grad():
            return float(self.loss_fn(self.net(self.x), self.labels))


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- memory, in subprocesses

def child_memory(framework: str, preset: str, batch: int, steps: int, impl: str) -> dict:
    """Run in a fresh process: peak RSS of `steps` training steps of one framework."""
    if framework == "torch":
        import torch  # noqa: F401  (imported before the baseline reading, like numpy)
    after_imports = current_rss_mib()
    if framework == "tinyalex":
        step = TinyalexStep(preset, batch, impl)
    else:
        step = TorchStep(get_config(preset), batch)
    for _ in range(steps):
        step()
    return {"peak_mib": peak_rss_mib(), "after_imports_mib": after_imports}


def measure_memory(framework: str, preset: str, batch: int, impl: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child-memory", framework,
           "--preset", preset, "--batch", str(batch), "--impl", impl]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=None,
                        help="images per step (default: 32 for paper, 128 for mini)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each framework")
    parser.add_argument("--no-torch", action="store_true", help="time tinyalex only")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--peak-size", type=int, default=4096,
                        help="matrix size of the BLAS peak measurement")
    parser.add_argument("--impl", default="fast", choices=("textbook", "fast", "cuda"),
                        help="tinyalex's implementation of the layers (default fast)")
    parser.add_argument("--child-memory", choices=("tinyalex", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batch = args.batch or (32 if args.preset == "paper" else 128)

    if args.child_memory:
        print(json.dumps(child_memory(args.child_memory, args.preset, batch, 2, args.impl)))
        return

    use_torch = not args.no_torch and torch_available()
    if not args.no_torch and not use_torch:
        print("note: PyTorch is not installed; timing tinyalex alone (pip install torch "
              "for the comparison; it is never a dependency of tinyalex)")
    print(f"preset {args.preset}, batch {batch}, float32, implementation {args.impl}, "
          f"{args.steps} timed steps each"
          + (", alternating with PyTorch" if use_torch else ""))
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} "
          f"(1 min) at start; OPENBLAS_THREAD_TIMEOUT="
          f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}")
    peak = matmul_peak_gflops(args.peak_size)
    if use_torch:
        import torch
        print(f"numpy {np.__version__}, torch {torch.__version__} "
              f"({torch.get_num_threads()} threads)")
    print(f"float32 matrix-product peak (NumPy/OpenBLAS, {args.peak_size}^3): {peak:.0f} GFLOP/s")

    tiny = TinyalexStep(args.preset, batch, args.impl)
    contenders = {"tinyalex": tiny}
    if use_torch:
        contenders["pytorch"] = TorchStep(tiny.net.config, batch, tiny.net.params)
        a, b = tiny.eval_loss(), contenders["pytorch"].eval_loss()
        print(f"same network check, eval-mode loss: tinyalex {a:.6f}, pytorch {b:.6f}")
        if abs(a - b) > 1e-3 * max(1.0, abs(a)):
            raise SystemExit("the two networks disagree; the comparison would be meaningless")

    times = {name: [] for name in contenders}
    for step in contenders.values():
        step()  # warm-up: first-touch allocations, thread pools, lazy imports
    for _ in range(args.steps):
        for name, step in contenders.items():
            times[name].append(_seconds(step))
    flops = step_flops(tiny.net.config, batch)
    print(f"\n{'':<10}{'median s/step':>14}{'images/s':>10}{'GFLOP/s':>9}{'% of peak':>10}"
          f"   all steps (s)")
    medians = {}
    for name, seconds in times.items():
        medians[name] = float(np.median(seconds))
        rate = flops / medians[name] / 1e9
        print(f"{name:<10}{medians[name]:>14.3f}{batch / medians[name]:>10.1f}{rate:>9.1f}"
              f"{100 * rate / peak:>9.0f}%   " + " ".join(f"{s:.2f}" for s in seconds))
    if use_torch:
        print(f"ratio tinyalex / pytorch (images/s): "
              f"{medians['pytorch'] / medians['tinyalex']:.2f}")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at end")

    if not args.no_memory:
        print("\npeak memory (separate processes, resident set high-water mark):")
        mem = {name: measure_memory(fw, args.preset, batch, args.impl)
               for name, fw in (("tinyalex", "tinyalex"), ("pytorch", "torch"))
               if name in contenders}
        for name, m in mem.items():
            print(f"{name:<10} peak {m['peak_mib']:8.0f} MiB   "
                  f"peak - after imports {m['peak_mib'] - m['after_imports_mib']:8.0f} MiB")
        if "pytorch" in mem:
            t, p = mem["tinyalex"], mem["pytorch"]
            own = {name: m["peak_mib"] - m["after_imports_mib"] for name, m in mem.items()}
            print(f"ratio tinyalex / pytorch: peak {t['peak_mib'] / p['peak_mib']:.2f}, "
                  f"step itself {own['tinyalex'] / own['pytorch']:.2f}")


if __name__ == "__main__":
    main()
