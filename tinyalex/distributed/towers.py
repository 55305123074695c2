"""The paper's two GPUs as two processes (section 3.2, figure 2): each rank computes one tower.

Section 3.2: the net is spread across two GPUs, half of the kernels (or neurons) on each,
and "the GPUs communicate only in certain layers": the kernels of layer 3 take input from
all kernel maps of layer 2, those of layer 4 only from the maps of layer 3 on their own GPU.
On one device tinyalex writes that arithmetic as grouped convolutions (``groups=2`` on
conv2, conv4, conv5). Here the two halves are two processes, rank 0 and rank 1, and what
the single device got for free now crosses between them.

Who owns what. Every learned layer's *outputs* are split in two consecutive blocks
(``share(F, rank, 2)``): the kernels of conv1 .. conv5, the neurons of fc6 and fc7, and the
classes of fc8 -- so every parameter (weights (F, ...) and biases (F,)) is split along its
first axis, and a checkpoint is the two halves put back together. fc8 is split by classes
too (rather than copied on both ranks): no weight is held twice, and the logits cost only
B x 500 numbers to exchange. Both ranks see the whole batch of images (the same loader,
the same seed), as both of the paper's GPUs did.

What crosses, per step, with B images (paper preset, B = 128, float32: each rank sends):

    where           forward: each rank sends           backward: each rank sends
    norm1 (LRN)     its n//2 = 2 maps next to the      g b / s of those 2 maps (see below)
                    seam  (B, 2, 55, 55)   6.2 MB*     (B, 2, 55, 55)
    norm2 (LRN)     (B, 2, 27, 27)         1.5 MB*     (B, 2, 27, 27)
    into conv3      its half of pool2 (B, 128, 13, 13) the gradient of the OTHER half of pool2
                                          22.2 MB*     (B, 128, 13, 13)
    into fc6        its half of pool5 (B, 128, 6, 6)   the other half's gradient   4.7 MB*
    into fc7        its half of fc6's units (B, 2048)  the other half's gradient   2.1 MB*
    into fc8        its half of fc7's units (B, 2048)  the other half's gradient   2.1 MB*
    logits          its 500 classes (B, 500)  0.3 MB   nothing
    (* forward + backward)                             in all: about 39 MB per rank per step,
                                                       against 244 MB for data parallelism

Why the backward pass sends the gradient of the *other* half: rank 0's conv3 kernels read
both halves of pool2, so their backward pass computes a gradient for both halves; the part
for rank 1's half belongs to rank 1, which adds it to what its own kernels computed (a
reduce-scatter of two). The logits are exchanged forward, so both ranks compute the same
softmax over all classes, the same loss and the same dL/dlogits: nothing crosses back.

LRN at the seam. tinyalex's single-device network normalises across *all* channels
(section 3.3's sum over the N maps at one position), so the windows of the n//2 maps on
each side of the middle reach into the other tower. Each rank therefore receives the other
tower's n//2 maps next to the seam (the *halo*), normalises its maps with the halo
appended, and keeps its own. Backward, the gradient of a map j near the seam has terms from
the maps i of the other tower inside its window,
``- 2 alpha beta a[j] sum_i g[i] b[i] / s[i]`` (``tinyalex.layers.lrn``); the owner of i
computes ``g[i] b[i] / s[i]`` and sends it. With that exchange the two processes compute
exactly the single-device network (Krizhevsky's 2012 code instead normalised within each
tower, so its towers never exchanged anything there).

The dropout masks are the single process's: ``tinyalex.noise`` draws them by global unit, and
each rank passes the index of its first unit (``unit_offset``).
"""

from __future__ import annotations

import numpy as np

from tinyalex.backend import get_array_module, to_numpy
from tinyalex.distributed import volume
from tinyalex.distributed.parallel_run import ParallelRun
from tinyalex.distributed.placement import share
from tinyalex.layers.lrn import channel_window_sum
from tinyalex.model import AlexNet, Step, layer_shapes
from tinyalex.optim import SGD


