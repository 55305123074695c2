"""Rule out a bug: the same training steps in tinyalex and in PyTorch, side by side.

    python benchmarks/compare_torch.py --data FOLDER [--config paper] [--steps 5]

Builds the run exactly as ``python -m tinyalex.train --data FOLDER --config NAME`` would (same
seed, same weights, same training mean, same augmented batches), then the same network in
PyTorch started from tinyalex's initial weights, and takes ``--steps`` steps of the paper's SGD
(section 5) in both:

    v <- momentum v - weight_decay * lr * w - lr * dL/dw     (no decay on the biases)
    w <- w + v

on the same batch each step, with the same dropout masks (drawn from a copy of tinyalex's
dropout generator). After every step it prints both losses, the largest difference of any
parameter relative to how far that parameter has moved from its initial value, and how many
of fc7's ReLUs are on. ``--float64`` runs both in double precision, where rounding no longer
hides a difference in the mathematics. Agreement to rounding means the two programs compute
the same thing; whatever the loss does then is the paper's recipe on that data, not a bug.

PyTorch is not a dependency of tinyalex: without it the script says so and exits.
PyTorch's LocalResponseNorm divides its alpha by n, so the paper's LRN is
``nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2)``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def torch_modules(net):
    """{step name: torch module} for the conv, fc, ReLU, LRN and pool steps of ``net``."""
    import torch
    from torch import nn

    cfg = net.config
    modules = {}
    conv_specs = iter(cfg.convs)
    for step in net.steps:
        if step.kind == "conv":
            spec = next(conv_specs)
            w = net.params[f"{step.name}.w"]
            m = nn.Conv2d(w.shape[1] * spec.groups, spec.out_channels, spec.kernel, spec.stride,
                          spec.pad, groups=spec.groups)
        elif step.kind == "fc":
            w = net.params[f"{step.name}.w"]
            m = nn.Linear(w.shape[1], w.shape[0])
        elif step.kind == "relu":
            m = nn.ReLU()
        elif step.kind == "lrn":  # PyTorch divides alpha by n: pass n * the paper's alpha
            m = nn.LocalResponseNorm(cfg.lrn_n, alpha=cfg.lrn_n * cfg.lrn_alpha,
                                     beta=cfg.lrn_beta, k=cfg.lrn_k)
        elif step.kind == "pool":
            m = nn.MaxPool2d(cfg.pool_size, cfg.pool_stride)
        else:
            continue  # dropout: applied by hand with tinyalex's masks
        if step.kind in ("conv", "fc"):
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.array(net.params[f"{step.name}.w"])))
                m.bias.copy_(torch.from_numpy(np.array(net.params[f"{step.name}.b"])))
        modules[step.name] = m
    return modules


def torch_forward(net, modules, x, masks):
    """Logits of the PyTorch copy; ``masks`` are the dropout masks, in step order."""
    import torch

    masks = iter(masks)
    h = torch.from_numpy(x) * float(net.config.input_scale)
    relu7 = None
    for step in net.steps:
        if step.kind == "dropout":
            h = h * torch.from_numpy(next(masks))
            continue
        if step.kind == "fc" and h.ndim > 2:
            h = h.reshape(h.shape[0], -1)
        h = modules[step.name](h)
        if step.name == "relu7":
            relu7 = h
    return h, relu7


def dropout_masks(net, batch: int, dtype) -> list[np.ndarray]:
    """The masks tinyalex's next training forward pass will draw (its counter-based noise:
    a pure function of the seed, the step counter, the layer, the sample and the unit)."""
    masks = []
    sizes = list(net.config.hidden)
    for step, size in zip([s for s in net.steps if s.kind == "dropout"], sizes, strict=True):
        p = step.options["p"]
        like = np.zeros((batch, size), dtype=dtype)
        uniform = net.dropout_noise(step, like).random((batch, size), dtype=np.float32)
        keep = np.asarray(uniform) >= p  # as layers.dropout_forward
        masks.append(keep.astype(dtype) * dtype(1 / (1 - p)))
    return masks


def paper_sgd_torch(params: dict, velocity: dict, lr: float, momentum: float, wd: float):
    """The paper's update on PyTorch tensors (weights decay, biases do not)."""
    import torch

    with torch.no_grad():
        for name, p in params.items():
            v = velocity[name]
            v.mul_(momentum)
            if name.endswith(".w"):
                v.sub_(wd * lr * p)
            v.sub_(lr * p.grad)
            p.add_(v)
            p.grad = None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a train/<class>/ folder (or builtin)")
    p.add_argument("--config", default="paper", help="tinyalex preset (default paper)")
    p.add_argument("--steps", type=int, default=5, help="training steps to compare (5)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--lr", type=float, default=None, help="default: the preset's (0.01)")
    p.add_argument("--float64", action="store_true", help="both in double precision")
    args = p.parse_args(argv)
    try:
        import torch
        from torch import nn
    except ImportError:
        print("PyTorch is not installed (pip install torch); nothing compared")
        return 0
    from tinyalex import train
    from tinyalex.backend import to_numpy
    from tinyalex.model import AlexNet
    from tinyalex.optim import SGD

    train_argv = ["--data", args.data, "--config", args.config, "--num-workers", "0",
                  "--device", "cpu"]
    if args.batch_size:
        train_argv += ["--batch-size", str(args.batch_size)]
    if args.lr:
        train_argv += ["--lr", str(args.lr)]
    run = train.Run(train.parse_args(train_argv))
    net, opt = run.net, run.opt
    dtype = np.float64 if args.float64 else np.float32
    if args.float64:  # the same weights, drawn again in double precision
        net = AlexNet(net.config, seed=run.seed, dtype=np.float64)
        opt = SGD(net.params, opt.lr, opt.momentum, opt.weight_decay)
        torch.set_default_dtype(torch.float64)
    initial = {name: np.array(w) for name, w in net.params.items()}
    modules = torch_modules(net)
    tparams = {f"{name}.{k}": getattr(m, {"w": "weight", "b": "bias"}[k])
               for name, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))
               for k in ("w", "b")}
    velocity = {name: torch.zeros_like(t) for name, t in tparams.items()}
    print(f"{net.config.name} preset, {len(run.classes)} classes, batch "
          f"{run.hp['batch_size']}, lr {opt.lr:g}, momentum {opt.momentum:g}, weight decay "
          f"{opt.weight_decay:g}; torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), numpy {np.__version__}, {np.dtype(dtype).name}; ln(classes) = "
          f"{np.log(len(run.classes)):.4f}")
    print(f"{'step':>4} {'loss tinyalex':>14} {'loss torch':>12} {'rel diff':>9} "
          f"{'param diff / move':>17} {'(param)':>8} {'fc7 ReLUs on':>13}")
    epoch = 0
    batches = run.loader(epoch).iterate(start=0)
    loss_fn = nn.CrossEntropyLoss()
    worst = 0.0
    for step in range(1, args.steps + 1):
        try:
            x, y = next(batches)
        except StopIteration:  # the next epoch's batches, as training would see them
            epoch += 1
            batches = run.loader(epoch).iterate(start=0)
            x, y = next(batches)
        x = x.astype(dtype)
        masks = dropout_masks(net, len(y), dtype)
        loss, logits, dlogits = net.loss(x, y, train=True)
        opt.step(net.params, net.backward(dlogits))

        t_logits, relu7 = torch_forward(net, modules, x, masks)
        t_loss = loss_fn(t_logits, torch.from_numpy(np.asarray(y)))
        t_loss.backward()
        t_loss = float(t_loss.detach())
        paper_sgd_torch(tparams, velocity, opt.lr, opt.momentum, opt.weight_decay)

        # difference / distance travelled from the initial value, per parameter tensor
        diffs = {name: float(np.abs(to_numpy(net.params[name]) - t.detach().numpy()).max()
                             / max(float(np.abs(t.detach().numpy() - initial[name]).max()),
                                   1e-30))
                 for name, t in tparams.items()}
        name = max(diffs, key=diffs.get)
        rel = abs(float(loss) - t_loss) / max(abs(t_loss), 1e-30)
        worst = max(worst, rel, diffs[name])
        on = float((relu7 > 0).float().mean())
        print(f"{step:>4} {float(loss):>14.6f} {t_loss:>12.6f} {rel:>9.1e} "
              f"{diffs[name]:>17.1e} {name:>8} {100 * on:>12.1f}%", flush=True)
    print(f"largest relative difference over {args.steps} steps: {worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
