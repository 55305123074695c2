"""Counter-based random numbers for dropout: the same masks on every device and in every process.

Dropout (section 4.2) needs one uniform number per hidden unit per training case. A stateful
generator (draw, advance, draw again) ties those numbers to the order in which they are drawn:
a GPU, a second process or a resumed run would have to replay that order exactly. tinyalex
draws them from a *counter-based* generator instead, Philox4x32-10 (Salmon, Moraes, Dror and
Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011; cuRAND's
``curand_Philox4x32_10``, JAX's ``philox`` and, in its 4x64 form, NumPy's ``Philox``). Philox is
a pure function -- 4 words of counter and 2 words of key in, 4 random 32-bit words out -- so the
number for one unit is computed from *where* it is, not from what was drawn before:

    key     = (seed mod 2^32, seed div 2^32)
    counter = (unit div 4, sample, step, layer)
    word    = Philox4x32-10(counter, key)[unit mod 4]
    u       = (word >> 8) * 2^-24                    uniform in [0, 1), exact in float32

``seed`` is the network's seed, ``step`` the training step (``AlexNet.dropout_step``), ``layer``
the paper's number of the dropped layer (6 for fc6's dropout, 7 for fc7's), ``sample`` the
*global* index of the training case in its batch and ``unit`` the *global* index of the unit
in its layer. Hence:

- the NumPy code here and the CUDA kernel ``kernels/philox.cu`` give bit-identical numbers
  (integer arithmetic, and a 24-bit integer times a power of two is exact in float32);
- a resumed run needs only the step counter to draw the masks the uninterrupted run drew;
- a data-parallel process that holds samples n0 .. n0+B-1 of the global batch passes
  ``row_offset=n0``, and a tower-parallel one that holds units u0 .. of a layer passes
  ``unit_offset=u0``: together they draw exactly the masks one process would.

Philox's rounds (Random123's ``philox4x32round``), with M0 = 0xD2511F53, M1 = 0xCD9E8D57:

    hi0:lo0 = M0 * c0,  hi1:lo1 = M1 * c2                  (32 x 32 -> 64-bit products)
    (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
    (k0, k1) <- (k0 + 0x9E3779B9, k1 + 0xBB67AE85)          (mod 2^32, between rounds)
"""

from __future__ import annotations

import numpy as np

ROUNDS = 10
MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)  # M0, M1: Random123's PHILOX_M4x32_0/1
KEY_BUMPS = (0x9E3779B9, 0xBB67AE85)  # W0, W1: the golden ratio and sqrt(3) - 1, 32 bits
WORD = 0xFFFFFFFF
UINT32_LIMIT = 2**32


def philox4x32(counter, key, rounds: int = ROUNDS) -> tuple[np.ndarray, ...]:
    """Philox4x32-``rounds`` on NumPy arrays: 4 uint32 outputs, broadcast over the inputs.

    counter: 4 integers or integer arrays (each word < 2^32); key: 2 integers (< 2^32).
    Returns 4 uint32 arrays of the broadcast shape. The words are held in uint64 so that
    the 32 x 32-bit products are exact; ``& WORD`` keeps the low 32 bits.
    """
    c0, c1, c2, c3 = np.broadcast_arrays(*(np.asarray(c, dtype=np.uint64) for c in counter))
    k0, k1 = (np.uint64(int(k) & WORD) for k in key)
    m0, m1 = (np.uint64(m) for m in MULTIPLIERS)
    w0, w1 = (np.uint64(w) for w in KEY_BUMPS)
    word, shift = np.uint64(WORD), np.uint64(32)
    for r in range(rounds):
        if r:  # the key schedule: bumped before every round but the first
            k0, k1 = (k0 + w0) & word, (k1 + w1) & word
        product0, product1 = m0 * c0, m1 * c2  # (N,) uint64, exact: both factors < 2^32
        c0, c1, c2, c3 = ((product1 >> shift) ^ c1 ^ k0, product1 & word,
                          (product0 >> shift) ^ c3 ^ k1, product0 & word)
    return tuple(c.astype(np.uint32) for c in (c0, c1, c2, c3))