def owned_units(config, rank: int) -> dict[str, tuple[int, int, int]]:
    """{learned layer: (lo, hi, total)}: the outputs of each layer that tower ``rank`` owns."""
    owned = {}
    for name, shape, params, _ in layer_shapes(config):
        if params:
            owned[name] = (*share(shape[0], rank, 2), shape[0])
    return owned


def check_towers(config) -> None:
    """ValueError unless the network splits into two towers as the paper's does."""
    previous_channels = config.in_channels
    for i, spec in enumerate(config.convs, start=1):
        if spec.groups not in (1, 2) or (i == 1 and spec.groups != 1):
            raise ValueError(f"two towers: conv{i} has groups={spec.groups}; the towers need "
                             "groups=1 on conv1 and groups 1 or 2 elsewhere")
        if spec.out_channels % 2 or previous_channels % 2 and i > 1:
            raise ValueError(f"two towers: conv{i} needs an even number of channels in and out")
        if spec.lrn and spec.out_channels // 2 < 2 * (config.lrn_n // 2):
            raise ValueError(f"two towers: conv{i}'s {spec.out_channels // 2} maps per tower are"
                             f" too few for an LRN window of {config.lrn_n} at the seam")
        previous_channels = spec.out_channels


class TowerNet(AlexNet):
    """One tower of an AlexNet: this rank's half of every layer, and the exchanges between them.

    ``TowerNet(net, comm)``: from a whole ``AlexNet`` (on every rank the same, e.g. from the
    same seed), keep rank ``comm.rank``'s half. ``forward(x)`` takes the whole batch of images
    (N, C, H, W) and returns the logits of all classes (N, classes), the same on both ranks;
    ``backward(dlogits)`` returns the gradients of this rank's parameters. Both must be
    called by the two ranks together. ``params`` holds this rank's blocks, under the whole
    network's names (``conv1.w`` is (48, 3, 11, 11) here, (96, 3, 11, 11) in the whole net).
    """

    def __init__(self, net: AlexNet, comm):
        if comm.size != 2:
            raise ValueError(f"two towers need 2 processes, not {comm.size}")
        check_towers(net.config)
        self.comm, self.rank = comm, comm.rank
        self.config, self.seed = net.config, net.seed
        self.dropout_step, self.sample_offset = net.dropout_step, net.sample_offset
        self.owned = owned_units(net.config, self.rank)
        self.full_shapes = {name: tuple(p.shape) for name, p in net.params.items()}
        self.params = {name: self.take(name, p).copy() for name, p in net.params.items()}
        # A tower's convolutions run ungrouped on what it holds: a grouped conv reads only its
        # own tower's maps; an ungrouped one after the first (conv3) reads both towers' maps,
        # gathered first.
        self.reads_both = {}
        self.steps = []
        for step in net.steps:
            options = dict(step.options)
            if step.kind == "conv":
                self.reads_both[step.name] = options["groups"] == 1 and step is not net.steps[0]
                options["groups"] = 1
            self.steps.append(Step(step.name, step.kind, options))
        self.activations: dict = {}
        self._caches = None
        self.unit_offset = 0  # AlexNet.dropout_noise draws from here: this block's first unit
        self._impl_request = net._impl_request
        self._choose_impl()

    def take(self, name: str, array):
        """This rank's block of a whole-network parameter (or velocity) ``name``."""
        lo, hi, _ = self.owned[name.split(".")[0]]
        return array[lo:hi]

    def gather_full(self, arrays: dict) -> dict | None:
        """The whole-network arrays, from both ranks' blocks, on rank 0 (None on rank 1)."""
        full = {}
        for name, array in arrays.items():
            blocks = self.comm.gather_to_root(to_numpy(array))
            if blocks is not None:
                full[name] = np.concatenate(blocks, axis=0)
        return full if self.rank == 0 else None

    def num_params(self) -> int:
        """The parameters of the whole network (both towers)."""
        return int(sum(np.prod(shape) for shape in self.full_shapes.values()))

    # -- the exchanges ------------------------------------------------------------------------

    def gather(self, x, split):
        """Both towers' blocks of x along axis 1 (channels or units), from this rank's block.

        split: (lo, hi, total), the block x holds. Sends x; receives the other block.
        """
        if split is None:
            return x
        lo, hi, total = split
        theirs = self.comm.exchange(x, (x.shape[0], total - (hi - lo), *x.shape[2:]))
        xp = get_array_module(x)
        return xp.concatenate((x, theirs) if self.rank == 0 else (theirs, x), axis=1)

    def scatter_sum(self, dx, split):
        """The backward pass of ``gather``: dx covers both blocks; send the other rank its block,
        and add what it computed for ours."""
        if split is None:
            return dx
        lo, hi, _ = split
        theirs = dx[:, hi:] if self.rank == 0 else dx[:, :lo]
        mine = dx[:, lo:hi]
        return mine + self.comm.exchange(theirs, mine.shape)

    def seam_lrn_forward(self, x, step: Step):
        """LRN over all channels of both towers, computed on this tower's (B, C, H, W) maps."""
        o, L = step.options, self.layers
        h = o["n"] // 2
        if h == 0:  # a window of one channel never reaches the other tower
            out, inner = L.lrn_forward(x, **o)
            return out, ("plain", inner)
        xp = get_array_module(x)
        C, first = x.shape[1], self.rank == 0
        seam = slice(C - h, C) if first else slice(0, h)  # my maps next to the seam
        halo = self.comm.exchange(x[:, seam], x[:, seam].shape)  # the other tower's (B, h, ..)
        ext = xp.concatenate((x, halo) if first else (halo, x), axis=1)  # (B, C + h, H, W)
        out_ext, inner = L.lrn_forward(ext, **o)
        own = slice(0, C) if first else slice(h, h + C)
        out = xp.ascontiguousarray(out_ext[:, own])
        # s[i] = k + alpha * (window sum of a^2) of my seam maps, for the backward pass; their
        # windows lie inside the 3h maps around the seam (the halo's own scale is the peer's).
        near = ext[:, C - 2 * h:C + h] if first else ext[:, :3 * h]  # (B, 3h, H, W)
        seam_scale = o["k"] + o["alpha"] * channel_window_sum(near * near, o["n"])[:, h:2 * h]
        return out, ("seam", inner, ext.shape, own, seam, x[:, seam], out[:, seam], seam_scale, o)

    def seam_lrn_backward(self, dout, cache):
        """dx of ``seam_lrn_forward``: this tower's terms, plus the other tower's near the seam."""
        if cache[0] == "plain":
            return self.layers.lrn_backward(dout, cache[1])
        _, inner, ext_shape, own, seam, a_seam, b_seam, s_seam, o = cache
        xp = get_array_module(dout)
        h, first = o["n"] // 2, self.rank == 0
        # g[i] b[i] / s[i] of my seam maps: what the other tower's maps j near the seam need
        terms = dout[:, seam] * b_seam / s_seam  # (B, h, H, W)
        their_terms = self.comm.exchange(terms, terms.shape)
        # this tower's part: the halo gets no gradient here (its owner computes its own)
        dout_ext = xp.zeros(ext_shape, dtype=dout.dtype)
        dout_ext[:, own] = dout
        dx = xp.ascontiguousarray(self.layers.lrn_backward(dout_ext, inner)[:, own])
        # the other tower's part: sum over its maps i within the window of my seam map j
        zeros = xp.zeros_like(terms)
        both = xp.concatenate((zeros, their_terms) if first else (their_terms, zeros), axis=1)
        reach = channel_window_sum(both, o["n"])  # (B, 2h, H, W)
        reach = reach[:, :h] if first else reach[:, h:]
        dx[:, seam] -= 2 * o["alpha"] * o["beta"] * a_seam * reach
        return dx

    # -- the network --------------------------------------------------------------------------

    def forward(self, x, train: bool = False, keep_activations: bool = False):
        """Logits (N, classes) of all classes for the whole batch x (N, C, H, W), on both ranks.

        Walks the steps of ``AlexNet.forward`` on this tower's blocks; gathers both towers'
        blocks into conv3 and into every fc layer, and the seam maps at each LRN.
        """
        expected = (self.config.in_channels, self.config.input_size, self.config.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"TowerNet({self.config.name}): input must be (N, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}), got {tuple(x.shape)}")
        caches = []
        self.activations, self._caches = {}, None
        with self.comm.together("the towers' forward pass"):
            x = self.scale_input(x)
            split = None  # x holds both towers' channels (the images), or block (lo, hi, total)
            for step in self.steps:
                gathered = None
                if step.kind == "fc" or (step.kind == "conv" and self.reads_both[step.name]):
                    gathered, x, split = split, self.gather(x, split), None
                if step.kind == "lrn":
                    x, cache = self.seam_lrn_forward(x, step)
                else:
                    if step.kind == "dropout":  # global index of this block's first unit
                        self.unit_offset = split[0] * int(np.prod(x.shape[2:]))
                    x, cache = self.step_forward(step, x, train)
                if step.kind in ("conv", "fc"):
                    split = self.owned[step.name]
                caches.append((gathered, cache))
                if keep_activations:
                    self.activations[step.name] = x
            logits = self.gather(x, split)
        self._caches = caches
        self.dropout_step += bool(train)
        return logits

    def backward(self, dlogits, input_grad: bool = False) -> dict:
        """This rank's parameter gradients from dL/dlogits (N, classes) of all classes."""
        if input_grad:
            raise ValueError("TowerNet.backward: input_grad is not available (each tower "
                             "holds half of conv1); use a single-process AlexNet")
        if self._caches is None:
            raise RuntimeError("TowerNet.backward needs a preceding forward(x)")
        xp = get_array_module(dlogits)
        grads = {}
        with self.comm.together("the towers' backward pass"):
            lo, hi, _ = self.owned[self.steps[-1].name]
            dx = xp.ascontiguousarray(dlogits[:, lo:hi])  # both ranks hold all of dL/dlogits
            for step, (gathered, cache) in zip(reversed(self.steps), reversed(self._caches),
                                               strict=True):
                if step.kind == "lrn":
                    dx = self.seam_lrn_backward(dx, cache)
                else:
                    dx, step_grads = self.step_backward(step, dx, cache,
                                                        input_grad=step is not self.steps[0])
                    grads.update(step_grads)
                dx = self.scatter_sum(dx, gathered)
        return {name: grads[name] for name in self.params}


