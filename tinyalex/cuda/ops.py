"""Launchers for the CUDA kernels of ``kernels/*.cu``: on a GPU, or on the CPU emulator.

One object per side (``for_device("gpu")`` for CuPy arrays, ``for_device("emulate")`` for
NumPy arrays), with one method per kernel; ``tinyalex.cuda.layers`` builds the layer
functions on them:

    im2col(x, kh, kw, stride, pad)                        -> cols          kernels/im2col.cu
    col2im(cols, x_shape, kh, kw, stride, pad)            -> dx            kernels/im2col.cu
    lrn_forward(x, n, k, alpha, beta)                     -> (out, scale)  kernels/lrn.cu
    lrn_backward(dout, x, out, scale, n, alpha, beta)     -> dx            kernels/lrn.cu
    maxpool_forward(x, size, stride)                      -> (out, argmax) kernels/maxpool.cu
    maxpool_backward(dout, argmax, x_shape, size, stride) -> dx            kernels/maxpool.cu
    philox_uniform(seed, step, layer, rows, units, ...)   -> u             kernels/philox.cu
    crop_batch(images, mean, crop, windows, lighting)     -> x             kernels/augment.cu
    sgd_update(w, v, g, lr, momentum, weight_decay)       -> None (w, v)   kernels/sgd.cu

with the layouts of ``tinyalex.layers`` (cols is (C*kh*kw, N*OH*OW)). Every method checks
its arguments (float32 / int32, C-contiguous, shapes) and raises a clear ValueError *before*
a launch: CuPy checks nothing, and a wrong size passed to a kernel reads or writes memory it
does not own. Scalars go to the kernels as ``np.int32`` / ``np.float32``, the exact C types
of the kernel parameters. Each launch uses the block size its kernel declares
(``__launch_bounds__``, read by ``tinyalex.cuda.sources.block_size``) and one thread per
output element. Outputs are new arrays of the input's kind; inputs are never modified, except
by ``sgd_update``, which updates the parameter and its velocity in place, as the textbook's
update does.
"""

from __future__ import annotations

import functools

import numpy as np

from tinyalex.cuda.sources import block_size, kernel_dir, kernel_source
from tinyalex.layers._checks import check_lrn_args, check_odd_window
from tinyalex.layers.conv import conv_output_size
from tinyalex.layers.pool import pool_output_size
from tinyalex.noise import check_counter, seed_key

INT_LIMIT = 2**31  # the kernels index with int: every array must hold fewer elements

# The options tinyalex passes to cupy.RawModule (CuPy adds -ftz=true and the architecture;
# tinyalex.cuda.nvrtc compiles with exactly that set in CI).
NVRTC_OPTIONS: tuple[str, ...] = ()


def _check_array(op: str, name: str, a, ndim: int, dtype=np.float32) -> None:
    """ValueError unless ``a`` is an ``ndim``-d C-contiguous array of ``dtype``, small enough."""
    if not hasattr(a, "dtype") or not hasattr(a, "flags"):
        raise ValueError(f"{op}: {name} must be an array, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-d, got shape {tuple(a.shape)}")
    if a.dtype != dtype:
        raise ValueError(f"{op}: {name} must be {np.dtype(dtype)}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(
            f"{op}: {name} must be C-contiguous (the kernel indexes its memory directly); "
            "pass xp.ascontiguousarray(...)"
        )
    if a.size >= INT_LIMIT:
        raise ValueError(f"{op}: {name} has {a.size} elements; the kernels index with int32")


def _check_shape(op: str, name: str, a, shape) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)}, got {tuple(a.shape)}")


def _check_positive(op: str, **values) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{op}: {name} must be a positive integer, got {value!r}")


def _check_x_shape(op: str, x_shape) -> tuple[int, int, int, int]:
    if len(x_shape) != 4 or any(int(d) != d or d < 1 for d in x_shape):
        raise ValueError(f"{op}: x_shape must be 4 positive ints (N, C, H, W), got {x_shape!r}")
    return tuple(int(d) for d in x_shape)


