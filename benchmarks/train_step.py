"""One AlexNet training step, tinyalex (NumPy) against PyTorch CPU, on this machine.

    python benchmarks/train_step.py                        # paper preset, batch 32
    python benchmarks/train_step.py --preset mini          # batch 128
    python benchmarks/train_step.py --threads 2 --busy 1   # a loaded laptop: one busy process
    TINYALEX_COMPILED=0 python benchmarks/train_step.py    # the NumPy fast path only

A step is what training does per batch: forward (train mode, dropout on), softmax
cross-entropy, backward, and the SGD update (momentum 0.9, weight decay 5e-4), float32.

Written so that it cannot flatter tinyalex:

- PyTorch is used as its user would: ``nn.Conv2d`` with ``groups``, ``nn.LocalResponseNorm``,
  ``nn.MaxPool2d``, ``torch.optim.SGD`` with momentum and weight decay, oneDNN on, the same
  warm-up steps. ``OMP_WAIT_POLICY=PASSIVE`` is set before PyTorch is imported: with the
  default policy its OpenMP threads spin between operations, and on a busy machine that alone
  cost it 4x (a flattering ratio for tinyalex that measured nothing about tinyalex).
- Each thread count (``--threads``, default 1 and 2) runs in a fresh process with
  OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, TINYALEX_THREADS and ``torch.set_num_threads``
  all set to it; inside it the two frameworks take one step each in turn (alternating, so
  that a shared machine slows both alike), and the ratio of the median step times is the
  figure (> 1: tinyalex is faster).
- It prints the load average (quiet below 1.5; a warning above), the float32 BLAS peak at
  that thread count and OpenBLAS's kernel architecture (threadpoolctl), so that a "% of peak"
  is read against the machine's state at the time. ``--busy k`` starts k busy processes
  for the duration, to show what a loaded laptop does to both.
- Peak memory: allocations inside BLAS or PyTorch are invisible to tracemalloc, so each
  framework runs a few steps alone in a fresh subprocess and reports its peak resident set
  size, and that peak minus the resident size just after the imports.
- GFLOP/s: multiply-adds of the conv and fc layers (``tinyalex.model.layer_shapes``) x 2
  flops x 3 (forward, input gradient, weight gradient) minus conv1's input gradient, which
  neither framework computes.

PyTorch is optional (``pip install -e ".[bench]"``): without it the script says so and times
tinyalex alone. The PyTorch network is built from the same config (``nn.LocalResponseNorm(n,
alpha=n * alpha, beta, k)``: PyTorch divides alpha by n) and starts from tinyalex's weights;
the script checks that both give the same loss before timing.
"""

from __future__ import annotations

import os

# PyTorch's OpenMP threads must not spin: read when PyTorch is first imported (see above)
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

# isort: off
import tinyalex.threads  # noqa: F401  (first, before NumPy loads OpenBLAS; see the module)

# isort: on
import argparse
import json
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


# ---------------------------------------------------------------- one thread count

QUIET_LOAD = 1.5  # a 1-minute load average below this: the machine counts as quiet