class TowerRun(ParallelRun):
    """``tinyalex.run.Run`` with the network split into two towers.

    ``Run.__init__`` builds the whole network on both ranks (from --seed, or the checkpoint),
    then each keeps its tower's half of the weights and of the momentum. Checkpoints hold the
    whole network: rank 0 gathers both halves and writes what a single process writes.
    """

    def __init__(self, args, resume=None, *, comm):
        super().__init__(args, resume, comm=comm)
        whole, velocity = self.net, self.opt.velocity
        self.net = TowerNet(whole, comm)
        self.opt = SGD(self.net.params, self.opt.lr, self.opt.momentum, self.opt.weight_decay,
                       impl=self.opt.impl)
        for name, v in self.opt.velocity.items():
            v[...] = self.net.take(name, velocity[name])
        batch, config = self.hp["batch_size"], self.net.config
        towers = volume.tower_bytes(config, batch, comm.rank)
        print(f"parallel: two towers (section 3.2), rank 0 conv1 kernels "
              f"{self.net.owned['conv1'][0]}-{self.net.owned['conv1'][1]}, rank 1 the rest; "
              f"each process sends {towers / 1e6:.1f} MB per step of {batch} images (data "
              f"parallelism: {volume.data_parallel_bytes(config, 2) / 1e6:.1f} MB)", flush=True)

    def save(self, path) -> None:
        """Rank 0 gathers both towers' halves and writes the whole network's checkpoint."""
        with self.comm.together("gathering the towers' parameters"):
            params = self.net.gather_full(self.net.params)
            velocity = self.net.gather_full(self.opt.velocity)
        if not self.is_writer:
            return
        mine = self.net.params, self.opt.velocity
        self.net.params, self.opt.velocity = params, velocity  # what a single process saves
        try:
            super().save(path)
        finally:
            self.net.params, self.opt.velocity = mine
