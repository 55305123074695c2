"""Run the memory-bound NumPy parts of a layer on every CPU core, a few images at a time.

The matrix products already use every core (inside BLAS), but NumPy's elementwise
operations run on one core, and a layer made of several such passes (LRN, max-pool, the
im2col copy) streams every intermediate array through main memory once per pass. Splitting
the work into chunks of a few images, and handing the chunks to a small pool of threads,
helps twice:

- NumPy releases the Python GIL inside its loops over arrays, so the threads really do
  run on separate cores;
- a chunk's intermediate arrays are small enough (about a megabyte) to stay in the CPU
  caches from one pass to the next.

Each chunk writes only its own images' part of the outputs, so the threads never touch the
same memory. The layer code stays the plain array code, written for any range of images;
tests/test_fast.py checks that the chunked result equals one whole-batch call.
Small arrays are not split.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

from tinyalex.backend import cpu_count
from tinyalex.fast import blas

CHUNK_BYTES = 1 << 20  # aim for about 1 MiB of input per chunk (fits a core's L2 cache)


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor | None:
    threads = cpu_count()
    return ThreadPoolExecutor(threads, thread_name_prefix="tinyalex") if threads > 1 else None


# A forked child process (e.g. a data-loading worker) inherits the pool object but not its
# threads: forget it there, so that the child makes its own on first use instead of waiting
# forever for threads that do not exist.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.cache_clear)


def batch_chunks(count: int, bytes_per_item: int) -> list[slice]:
    """Consecutive slices covering range(count), each about CHUNK_BYTES of input."""
    per_chunk = max(1, CHUNK_BYTES // max(1, bytes_per_item))
    return [slice(start, min(start + per_chunk, count)) for start in range(0, count, per_chunk)]


def for_each_chunk(fn, x) -> None:
    """Call ``fn(chunk)`` for slices ``chunk`` that together cover the first axis of ``x``.

    ``fn`` computes its results for ``x[chunk]`` and writes them into preallocated outputs.
    The chunks run on a thread pool with one thread per core; with one core, or one item,
    a single call ``fn(slice(None))`` does the whole batch.
    """
    count = x.shape[0]
    pool = _pool()
    if pool is None or count < 2:
        fn(slice(None))
        return
    chunks = batch_chunks(count, x.nbytes // count)
    if len(chunks) == 1:
        fn(chunks[0])
        return
    for _ in pool.map(fn, chunks):  # re-raises the first exception of any chunk
        pass


def threads() -> int:
    """The threads the chunked work runs on (1: everything in the caller's thread)."""
    pool = _pool()
    return 1 if pool is None else cpu_count()


def for_each_part(fn, parts) -> None:
    """Call ``fn(part)`` for every item of ``parts``: pieces of matrix products that each
    write their own block of the results, on the pool with OpenBLAS at one thread
    (``blas.py``), or in order in this thread with one thread.

    Unlike ``for_each_chunk`` the caller makes the parts. There should be several per
    thread, so that a thread that a busy machine deschedules leaves its remaining pieces to
    the others instead of holding up the whole product.
    """
    pool = _pool()
    if pool is None or len(parts) < 2:
        for part in parts:
            fn(part)
        return
    with blas.one_thread():
        for _ in pool.map(fn, parts):  # re-raises the first exception of any part
            pass


def split(count: int, pieces: int, multiple: int = 1) -> list[slice]:
    """About ``pieces`` consecutive slices covering range(count), each (but the last) a
    multiple of ``multiple`` long."""
    size = max(multiple, -(-count // max(1, pieces)) // multiple * multiple)
    return [slice(start, min(start + size, count)) for start in range(0, count, size)]
