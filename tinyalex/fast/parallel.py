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
import itertools
import os
import threading

from tinyalex.backend import cpu_count
from tinyalex.fast import blas

CHUNK_BYTES = 1 << 20  # aim for about 1 MiB of input per chunk (fits a core's L2 cache)


class _Pool:
    """``threads`` worker threads, each pinned to its own core, that run the items of one
    ``map`` at a time: each takes the next item until none are left.

    Lighter than ``concurrent.futures.ThreadPoolExecutor``, which makes a future and a queue
    entry per item: a training step hands out about 50 maps of 2-16 items each, and an empty
    map of 8 items took 0.12 ms there against 0.06 here (the mini step at two threads:
    112 -> 110 ms). Here one map wakes each worker once and the items are handed out by a
    shared counter.
    """

    def __init__(self, threads: int, cores: list[int] | None):
        self._lock = threading.Lock()  # one map at a time
        self._wake = [threading.Semaphore(0) for _ in range(threads)]
        self._job = _NO_JOB
        for i in range(threads):
            threading.Thread(target=self._work, args=(i, cores), daemon=True,
                             name=f"tinyalex-{i}").start()

    def map(self, fn, items) -> None:
        """fn(item) for every item, on the workers; re-raises the first exception raised."""
        items = list(items)
        if not self._lock.acquire(blocking=False):  # a map inside a map: run it here
            for item in items:
                fn(item)
            return
        try:
            job = self._job = _Job(fn, items)
            for wake in self._wake:
                wake.release()
            job.done.wait()
            if job.error is not None:
                raise job.error
        finally:
            # forget the job: its function and items refer to the layer's arrays, which the
            # buffer pool (workspace.py) must see as free again. A worker that wakes late
            # runs this empty job, or finds the old one's items all taken.
            self._job = _NO_JOB
            self._lock.release()

    def _work(self, index: int, cores: list[int] | None) -> None:
        _pin_to_own_core(cores, index)
        while True:
            self._wake[index].acquire()
            self._job.run()


class _Job:
    """The items of one map and who does what: ``next(counter)`` (atomic in CPython) gives
    each item to exactly one worker; the worker finishing the last item sets ``done``."""

    def __init__(self, fn, items: list):
        self.fn, self.items = fn, items
        self.counter = itertools.count()
        self.left = len(items)
        self.left_lock = threading.Lock()
        self.error = None
        self.done = threading.Event()
        if not items:
            self.done.set()

    def run(self) -> None:
        while (i := next(self.counter)) < len(self.items):
            try:
                if self.error is None:
                    self.fn(self.items[i])
            except BaseException as error:  # noqa: BLE001  (re-raised by map)
                if self.error is None:
                    self.error = error
            finally:
                with self.left_lock:
                    self.left -= 1
                    if self.left == 0:
                        self.done.set()


_NO_JOB = _Job(None, [])


@functools.lru_cache(maxsize=1)
def _pool() -> _Pool | None:
    threads = cpu_count()
    return _Pool(threads, _cores_for(threads)) if threads > 1 else None


# A forked child process (e.g. a data-loading worker) inherits the pool object but not its
# threads: forget it there, so that the child makes its own on first use instead of waiting
# forever for threads that do not exist.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.cache_clear)


def _cores_for(threads: int) -> list[int] | None:
    """The cores the pool's threads take one each: the first ``threads`` this process may
    use, or None (no pinning) where there are fewer, or no affinity calls (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return cores[:threads] if len(cores) >= threads else None


def _pin_to_own_core(cores: list[int] | None, index: int) -> None:
    """Pin the calling thread, the pool's worker ``index``, to core ``cores[index]``.

    Why: the workers wake together for every map, and Linux tends to wake a thread on the
    core of the thread that woke it; two workers then shared one core while the other idled,
    until the scheduler's balancing moved one -- in some processes, all the time (measured:
    the mini step at two threads took 137 instead of 113 ms in about one process in three;
    two pieces of elementwise work ran one after the other). One worker per core leaves
    nothing to chance; the items still go to whichever worker is free.
    """
    if cores is None:
        return
    try:
        os.sched_setaffinity(0, {cores[index % len(cores)]})  # 0: the calling thread (Linux)
    except OSError:
        pass  # a container may forbid it: the threads then float as before


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
    pool.map(fn, chunks)  # re-raises the first exception of any chunk


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
        pool.map(fn, parts)  # re-raises the first exception of any part


def split(count: int, pieces: int, multiple: int = 1) -> list[slice]:
    """About ``pieces`` consecutive slices covering range(count), each (but the last) a
    multiple of ``multiple`` long."""
    size = max(multiple, -(-count // max(1, pieces)) // multiple * multiple)
    return [slice(start, min(start + size, count)) for start in range(0, count, size)]
