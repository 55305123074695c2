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
simply "the buffer's reference count is back to the pool's own reference". No array that
anyone can still reach is ever reused. Buffers are matched by exact size, which is what a
training loop asks for step after step.

The cost: the pool keeps the memory of free buffers, so that the next step finds them. A
free buffer that has not been handed out during the last MAX_IDLE_REQUESTS requests (about
ten training steps) is given back, so sizes that stop being used -- an evaluation pass at
another batch size, a last smaller batch -- do not pile up; ``release()`` gives back every
free buffer at once. Small arrays (under MIN_BYTES) bypass the pool.
"""

from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 20  # smaller arrays come from NumPy directly (its allocator is fast there)
MAX_IDLE_REQUESTS = 1000  # a paper or mini training step makes about 100 requests
enabled = True  # tests switch the pool off to compare against plain np.empty


class _Buffer:
    __slots__ = ("memory", "last_request")

    def __init__(self, nbytes: int, request: int):
        self.memory = np.empty(nbytes, dtype=np.uint8)
        self.last_request = request

    def is_free(self) -> bool:
        """Only the pool refers to the memory. getrefcount sees two references then: this
        object's attribute and its own argument. Any array made from the memory (a view
        included) holds one more."""
        return sys.getrefcount(self.memory) <= 2


_lock = threading.Lock()
_buffers: dict[int, list[_Buffer]] = {}  # size in bytes -> the pool's buffers of that size
_requests = 0  # pooled requests so far: the pool's clock


def _new_lock_after_fork() -> None:
    # a fork while another thread held the lock would leave it locked forever in the child
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def empty(shape, dtype):
    """Like ``np.empty(shape, dtype)`` (uninitialised values), in recycled memory."""
    global _requests
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if not enabled or nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    with _lock:
        _requests += 1
        if _requests % 64 == 0:
            _drop(lambda buffer: _requests - buffer.last_request > MAX_IDLE_REQUESTS)
        same_size = _buffers.setdefault(nbytes, [])
        found = next((buffer for buffer in same_size if buffer.is_free()), None)
        if found is None:
            found = _Buffer(nbytes, _requests)
            same_size.append(found)
        found.last_request = _requests
        return found.memory.view(dtype).reshape(shape)


def zeros(shape, dtype):
    """Like ``np.zeros(shape, dtype)``, from the pool."""
    out = empty(shape, dtype)
    out.fill(0)
    return out


def _drop(should_drop) -> int:
    """Forget the free buffers for which should_drop(buffer) holds; returns the bytes freed.
    The caller holds the lock."""
    freed = 0
    for nbytes, same_size in _buffers.items():
        keep = [b for b in same_size if not (b.is_free() and should_drop(b))]
        freed += nbytes * (len(same_size) - len(keep))
        same_size[:] = keep
    return freed


def release() -> int:
    """Give back every buffer that is not in use; returns the bytes freed."""
    with _lock:
        return _drop(lambda buffer: True)


def pooled_bytes() -> int:
    """Bytes held by the pool, in use or not."""
    with _lock:
        return sum(nbytes * len(same_size) for nbytes, same_size in _buffers.items())