def blas_description() -> str:
    """OpenBLAS's version, kernel architecture and threads, as threadpoolctl reports them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"kernels, {i.get('num_threads')} threads" for i in blas) or "none found"


def measure(args, batch: int, threads: int) -> dict:
    """Run in a fresh process with every thread count set to ``threads``: alternate steps."""
    use_torch = not args.no_torch and torch_available()
    from tinyalex.fast import parallel

    try:
        from tinyalex.fast import compiled
        built = compiled.kernels(np.float32) is not None
    except ImportError:  # a tinyalex from before the compiled kernels (an A/B comparison)
        built = False
    result = {"threads": threads, "load_start": os.getloadavg()[0],
              "blas": blas_description(), "peak_gflops": matmul_peak_gflops(args.peak_size),
              "tinyalex_threads": parallel.cpu_count(),
              "compiled": args.impl == "fast" and built,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset")}
    tiny = TinyalexStep(args.preset, batch, args.impl)
    contenders = {"tinyalex": tiny}
    if use_torch:
        import torch
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = True
        result["torch"] = f"{torch.__version__}, oneDNN {torch.backends.mkldnn.is_available()}"
        contenders["pytorch"] = TorchStep(tiny.net.config, batch, tiny.net.params)
        a, b = tiny.eval_loss(), contenders["pytorch"].eval_loss()
        result["losses"] = [a, b]
        if abs(a - b) > 1e-3 * max(1.0, abs(a)):
            raise SystemExit(f"the two networks disagree (eval loss {a} vs {b}); the "
                             "comparison would be meaningless")
    for step in contenders.values():
        for _ in range(args.warmup):
            step()  # first-touch allocations, thread pools, lazy imports, compilation
    times = {name: [] for name in contenders}
    for _ in range(args.steps):
        for name, step in contenders.items():
            times[name].append(_seconds(step))
    result["times"] = times
    result["load_end"] = os.getloadavg()[0]
    return result


def run_threads(args, batch: int, threads: int) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               TINYALEX_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, os.path.abspath(__file__), "--child-threads", str(threads),
           "--preset", args.preset, "--batch", str(batch), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--peak-size", str(args.peak_size),
           "--impl", args.impl] + (["--no-torch"] if args.no_torch else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"the {threads}-thread run failed:\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_result(r: dict, flops: float, batch: int) -> dict:
    load = max(r["load_start"], r["load_end"])
    print(f"\n{r['threads']} thread{'s' if r['threads'] > 1 else ''}: BLAS {r['blas']}; "
          f"float32 product peak {r['peak_gflops']:.0f} GFLOP/s; load average "
          f"{r['load_start']:.2f} -> {r['load_end']:.2f}"
          + ("" if load < QUIET_LOAD else "  (NOT QUIET: figures taken under load)"))
    print(f"  tinyalex {r['tinyalex_threads']} thread(s), compiled kernels "
          f"{'on' if r['compiled'] else 'off'}; OMP_WAIT_POLICY={r['omp_wait_policy']}")
    if "torch" in r:
        print(f"  torch {r['torch']}; eval-mode loss tinyalex {r['losses'][0]:.6f}, "
              f"pytorch {r['losses'][1]:.6f}")
    print(f"{'':<10}{'median s/step':>14}{'images/s':>10}{'GFLOP/s':>9}{'% of peak':>10}"
          f"   all steps (s)")
    medians = {}
    for name, seconds in r["times"].items():
        medians[name] = float(np.median(seconds))
        rate = flops / medians[name] / 1e9
        print(f"{name:<10}{medians[name]:>14.3f}{batch / medians[name]:>10.1f}{rate:>9.1f}"
              f"{100 * rate / r['peak_gflops']:>9.0f}%   " + " ".join(f"{s:.3f}" for s in seconds))
    if "pytorch" in medians:
        print(f"ratio tinyalex / pytorch at {r['threads']} thread{'s' if r['threads'] > 1 else ''}"
              f" (images/s): {medians['pytorch'] / medians['tinyalex']:.2f}")
    return medians


def start_busy(k: int) -> list:
    """k processes that each keep one core busy (a loaded laptop); the caller ends them."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=None,
                        help="images per step (default: 32 for paper, 128 for mini)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each framework")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each first")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts, each in a fresh process (default: 1 2)")
    parser.add_argument("--busy", type=int, default=0, metavar="K",
                        help="start K busy processes for the duration (a loaded machine)")
    parser.add_argument("--no-torch", action="store_true", help="time tinyalex only")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--peak-size", type=int, default=4096,
                        help="matrix size of the BLAS peak measurement")
    parser.add_argument("--impl", default="fast", choices=("textbook", "fast", "cuda"),
                        help="tinyalex's implementation of the layers (default fast)")
    parser.add_argument("--child-memory", choices=("tinyalex", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batch = args.batch or (32 if args.preset == "paper" else 128)
    if args.busy < 0 or any(t < 1 for t in args.threads):
        parser.error("--busy must be >= 0 and --threads >= 1")

    if args.child_memory:
        print(json.dumps(child_memory(args.child_memory, args.preset, batch, 2, args.impl)))
        return
    if args.child_threads:
        print(json.dumps(measure(args, batch, args.child_threads)))
        return

    use_torch = not args.no_torch and torch_available()
    if not args.no_torch and not use_torch:
        print("note: PyTorch is not installed; timing tinyalex alone (pip install -e "
              "'.[bench]' for the comparison; it is never a dependency of tinyalex)")
    load = os.getloadavg()[0]
    print(f"preset {args.preset}, batch {batch}, float32, tinyalex implementation {args.impl} "
          f"(TINYALEX_COMPILED={os.environ.get('TINYALEX_COMPILED', 'unset')}), "
          f"{args.warmup} warm-up + {args.steps} timed steps each"
          + (", alternating with PyTorch" if use_torch else ""))
    print(f"machine: {os.cpu_count()} cpus, load average {load:.2f} (1 min) before the run: "
          + ("quiet" if load < QUIET_LOAD else f"WARNING: not quiet (>= {QUIET_LOAD}); "
             "the figures are taken under load and say how both cope with it, not their "
             "quiet speed"))
    print(f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} (set before PyTorch is imported), "
          f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}, "
          f"numpy {np.__version__}")
    busy = start_busy(args.busy)
    if busy:
        print(f"--busy {args.busy}: started {args.busy} busy process(es) (pid"
              f"{'s' if len(busy) > 1 else ''} {' '.join(str(b.pid) for b in busy)}) for the "
              "duration")
    flops = step_flops(get_config(args.preset), batch)
    ratios = {}
    try:
        for threads in args.threads:
            medians = print_result(run_threads(args, batch, threads), flops, batch)
            if "pytorch" in medians:
                ratios[threads] = medians["pytorch"] / medians["tinyalex"]
    finally:
        for process in busy:
            process.kill()
            process.wait()
    if ratios:
        print("\nratios tinyalex / pytorch: " + ", ".join(
            f"{t} thread{'s' if t > 1 else ''} {r:.2f}" for t, r in ratios.items())
            + (f" (with {args.busy} busy process(es))" if args.busy else ""))
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at end")

    if not args.no_memory:
        print("\npeak memory (separate processes, resident set high-water mark):")
        mem = {name: measure_memory(fw, args.preset, batch, args.impl)
               for name, fw in (("tinyalex", "tinyalex"), ("pytorch", "torch"))
               if name == "tinyalex" or use_torch}
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
