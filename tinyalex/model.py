"""AlexNet (section 3.5, figure 2) as a list of layer steps over a dict of parameters.

The network is data, not code: ``AlexNetConfig`` lists the five convolutions and the fully
connected sizes, and ``AlexNet.steps`` turns that into the paper's sequence

    conv1 relu1 norm1 pool1  conv2 relu2 norm2 pool2  conv3 relu3  conv4 relu4  conv5 relu5 pool5
    fc6 relu6 drop6  fc7 relu7 drop7  fc8

(``ConvSpec(pool_before_lrn=True)`` swaps a block's norm and pool, the order of the 2012
code's conv1), which ``forward`` walks calling the layer functions of the chosen implementation
(``tinyalex.layers``, ``tinyalex.fast`` or ``tinyalex.cuda.layers``) and ``backward`` walks
in reverse. Parameters and gradients are plain dicts of arrays with the same keys
(``conv1.w``, ``conv1.b``, ..., ``fc8.b``), so a notebook can print and poke at everything.

Three presets:

- ``paper``: exactly the network of section 3.5: 3x227x227 input, 60,965,224 parameters.
- ``mini``: the same steps and mechanisms (grouped conv2/4/5, LRN after relu1 and relu2,
  overlapping 3/2 pools, dropout 0.5) at a quarter of the width on 3x63x63 crops of 72x72
  images, so that it trains in minutes on a laptop CPU.
- ``fashion``: the same mechanisms sized for Fashion-MNIST's 28x28 images (conv1 at stride
  1, 32 to 96 channels, hidden layers of 1024, dropout 0.25), 1,475,786 parameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from tinyalex import layers
from tinyalex.backend import is_gpu_array, to_device
from tinyalex.impl import impl_module, resolve_impl
from tinyalex.noise import DropoutNoise


@dataclass(frozen=True)
class ConvSpec:
    """One convolutional block: conv -> ReLU [-> LRN] [-> 3/2 max-pool].

    pool_before_lrn: conv -> ReLU -> max-pool -> LRN instead (when the block has both). The
    paper normalises and then pools (section 3.3: LRN "after applying the ReLU
    nonlinearity in certain layers", section 3.5: max-pooling follows the normalization
    layers); the 2012 cuda-convnet definitions pool conv1 first and then normalise, the order
    CaffeNet later used. The same two layers, in the other order.
    """

    out_channels: int
    kernel: int
    stride: int = 1
    pad: int = 0
    groups: int = 1  # 2 = the paper's two-GPU split (section 3.2)
    lrn: bool = False  # local response normalization after the ReLU (section 3.3)
    pool: bool = False  # overlapping max-pool after the ReLU / LRN (section 3.4)
    pool_before_lrn: bool = False  # True: pool, then LRN (the 2012 code's conv1; not the paper)


@dataclass(frozen=True)
class AlexNetConfig:
    """Everything that defines the network's shape and initialisation."""

    name: str = "paper"
    image_size: int = 256  # images are rescaled so the shorter side is this, then centre-cropped
    input_size: int = 227  # the crop the network sees: the paper says 224, but (224 - 11) / 4
    #                       + 1 is not an integer; 227 gives the paper's 55 x 55 after conv1
    in_channels: int = 3
    # The net's input is the mean-centred RGB image in 0..255 units (section 2). It is
    # multiplied by input_scale first: the paper feeds the raw values (1.0); the mini preset
    # scales them to about unit variance (1/64) so that He initialisation starts well.
    input_scale: float = 1.0
    convs: tuple[ConvSpec, ...] = (
        ConvSpec(96, 11, stride=4, lrn=True, pool=True),  # conv1: 96 x 55 x 55 -> 27 x 27
        ConvSpec(256, 5, pad=2, groups=2, lrn=True, pool=True),  # conv2: 256 x 27 x 27 -> 13
        ConvSpec(384, 3, pad=1),  # conv3 reads both towers
        ConvSpec(384, 3, pad=1, groups=2),  # conv4
        ConvSpec(256, 3, pad=1, groups=2, pool=True),  # conv5: 256 x 13 x 13 -> 6 x 6
    )
    hidden: tuple[int, ...] = (4096, 4096)  # fc6, fc7
    num_classes: int = 1000  # fc8
    dropout: float = 0.5  # on the outputs of fc6 and fc7 (section 4.2)
    lrn_n: int = 5  # LRN constants of section 3.3; alpha NOT divided by n
    lrn_k: float = 2.0
    lrn_alpha: float = 1e-4
    lrn_beta: float = 0.75
    pool_size: int = 3  # overlapping pooling, z = 3, s = 2 (section 3.4)
    pool_stride: int = 2
    # "paper": weights ~ N(0, 0.01^2), biases 1 in conv2, conv4, conv5, fc6, fc7, else 0
    # (section 5). "he": hidden weights ~ N(0, 2 / fan_in) (He et al. 2015), fc8 keeps
    # N(0, 0.01^2); a scaled-down net with the paper's tiny std can sit at chance for epochs.
    init: str = "paper"
    bias_one: tuple[str, ...] = ("conv2", "conv4", "conv5", "fc6", "fc7")

    def replace(self, **changes) -> AlexNetConfig:
        """A copy with some fields changed (e.g. ``num_classes``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain data (for checkpoints); inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AlexNetConfig:
        d = dict(d)
        d["convs"] = tuple(ConvSpec(**c) for c in d["convs"])
        d["hidden"] = tuple(d["hidden"])
        d["bias_one"] = tuple(d["bias_one"])
        return cls(**d)


PRESETS: dict[str, AlexNetConfig] = {
    "paper": AlexNetConfig(),
    "mini": AlexNetConfig(
        name="mini",
        image_size=72,
        input_size=63,
        convs=(
            ConvSpec(24, 7, stride=2, lrn=True, pool=True),  # 24 x 29 x 29 -> 14 x 14
            ConvSpec(64, 5, pad=2, groups=2, lrn=True, pool=True),  # 64 x 14 x 14 -> 6 x 6
            ConvSpec(96, 3, pad=1),
            ConvSpec(96, 3, pad=1, groups=2),
            ConvSpec(64, 3, pad=1, groups=2, pool=True),  # 64 x 6 x 6 -> 2 x 2
        ),
        hidden=(512, 512),
        num_classes=10,
        input_scale=1 / 64,
        init="he",  # with biases 0: the paper's bias 1 compounds through He-scaled layers
        bias_one=(),
    ),
    # Fashion-MNIST's 28 x 28 images as they come (no rescale, no crop: the garments fill the
    # frame, so a crop would cut them). Five convs with the paper's groups, LRN and 3/2 pools,
    # conv1 at stride 1 (a 28-pixel image has no pixels to skip), two hidden layers of 1024.
    "fashion": AlexNetConfig(
        name="fashion",
        image_size=28,
        input_size=28,
        convs=(
            ConvSpec(32, 5, pad=2, lrn=True, pool=True),  # 32 x 28 x 28 -> 13 x 13
            ConvSpec(64, 5, pad=2, groups=2, lrn=True, pool=True),  # 64 x 13 x 13 -> 6 x 6
            ConvSpec(96, 3, pad=1),
            ConvSpec(96, 3, pad=1, groups=2),
            ConvSpec(64, 3, pad=1, groups=2, pool=True),  # 64 x 6 x 6 -> 2 x 2
        ),
        hidden=(1024, 1024),
        num_classes=10,
        dropout=0.25,  # half the paper's: seven epochs leave little time to overfit
        input_scale=1 / 64,
        init="he",
        bias_one=(),
    ),
}

# How each preset is trained unless told otherwise (python -m tinyalex.train --config NAME;
# momentum 0.9 and weight decay 0.0005 are section 5's for all three). mini: a short step
# schedule that fits the 10-minute laptop budget; fashion: seven epochs of 28-pixel images;
# paper: section 5 (batch 128, the rate divided by 10 on a plateau).
TRAINING: dict[str, dict] = {
    "mini": dict(epochs=10, batch_size=64, lr=0.01, schedule="step"),
    "paper": dict(epochs=90, batch_size=128, lr=0.01, schedule="plateau"),
    "fashion": dict(epochs=7, batch_size=128, lr=0.02, schedule="step"),
}


def get_config(config: str | AlexNetConfig) -> AlexNetConfig:
    """A preset by name, or the config itself."""
    if isinstance(config, AlexNetConfig):
        return config
    if config not in PRESETS:
        raise ValueError(f"unknown config {config!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[config]


@dataclass
class Step:
    """One entry of the layer sequence. ``kind`` picks the layer function pair."""

    name: str
    kind: str  # conv, relu, lrn, pool, flatten-free fc, dropout
    options: dict = field(default_factory=dict)


def build_steps(config: AlexNetConfig) -> list[Step]:
    """The paper's layer sequence for a config (see the module docstring)."""
    steps = []
    for i, spec in enumerate(config.convs, start=1):
        steps.append(Step(f"conv{i}", "conv", dict(stride=spec.stride, pad=spec.pad,
                                                   groups=spec.groups)))
        steps.append(Step(f"relu{i}", "relu"))
        block = []
        if spec.lrn:
            block.append(Step(f"norm{i}", "lrn", dict(n=config.lrn_n, k=config.lrn_k,
                                                      alpha=config.lrn_alpha,
                                                      beta=config.lrn_beta)))
        if spec.pool:
            block.append(Step(f"pool{i}", "pool", dict(size=config.pool_size,
                                                       stride=config.pool_stride)))
        steps += block[::-1] if spec.pool_before_lrn else block  # [pool, norm] or [norm, pool]
    first_fc = len(config.convs) + 1
    for i, _ in enumerate(config.hidden, start=first_fc):
        steps.append(Step(f"fc{i}", "fc"))
        steps.append(Step(f"relu{i}", "relu"))
        steps.append(Step(f"drop{i}", "dropout", dict(p=config.dropout)))
    steps.append(Step(f"fc{first_fc + len(config.hidden)}", "fc"))
    return steps


