"""A recycling pool for the big NumPy arrays of the layers (the CPU twin of CuPy's pool).

Why: a training step of the paper net allocates about 2 GB of large arrays (the im2col
matrices, activations, gradients) and frees them again. For arrays of more than a few
megabytes the C library gets fresh memory from the operating system every time, and the
first write to each fresh page costs a page fault plus zeroing the page: on a 2-core
machine that was measured at 60-170 ms per 200 MB, against 12 ms to fill memory that is
already mapped -- about as long as the matrix products themselves. CuPy solves the same
problem on the GPU with a memory pool; this module is a minimal one for NumPy.

How: ``empty(shape, dtype)`` hands out a view of a byte buffer that the pool keeps. A
buffer can be handed out again once nothing outside the pool refers to it any more: every
view of a NumPy array holds a reference to the array that owns the memory, so "free" is
simply "the buffer's reference count is back to the pool's own references". No array that
anyone can still reach is ever reused. Buffers are matched by exact size, which is what a
training loop asks for step after step.

The cost: the pool keeps the memory of its buffers after they are freed, as CuPy's pool
does, so the process stays at its high-water mark; ``release()`` gives the free buffers
back. Small arrays (under MIN_BYTES) and CuPy arrays bypass the pool.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 20  # smaller arrays come from NumPy directly (its allocator is fast there)
enabled = True  # tests switch the pool off to compare against plain np.empty

_lock = threading.Lock()
_buffers: dict[int, list[np.ndarray]] = {}  # size in bytes -> the pool's uint8 buffers


def _is_free(buffer) -> bool:
    """True when only the pool refers to ``buffer``. The four references counted then: the
    pool's list, the caller's loop variable, this function's parameter, getrefcount's
    argument. Any array made from the buffer (views included) adds one more."""
    return sys.getrefcount(buffer) <= 4


def empty(shape, dtype, xp=np):
    """Like ``xp.empty(shape, dtype)`` (uninitialised values); recycled memory for NumPy."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if xp is not np or not enabled or nbytes < MIN_BYTES:
        return xp.empty(shape, dtype=dtype)
    with _lock:
        same_size = _buffers.setdefault(nbytes, [])
        for buffer in same_size:
            if _is_free(buffer):
                return buffer.view(dtype).reshape(shape)
        buffer = np.empty(nbytes, dtype=np.uint8)
        same_size.append(buffer)
        return buffer.view(dtype).reshape(shape)


def zeros(shape, dtype, xp=np):
    """Like ``xp.zeros(shape, dtype)``, from the pool."""
    out = empty(shape, dtype, xp)
    out.fill(0)
    return out


def release() -> int:
    """Forget every buffer that is not in use (its memory goes back); returns the bytes freed."""
    freed = 0
    with _lock:
        for nbytes, same_size in _buffers.items():
            keep = [buffer for buffer in same_size if not _is_free(buffer)]
            freed += nbytes * (len(same_size) - len(keep))
            same_size[:] = keep
    return freed


def pooled_bytes() -> int:
    """Bytes held by the pool, in use or not."""
    with _lock:
        return sum(nbytes * len(same_size) for nbytes, same_size in _buffers.items())