def _conv_geometry(op: str, H: int, W: int, kh, kw, stride, pad) -> tuple[int, int]:
    """(OH, OW) of a convolution window sweep, after checking its parameters."""
    _check_positive(op, kh=kh, kw=kw, stride=stride)
    if int(pad) != pad or pad < 0:
        raise ValueError(f"{op}: pad must be an integer >= 0, got {pad!r}")
    if kh > H + 2 * pad or kw > W + 2 * pad:
        raise ValueError(f"{op}: kernel {kh}x{kw} larger than the padded input "
                         f"{H + 2 * pad}x{W + 2 * pad}")
    return conv_output_size(H, kh, stride, pad), conv_output_size(W, kw, stride, pad)


def _pool_geometry(op: str, H: int, W: int, size, stride) -> tuple[int, int]:
    """(OH, OW) of a max-pool without padding, floor mode, after checking its parameters."""
    _check_positive(op, size=size, stride=stride)
    if size > H or size > W:
        raise ValueError(f"{op}: window {size}x{size} larger than the input {H}x{W}")
    return pool_output_size(H, size, stride), pool_output_size(W, size, stride)


class KernelOps:
    """The raw-kernel hot path bound to one launcher: the GPU (CuPy) or the CPU emulator.

    ``xp`` is the array module of that side; ``load(filename)`` returns a compiled module with
    ``get_function(name)`` (a ``cupy.RawModule`` or an ``EmulatedModule``). Each file is
    compiled once, the first time one of its kernels is needed.
    """

    def __init__(self, kind: str, xp, load):
        self.kind = kind
        self.xp = xp
        self._load = functools.cache(load)

    def __repr__(self):
        return f"<KernelOps on {self.kind}: kernels from {kernel_dir()}>"

    def launch(self, filename: str, name: str, count: int, args: tuple) -> None:
        """Run kernel ``name`` of ``kernels/<filename>`` (compiled on first use) with one
        thread per element of a ``count``-element output, in blocks of its declared size."""
        threads = block_size(filename, name)
        kernel = self._load(filename).get_function(name)
        kernel(((count + threads - 1) // threads,), (threads,), args)

    def _new(self, op: str, name: str, shape, dtype=np.float32):
        """A fresh output array of this side, refused BEFORE allocation if it is too large."""
        size = 1
        for d in shape:
            size *= int(d)
        if size >= INT_LIMIT:
            raise ValueError(f"{op}: {name} would have {size} elements (shape {tuple(shape)}); "
                             "the kernels index with int32 (fewer than 2^31): use a smaller "
                             "batch")
        return self.xp.empty(tuple(shape), dtype=dtype)

    def _check_kind(self, op: str, a) -> None:
        if not isinstance(a, self.xp.ndarray):
            raise ValueError(
                f"{op}: the {self.kind} kernels take {self.xp.__name__} arrays, got "
                f"{type(a).__module__}.{type(a).__name__}"
            )

    # ---- convolution: kernels/im2col.cu ------------------------------------------------------

    def im2col(self, x, kh: int, kw: int, stride: int, pad: int):
        """x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW); layout in kernels/im2col.cu."""
        op = "im2col"
        _check_array(op, "x", x, 4)
        self._check_kind(op, x)
        N, C, H, W = x.shape
        OH, OW = _conv_geometry(op, H, W, kh, kw, stride, pad)
        cols = self._new(op, "cols", (C * kh * kw, N * OH * OW))
        i32 = np.int32
        self.launch("im2col.cu", "im2col_kernel", cols.size,
                    (x, cols, i32(N), i32(C), i32(H), i32(W), i32(kh), i32(kw), i32(stride),
                     i32(pad), i32(OH), i32(OW)))
        return cols

    def col2im(self, cols, x_shape, kh: int, kw: int, stride: int, pad: int):
        """cols (C*kh*kw, N*OH*OW) -> dx (N, C, H, W): the adjoint of im2col (a gather)."""
        op = "col2im"
        N, C, H, W = _check_x_shape(op, x_shape)
        _check_array(op, "cols", cols, 2)
        self._check_kind(op, cols)
        OH, OW = _conv_geometry(op, H, W, kh, kw, stride, pad)
        _check_shape(op, "cols", cols, (C * kh * kw, N * OH * OW))
        dx = self._new(op, "dx", (N, C, H, W))
        i32 = np.int32
        self.launch("im2col.cu", "col2im_kernel", dx.size,
                    (cols, dx, i32(N), i32(C), i32(H), i32(W), i32(kh), i32(kw), i32(stride),
                     i32(pad), i32(OH), i32(OW)))
        return dx

    # ---- local response normalization: kernels/lrn.cu ----------------------------------------

    def lrn_forward(self, x, n: int, k: float, alpha: float, beta: float):
        """x (N, C, H, W) -> (out, scale), both (N, C, H, W); the paper's alpha (section 3.3)."""
        op = "lrn_forward"
        _check_array(op, "x", x, 4)
        self._check_kind(op, x)
        check_lrn_args(op, n, k, alpha, beta)
        N, C, H, W = x.shape
        out = self.xp.empty_like(x)
        scale = self.xp.empty_like(x)
        self.launch("lrn.cu", "lrn_forward_kernel", x.size,
            (x, out, scale, np.int32(N), np.int32(C), np.int32(H * W), np.int32(n),
             np.float32(k), np.float32(alpha), np.float32(beta)),
        )
        return out, scale

    def lrn_backward(self, dout, x, out, scale, n: int, alpha: float, beta: float):
        """dout, x, out, scale (N, C, H, W) -> dx (N, C, H, W)."""
        op = "lrn_backward"
        for name, a in (("dout", dout), ("x", x), ("out", out), ("scale", scale)):
            _check_array(op, name, a, 4)
            self._check_kind(op, a)
            _check_shape(op, name, a, x.shape)
        check_odd_window(op, n)
        N, C, H, W = x.shape
        dx = self.xp.empty_like(x)
        self.launch("lrn.cu", "lrn_backward_kernel", x.size,
            (dout, x, out, scale, dx, np.int32(N), np.int32(C), np.int32(H * W), np.int32(n),
             np.float32(alpha), np.float32(beta)),
        )
        return dx

    # ---- overlapping max-pooling: kernels/maxpool.cu -----------------------------------------

    def maxpool_forward(self, x, size: int, stride: int):
        """x (N, C, H, W) -> (out, argmax), both (N, C, OH, OW); argmax int32 = i*size + j."""
        op = "maxpool_forward"
        _check_array(op, "x", x, 4)
        self._check_kind(op, x)
        N, C, H, W = x.shape
        OH, OW = _pool_geometry(op, H, W, size, stride)
        out = self._new(op, "out", (N, C, OH, OW))
        argmax = self._new(op, "argmax", (N, C, OH, OW), np.int32)
        i32 = np.int32
        self.launch("maxpool.cu", "maxpool_forward_kernel", out.size,
            (x, out, argmax, i32(N * C), i32(H), i32(W), i32(size), i32(stride), i32(OH),
             i32(OW)),
        )
        return out, argmax

    def maxpool_backward(self, dout, argmax, x_shape, size: int, stride: int):
        """dout, argmax (N, C, OH, OW) -> dx (N, C, H, W), summed where windows overlap."""
        op = "maxpool_backward"
        N, C, H, W = _check_x_shape(op, x_shape)
        _check_array(op, "dout", dout, 4)
        _check_array(op, "argmax", argmax, 4, dtype=np.int32)
        self._check_kind(op, dout)
        self._check_kind(op, argmax)
        OH, OW = _pool_geometry(op, H, W, size, stride)
        _check_shape(op, "dout", dout, (N, C, OH, OW))
        _check_shape(op, "argmax", argmax, (N, C, OH, OW))
        dx = self._new(op, "dx", (N, C, H, W))
        i32 = np.int32
        self.launch("maxpool.cu", "maxpool_backward_kernel", dx.size,
            (dout, argmax, dx, i32(N * C), i32(H), i32(W), i32(size), i32(stride), i32(OH),
             i32(OW)),
        )
        return dx

    # ---- dropout noise: kernels/philox.cu -----------------------------------------------------

    def philox_uniform(self, seed: int, step: int, layer: int, rows: int, units: int,
                       row_offset: int = 0, unit_offset: int = 0):
        """Uniform float32 (rows, units), equal bit for bit to tinyalex.noise.philox_uniform."""
        check_counter(rows, units, step, layer, row_offset, unit_offset)
        out = self._new("philox_uniform", "out", (rows, units))
        if out.size:
            key0, key1 = seed_key(seed)
            u32 = np.uint32
            self.launch("philox.cu", "philox_uniform_kernel", out.size,
                        (out, np.int32(rows), np.int32(units), u32(key0), u32(key1), u32(step),
                         u32(layer), u32(row_offset), u32(unit_offset)))
        return out

    # ---- training crops: kernels/augment.cu ---------------------------------------------------

    def crop_batch(self, images, mean, crop_size: int, windows, lighting):
        """images uint8 (B, S, S, 3) -> x float32 (B, 3, crop, crop): tinyalex.data.crop_batch
        plus add_lighting on this side. windows int32 (B, 3) = top, left, flip; lighting
        float32 (B, 3). The window VALUES are the caller's contract (0 <= top, left <= S - crop,
        flip 0 or 1): reading them here would wait for the GPU, so tinyalex.cuda.staging checks
        them on the host before they are copied."""
        op = "crop_batch"
        _check_array(op, "images", images, 4, dtype=np.uint8)
        B, S = images.shape[0], images.shape[1]
        _check_shape(op, "images", images, (B, S, S, 3))
        _check_array(op, "mean", mean, 3)
        _check_shape(op, "mean", mean, (3, S, S))
        _check_array(op, "windows", windows, 2, dtype=np.int32)
        _check_shape(op, "windows", windows, (B, 3))
        _check_array(op, "lighting", lighting, 2)
        _check_shape(op, "lighting", lighting, (B, 3))
        for a in (images, mean, windows, lighting):
            self._check_kind(op, a)
        _check_positive(op, crop_size=crop_size)
        if crop_size > S:
            raise ValueError(f"{op}: crop {crop_size} larger than the images' side {S}")
        x = self._new(op, "x", (B, 3, crop_size, crop_size))
        self.launch("augment.cu", "crop_kernel", x.size,
                    (images, mean, windows, lighting, x, np.int32(B), np.int32(S),
                     np.int32(crop_size)))
        return x

    # ---- the SGD update: kernels/sgd.cu -------------------------------------------------------

    def sgd_update(self, w, v, g, lr: float, momentum: float, weight_decay: float) -> None:
        """tinyalex.optim.sgd_update in one pass, IN PLACE on w and v; bit for bit the same."""
        op = "sgd_update"
        for name, a in (("w", w), ("v", v), ("g", g)):
            _check_array(op, name, a, w.ndim)
            self._check_kind(op, a)
            _check_shape(op, name, a, w.shape)
        # The scalars as the textbook's float32 arithmetic sees them: NumPy turns a Python
        # float into the array's float32, and weight_decay * lr is a Python product first.
        f32 = np.float32
        self.launch("sgd.cu", "sgd_update_kernel", w.size,
                    (w, v, g, np.int32(w.size), f32(lr), f32(momentum), f32(weight_decay * lr)))


def _load_emulated(filename: str):
    from tinyalex.cuda.emulator import EmulatedModule

    return EmulatedModule(path=kernel_dir() / filename)


def _load_gpu(filename: str):
    import cupy

    return cupy.RawModule(code=kernel_source(filename), options=NVRTC_OPTIONS)


@functools.cache
def for_device(kind: str) -> KernelOps:
    """The launchers for ``"gpu"`` (CuPy arrays) or ``"emulate"`` (NumPy arrays); one per kind."""
    if kind == "emulate":
        return KernelOps("emulate", np, _load_emulated)
    if kind == "gpu":
        import cupy

        return KernelOps("gpu", cupy, _load_gpu)
    raise ValueError(f"unknown kernel device {kind!r}: use 'gpu' or 'emulate'")


def for_array(x) -> KernelOps:
    """The launchers for arrays like ``x``: the GPU for CuPy arrays, the emulator for NumPy."""
    from tinyalex.backend import is_gpu_array

    return for_device("gpu" if is_gpu_array(x) else "emulate")