def layer_shapes(config: AlexNetConfig) -> list[tuple[str, tuple[int, ...], int, int]]:
    """(step name, output shape per image, parameters, multiply-adds per image) for each step.

    Computed from the config alone, without running the network.
    """
    rows = []
    C, H, W = config.in_channels, config.input_size, config.input_size
    features = None
    conv_specs = iter(config.convs)
    fc_sizes = iter((*config.hidden, config.num_classes))
    for step in build_steps(config):
        params = macs = 0
        if step.kind == "conv":
            spec = next(conv_specs)
            H = layers.conv_output_size(H, spec.kernel, spec.stride, spec.pad)
            W = layers.conv_output_size(W, spec.kernel, spec.stride, spec.pad)
            fan_in = C // spec.groups * spec.kernel**2
            C = spec.out_channels
            params = C * fan_in + C
            macs = C * H * W * fan_in
        elif step.kind == "pool":
            H = layers.pool_output_size(H, config.pool_size, config.pool_stride)
            W = layers.pool_output_size(W, config.pool_size, config.pool_stride)
        elif step.kind == "fc":
            fan_in = features if features is not None else C * H * W
            features = next(fc_sizes)
            params = features * fan_in + features
            macs = features * fan_in
        shape = (features,) if features is not None else (C, H, W)
        rows.append((step.name, shape, params, macs))
    return rows