def uniform_from_bits(bits: np.ndarray) -> np.ndarray:
    """float32 in [0, 1) from uint32 words: the top 24 bits times 2^-24 (exact in float32)."""
    return (bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


def seed_key(seed: int) -> tuple[int, int]:
    """Philox's 2-word key from a seed in [0, 2^64): (low 32 bits, high 32 bits)."""
    if isinstance(seed, bool) or int(seed) != seed or not 0 <= seed < 2**64:
        raise ValueError(f"dropout noise: seed must be an integer in [0, 2^64), got {seed!r}")
    return int(seed) & WORD, int(seed) >> 32


def check_counter(rows: int, units: int, step: int, layer: int, row_offset: int,
                  unit_offset: int) -> None:
    """ValueError unless every counter word stays below 2^32 (one clear line each)."""
    for name, value in (("rows", rows), ("units", units), ("step", step), ("layer", layer),
                        ("row_offset", row_offset), ("unit_offset", unit_offset)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"dropout noise: {name} must be an integer >= 0, got {value!r}")
    for name, value in (("step", step), ("layer", layer),
                        ("the last sample, row_offset + rows - 1", row_offset + rows - 1),
                        ("the last unit, unit_offset + units - 1", unit_offset + units - 1)):
        if value >= UINT32_LIMIT:
            raise ValueError(f"dropout noise: {name} = {value} does not fit a 32-bit "
                             "counter word")


def philox_uniform(seed: int, step: int, layer: int, rows: int, units: int,
                   row_offset: int = 0, unit_offset: int = 0) -> np.ndarray:
    """The uniform numbers of a (rows, units) block of one layer at one step: float32.

    Element [r, u] is the number of sample ``row_offset + r`` and unit ``unit_offset + u``
    (see the module docstring); the reference for ``kernels/philox.cu``.
    Philox gives four words per counter, so the block's units are computed four at a time:
    counter groups unit_offset // 4 .. (unit_offset + units - 1) // 4, then the words are laid
    side by side (group g's words are units 4g .. 4g+3) and the block's columns cut out.
    """
    check_counter(rows, units, step, layer, row_offset, unit_offset)
    first, last = unit_offset // 4, (unit_offset + units - 1) // 4
    groups = np.arange(first, last + 1, dtype=np.uint64)[None, :]  # (1, G)
    samples = (row_offset + np.arange(rows, dtype=np.uint64))[:, None]  # (rows, 1)
    words = philox4x32((groups, samples, step, layer), seed_key(seed))  # 4 x (rows, G)
    bits = np.stack(words, axis=-1).reshape(rows, -1)  # (rows, 4G): unit 4*first + column
    start = unit_offset - 4 * first
    return uniform_from_bits(bits[:, start:start + units])


class DropoutNoise:
    """The random numbers of one dropout layer at one training step, for ``dropout_forward``.

    ``random(shape, dtype)`` is what ``tinyalex.layers.dropout_forward`` draws from: uniform
    float32 numbers of x's shape, with the first axis the samples and the rest flattened into
    the units (fc6's 4096 outputs, say). ``kernels``: None for the NumPy code above, or a
    ``tinyalex.cuda.ops.KernelOps`` to compute them with ``kernels/philox.cu`` on its side
    (the GPU, or the CPU emulator): the numbers are the same either way.
    """

    def __init__(self, seed: int, step: int, layer: int, row_offset: int = 0,
                 unit_offset: int = 0, kernels=None):
        seed_key(seed)  # checked here, where the mistake is made
        self.seed, self.step, self.layer = int(seed), int(step), int(layer)
        self.row_offset, self.unit_offset = int(row_offset), int(unit_offset)
        self.kernels = kernels

    def __repr__(self):
        where = "NumPy" if self.kernels is None else f"kernels/philox.cu on {self.kernels.kind}"
        return (f"DropoutNoise(seed={self.seed}, step={self.step}, layer={self.layer}, "
                f"row_offset={self.row_offset}, unit_offset={self.unit_offset}; {where})")

    def random(self, shape, dtype=np.float32):
        """Uniform numbers in [0, 1) of ``shape`` (samples first); float32 only."""
        if np.dtype(dtype) != np.float32:
            raise ValueError(f"dropout noise is float32 (24 random bits), not {np.dtype(dtype)}")
        shape = tuple(int(d) for d in shape)
        rows, units = shape[0], int(np.prod(shape[1:], dtype=np.int64))
        args = (self.seed, self.step, self.layer, rows, units, self.row_offset,
                self.unit_offset)
        if self.kernels is None:
            return philox_uniform(*args).reshape(shape)
        return self.kernels.philox_uniform(*args).reshape(shape)