def init_params(config: AlexNetConfig, seed: int = 0, dtype=np.float32) -> dict:
    """Fresh NumPy parameters: ``{name.w, name.b}`` for every conv and fc step (section 5).

    Conv weights are (F, C // groups, KH, KW), fc weights (out, in).
    """
    if config.init not in ("paper", "he"):
        raise ValueError(f"unknown init {config.init!r}: use 'paper' or 'he'")
    rng = np.random.default_rng(seed)
    params = {}
    conv_specs = iter(config.convs)
    previous = (config.in_channels, config.input_size, config.input_size)  # input of the step
    for name, shape, _, _ in layer_shapes(config):
        if name.startswith("conv"):
            spec = next(conv_specs)
            w_shape = (shape[0], previous[0] // spec.groups, spec.kernel, spec.kernel)
        elif name.startswith("fc"):
            w_shape = (shape[0], int(np.prod(previous)))  # fc6 reads the flattened pool5
        else:
            previous = shape
            continue
        fan_in = int(np.prod(w_shape[1:]))
        last = name == f"fc{len(config.convs) + len(config.hidden) + 1}"
        # "he" keeps the paper's N(0, 0.01^2) for the classifier fc8: near-uniform first
        # predictions (loss ~ ln(classes)), so the first large gradients do not kill ReLUs.
        std = 0.01 if config.init == "paper" or last else np.sqrt(2.0 / fan_in)
        params[f"{name}.w"] = (rng.standard_normal(w_shape) * std).astype(dtype)
        bias = 1.0 if name in config.bias_one else 0.0
        params[f"{name}.b"] = np.full(w_shape[0], bias, dtype=dtype)
        previous = shape
    return params


class AlexNet:
    """The network: parameters, the layer sequence, and the caches of the last forward pass.

    ``net = AlexNet("mini")``; ``logits = net.forward(x, train=True)`` with x
    (N, 3, input_size, input_size); ``grads = net.backward(dlogits)`` returns a dict with the
    keys of ``net.params``.

    ``impl`` names the implementation of the layers the network calls (see
    ``tinyalex.backend``): "textbook" (``tinyalex.layers``), "fast" (``tinyalex.fast``),
    "cuda" (``tinyalex.cuda.layers``), or "auto" to let ``tinyalex.impl.resolve_impl`` choose for
    where the parameters live (a training run resolves it once and passes the name);
    ``net.impl`` is the one in use and ``net.layers`` its module. ``to("gpu")`` resolves
    "auto" again for the new device.

    The only state besides ``params`` is what a backward pass needs: the layer caches of the
    most recent ``forward`` (replaced by every call), the outputs of each step of that call
    in ``activations`` (for visualisation), and what the dropout masks are a function of
    besides ``seed`` (see ``tinyalex.noise``): ``dropout_step``, the number of training
    forward passes so far (saved in checkpoints, so a resumed run draws the masks the
    uninterrupted run drew); ``sample_offset``, the global index of the first sample of the
    batches this process sees, and ``unit_offset``, the global index of the first unit of the
    dropped layers it holds (both 0 unless several processes share a batch or a layer).
    """

    def __init__(self, config: str | AlexNetConfig = "mini", num_classes: int | None = None,
                 seed: int = 0, dtype=np.float32, impl: str = "auto"):
        config = get_config(config)
        if num_classes is not None:
            config = config.replace(num_classes=int(num_classes))
        self.config = config
        self.steps = build_steps(config)
        self.params = init_params(config, seed=seed, dtype=dtype)
        self.seed = int(seed)
        self.dropout_step = 0  # the step number of the next training pass's dropout masks
        self.sample_offset = 0  # global index of this process's first sample in each batch
        self.unit_offset = 0  # global index of this process's first unit of fc6 / fc7
        self.activations: dict = {}
        self._caches: list | None = None
        self._impl_request = impl
        self._choose_impl()

    def _choose_impl(self) -> None:
        """Resolve the requested implementation for where the parameters now live."""
        self.impl = resolve_impl(self._impl_request, self._any_param)
        self.layers = impl_module(self.impl)

    @property
    def _any_param(self):
        return next(iter(self.params.values()))

    @property
    def device(self) -> str:
        """``cpu`` or ``gpu``: where the parameters live."""
        return "gpu" if is_gpu_array(self._any_param) else "cpu"

    def to(self, device: str) -> AlexNet:
        """Move the parameters to ``cpu`` (NumPy) or ``gpu`` (CuPy), in place; returns self."""
        self.params = to_device(self.params, device)
        self._caches = None
        self.activations = {}
        self._choose_impl()
        return self

    def scale_input(self, x):
        """x * config.input_scale: the first thing forward does (the identity for paper)."""
        scale = self.config.input_scale
        return x if scale == 1 else x * x.dtype.type(scale)

    def step_forward(self, step: Step, x, train: bool = False):
        """(out, cache) of one step of the layer sequence: the layer function it names."""
        p, L = self.params, self.layers
        if step.kind == "conv":
            return L.conv_forward(x, p[f"{step.name}.w"], p[f"{step.name}.b"], **step.options)
        if step.kind == "relu":
            return L.relu_forward(x)
        if step.kind == "lrn":
            return L.lrn_forward(x, **step.options)
        if step.kind == "pool":
            return L.maxpool_forward(x, **step.options)
        if step.kind == "dropout":
            rng = self.dropout_noise(step, x) if train else None
            return L.dropout_forward(x, train=train, rng=rng, **step.options)
        if step.kind == "fc":
            return L.linear_forward(x, p[f"{step.name}.w"], p[f"{step.name}.b"])
        raise AssertionError(step.kind)

    def dropout_noise(self, step: Step, x) -> DropoutNoise:
        """The uniform numbers of one dropout step (drop6, drop7) in this training pass.

        A pure function of (seed, dropout_step, the layer's number, sample, unit): see
        ``tinyalex.noise``. For CUDA arrays (and ``impl="cuda"``) kernels/philox.cu computes
        them where x lives, otherwise NumPy does: the same numbers either way.
        """
        kernels = None
        if self.impl == "cuda" or is_gpu_array(x):
            from tinyalex.cuda import ops

            kernels = ops.for_array(x)
        return DropoutNoise(self.seed, self.dropout_step, int(step.name.removeprefix("drop")),
                            row_offset=self.sample_offset, unit_offset=self.unit_offset,
                            kernels=kernels)

    def step_backward(self, step: Step, dout, cache, input_grad: bool = True):
        """(dx, {parameter name: gradient}) of one step, from the gradient of its output.

        input_grad=False (for the first step, whose input is the images): a convolution
        computes only its weight gradients and dx is None.
        """
        L = self.layers
        if step.kind == "conv" and not input_grad:
            dw, db = L.conv_weight_grads(dout, cache)
            return None, {f"{step.name}.w": dw, f"{step.name}.b": db}
        if step.kind in ("conv", "fc"):
            backward = L.conv_backward if step.kind == "conv" else L.linear_backward
            dx, dw, db = backward(dout, cache)
            return dx, {f"{step.name}.w": dw, f"{step.name}.b": db}
        backward = {"relu": L.relu_backward, "lrn": L.lrn_backward,
                    "pool": L.maxpool_backward, "dropout": L.dropout_backward}
        return backward[step.kind](dout, cache), {}

    def forward(self, x, train: bool = False, keep_activations: bool = False):
        """Logits (N, num_classes) for images x (N, C, input_size, input_size).

        train: dropout on, with the masks of training step ``dropout_step``, which the pass
        then advances by one. keep_activations: also store each step's output in
        ``self.activations`` (for feature maps and fc7 retrieval). The caches of the pass
        are kept for ``backward`` either way (and freed by the next forward).
        """
        expected = (self.config.in_channels, self.config.input_size, self.config.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"AlexNet({self.config.name}): input must be (N, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}), got {tuple(x.shape)}")
        if x.dtype != self._any_param.dtype:
            raise ValueError(f"AlexNet: input dtype {x.dtype} differs from the parameters' "
                             f"{self._any_param.dtype}")
        caches = []
        self.activations = {}
        self._caches = None  # free the last pass's caches now, not after this pass (memory)
        x = self.scale_input(x)
        for step in self.steps:
            x, cache = self.step_forward(step, x, train)
            caches.append(cache)
            if keep_activations:
                self.activations[step.name] = x
        self._caches = caches
        self.dropout_step += bool(train)
        return x

    def backward(self, dlogits, input_grad: bool = False) -> dict:
        """Gradients of the loss with respect to every parameter, from dL/dlogits (N, classes).

        Follows the preceding ``forward``, in training or evaluation mode (with dropout off,
        e.g. for a saliency map). input_grad=True also returns the gradient with respect to
        the images x given to forward, under the key "input" (training does not need it, and
        skips conv1's input gradient).
        """
        if self._caches is None:
            raise RuntimeError("AlexNet.backward needs a preceding forward(x)")
        grads = {}
        dx = dlogits
        for step, cache in zip(reversed(self.steps), reversed(self._caches), strict=True):
            first = step is self.steps[0]
            dx, step_grads = self.step_backward(step, dx, cache, input_grad=input_grad or
                                                not first)
            grads.update(step_grads)
        grads = {name: grads[name] for name in self.params}
        if input_grad:
            grads["input"] = self.scale_input(dx)  # d(x * scale)/dx = scale
        return grads

    def loss(self, x, labels, train: bool = True):
        """Forward pass plus softmax cross-entropy: returns (loss, logits, dlogits)."""
        logits = self.forward(x, train=train)
        loss, dlogits = self.layers.softmax_cross_entropy(logits, labels)
        return loss, logits, dlogits

    def last_hidden_layer(self) -> str:
        """The step whose output is the last hidden layer after its ReLU: "relu7" (fc7) for
        AlexNet, the 4096 numbers whose distances figure 4 compares (section 6.1)."""
        fc = [step.name for step in self.steps if step.kind == "fc"]
        if len(fc) < 2:
            raise ValueError("the network has no hidden fully connected layer")
        return "relu" + fc[-2][len("fc"):]

    def num_params(self) -> int:
        return int(sum(v.size for v in self.params.values()))

    def summary(self) -> str:
        """A table: each step's output shape, parameters and multiply-adds per image."""
        rows = layer_shapes(self.config)
        lines = [f"AlexNet '{self.config.name}': input {self.config.in_channels} x "
                 f"{self.config.input_size} x {self.config.input_size}",
                 f"{'layer':<8}{'output':>18}{'params':>14}{'mult-adds':>16}"]
        for name, shape, params, macs in rows:
            shape_text = " x ".join(str(s) for s in shape)
            lines.append(f"{name:<8}{shape_text:>18}{params:>14,}{macs:>16,}")
        total_params = sum(r[2] for r in rows)
        total_macs = sum(r[3] for r in rows)
        lines.append(f"{'total':<8}{'':>18}{total_params:>14,}{total_macs:>16,}")
        return "\n".join(lines)
