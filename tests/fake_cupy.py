"""A fake ``cupy`` for the tests: NumPy arrays dressed as GPU arrays, kernels on the CPU emulator.

tinyalex's GPU-only Python code (the CUDA layers on CuPy arrays, tinyalex.cuda.staging's pinned
buffers, streams and events, the running loss that stays on the device, train.py on
``--device gpu``, benchmarks/gpu.py) would otherwise run nowhere but on a GPU. Installed as
``sys.modules["cupy"]`` (the ``fake_cupy`` fixture in conftest.py, or ``TINYALEX_FAKE_CUPY=1``
for a whole pytest run), this module makes that code run on a CPU, and makes it fail where a
real GPU would disappoint:

- ``ndarray`` is a NumPy subclass. Every read of device data by the host -- ``get()``,
  ``float()``, ``int()``, ``bool()``, ``item()``, formatting -- is counted in ``READS`` (a
  training step must make none); every copy to the device is counted in ``UPLOADS`` (bytes).
- Mixing a plain NumPy array into device arithmetic raises TypeError, as CuPy does.
- ``empty`` fills new memory with 0xFF bytes (NaN in float32, -1 in int32), so an element a
  kernel forgets to write shows up.
- ``RawModule`` compiles the ``.cu`` source with tinyalex's emulator: the real kernels run.
- A stream made with ``Stream(non_blocking=True)`` *defers* its copies until an event
  recorded after them is waited for (``Event.synchronize``, ``Stream.wait_event``) or the
  stream is synchronised: a consumer that forgets to wait reads old data. Everything else
  runs at once, in order (so a pinned buffer refilled too early cannot show here: the
  compute stream's wait has already run the copy).

It is a test double, not CuPy: it runs no GPU code, measures nothing, and NumPy functions that
CuPy lacks would pass here; ``pytest -m gpu`` on a real GPU remains the check.
"""

from __future__ import annotations

import contextlib
import types

import numpy as np

FAKE = True
__version__ = "0+fake"
READS = [0]  # device -> host reads so far
UPLOADS = [0]  # host -> device bytes so far


def _host_read(what: str) -> None:
    READS[0] += 1


def _base(a):
    """The plain NumPy view of a fake device array (anything else unchanged, recursively)."""
    if isinstance(a, ndarray):
        return a.view(np.ndarray)
    if isinstance(a, list | tuple):
        return type(a)(_base(item) for item in a)
    return a


def _wrap(result):
    """NumPy results as fake device arrays; scalars as 0-d arrays (CuPy has no scalars)."""
    if isinstance(result, ndarray):
        return result
    if isinstance(result, np.ndarray):
        return result.view(ndarray)
    if isinstance(result, np.generic):
        return np.asarray(result).view(ndarray)
    if isinstance(result, tuple):
        return tuple(_wrap(item) for item in result)
    return result


def _refuse_host(args, what: str) -> None:
    """TypeError for a NumPy array among device operands, like CuPy's."""
    for a in args:
        if isinstance(a, list | tuple):
            _refuse_host(a, what)
        elif isinstance(a, np.ndarray) and not isinstance(a, ndarray):
            raise TypeError(f"fake cupy: {what} got a NumPy (host) array {a.shape} among device "
                            "arrays; CuPy refuses the implicit copy: use cupy.asarray")


class ndarray(np.ndarray):  # noqa: N801 -- cupy's own name
    """A "device" array: NumPy memory, CuPy's rules."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host(inputs + (out or ()), f"{ufunc.__name__}.{method}")
        if out is not None:
            kwargs["out"] = tuple(_base(o) for o in out)
        result = getattr(ufunc, method)(*_base(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host(args, func.__name__)  # CuPy dispatches np.* to itself (NEP 18)
        return _wrap(func(*_base(args), **{k: _base(v) for k, v in kwargs.items()}))

    # ---- everything that reads device memory on the host counts as a read -------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        _host_read("get")
        data = np.array(self.view(np.ndarray), order=order)
        if out is not None:
            out[...] = data
            return out
        return data

    def item(self, *args):
        _host_read("item")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        _host_read("tolist")
        return self.view(np.ndarray).tolist()

    def __float__(self):
        _host_read("float")
        return float(self.view(np.ndarray))

    def __int__(self):
        _host_read("int")
        return int(self.view(np.ndarray))

    def __bool__(self):
        _host_read("bool")
        return bool(self.view(np.ndarray))

    def __index__(self):
        _host_read("index")
        return self.view(np.ndarray).__index__()

    def __format__(self, spec):
        _host_read("format")
        return format(self.view(np.ndarray)[()] if self.ndim == 0 else self.view(np.ndarray),
                      spec)

    def __repr__(self):
        _host_read("repr")
        return f"fake_cupy.{np.ndarray.__repr__(self.view(np.ndarray))}"

    def set(self, arr, stream=None):
        """Copy a host array in (on ``stream``: deferred if it is a deferred stream)."""
        if not isinstance(arr, np.ndarray) or isinstance(arr, ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype or arr.shape != self.shape:
            raise ValueError(f"set: {arr.dtype}{arr.shape} into {self.dtype}{self.shape}")
        target = self.view(np.ndarray)

        def copy():
            UPLOADS[0] += arr.nbytes
            target[...] = arr  # reads arr NOW: whatever the pinned buffer holds at that time

        (stream or get_current_stream())._enqueue(copy)


# ---- the array module ------------------------------------------------------------------------


def get_array_module(*arrays):
    import sys

    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in arrays) else np


def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray) and (dtype is None or a.dtype == dtype):
        return a
    if isinstance(a, ndarray):
        return a.astype(dtype)
    host = np.array(a, dtype=dtype, order=order or "C", copy=True)
    UPLOADS[0] += host.nbytes
    return host.view(ndarray)


array = asarray


def asnumpy(a, stream=None, order="C", out=None):
    return a.get(order=order, out=out) if isinstance(a, ndarray) else np.asarray(a, order=order)


def empty(shape, dtype=float, order="C"):
    """New memory full of 0xFF bytes: NaN for floats, -1 for ints, so unwritten data shows."""
    data = np.empty(shape, dtype=dtype, order=order)
    data.view(np.uint8).fill(0xFF)
    return data.view(ndarray)


def empty_like(a, dtype=None, order="K", shape=None):
    return empty(a.shape if shape is None else shape, dtype or a.dtype)


def __getattr__(name):
    """Every other NumPy name: functions run on the NumPy views and return device arrays."""
    attribute = getattr(np, name)
    if isinstance(attribute, np.ufunc) or not callable(attribute) or isinstance(attribute, type):
        return attribute  # ufuncs dispatch through ndarray.__array_ufunc__; dtypes as they are

    def on_device(*args, **kwargs):
        _refuse_host(args, name)
        return _wrap(attribute(*_base(args), **{k: _base(v) for k, v in kwargs.items()}))

    on_device.__name__ = name
    return on_device


# ---- cupy.cuda: streams, events, pinned memory, the device -----------------------------------


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._stream, self._position = None, 0

    def record(self, stream=None):
        self._stream = stream or get_current_stream()
        self._position = self._stream._enqueued
        return self

    def synchronize(self):
        if self._stream is not None:
            self._stream._run_until(self._position)

    @property
    def done(self):
        return self._stream is None or self._stream._executed >= self._position


class Stream:
    """Immediate by default; ``non_blocking=True`` streams defer their copies (see the top)."""

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.deferred = bool(non_blocking)
        self._queue: list = []
        self._enqueued = self._executed = 0

    def _enqueue(self, operation):
        self._enqueued += 1
        if self.deferred:
            self._queue.append(operation)
        else:
            operation()
            self._executed = self._enqueued

    def _run_until(self, position):
        while self._executed < position:
            self._queue.pop(0)()
            self._executed += 1

    def synchronize(self):
        self._run_until(self._enqueued)

    def record(self, event=None):
        return (event or Event()).record(self)

    def wait_event(self, event):
        """Work queued here after this call must see the event's work: run it now."""
        event.synchronize()

    def __enter__(self):
        _current.append(self)
        return self

    def __exit__(self, *exc):
        _current.pop()


_null_stream = Stream()
_current: list[Stream] = [_null_stream]


def get_current_stream():
    return _current[-1]


def alloc_pinned_memory(nbytes):
    return bytearray(int(nbytes))  # a buffer np.ndarray(shape, dtype, buffer=...) can use


def get_elapsed_time(start, end):
    return 1.0  # milliseconds; the fake measures nothing


class Device:
    def __init__(self, device=None):
        self.id = 0

    def synchronize(self):
        for stream in list(_current):
            stream.synchronize()

    @property
    def compute_capability(self):
        return "90"


_runtime = types.SimpleNamespace(
    getDeviceCount=lambda: 1,
    getDeviceProperties=lambda device: {"name": b"fake GPU (NumPy + tinyalex emulator)",
                                        "totalGlobalMem": 2**30},
    runtimeGetVersion=lambda: 13000,
    driverGetVersion=lambda: 13000,
)

cuda = types.SimpleNamespace(Stream=Stream, Event=Event, get_current_stream=get_current_stream,
                             alloc_pinned_memory=alloc_pinned_memory, Device=Device,
                             get_elapsed_time=get_elapsed_time, runtime=_runtime)


# ---- raw kernels: the emulator ---------------------------------------------------------------


class _Kernel:
    def __init__(self, emulated):
        self.emulated = emulated

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        self.emulated(grid, block, tuple(_base(a) for a in args), shared_mem=shared_mem)


class RawModule:
    """``cupy.RawModule(code=..., options=...)`` on the CPU emulator."""

    def __init__(self, code=None, options=(), name_expressions=None, path=None, backend="nvrtc"):
        from tinyalex.cuda.emulator import EmulatedModule

        self.options = tuple(options)
        self._module = EmulatedModule(code=code, name="fake_cupy_rawmodule.cu")

    def get_function(self, name):
        return _Kernel(self._module.get_function(name))


# ---- cupy.random, cupy._core (TF32), the memory pool -------------------------------------------

_rng = np.random.default_rng(0)
random = types.SimpleNamespace(
    standard_normal=lambda size=None, dtype=float: asarray(
        _rng.standard_normal(size).astype(dtype)),
    randint=lambda low, high=None, size=None: asarray(_rng.integers(low, high, size)),
)
COMPUTE_TYPES: dict = {}  # what set_compute_type was told, by dtype name
_core = types.SimpleNamespace(
    set_compute_type=lambda dtype, compute_type: COMPUTE_TYPES.__setitem__(np.dtype(dtype).name,
                                                                           compute_type),
    _routines_linalg=types.SimpleNamespace(COMPUTE_TYPE_DEFAULT=1, COMPUTE_TYPE_TF32=7))


def get_default_memory_pool():
    return types.SimpleNamespace(free_all_blocks=lambda: None, used_bytes=lambda: 0)


def reset_counters() -> None:
    READS[0] = UPLOADS[0] = 0


@contextlib.contextmanager
def counting():
    """``with counting() as c: ...`` then ``c.reads``, ``c.uploads`` (bytes) inside the block."""
    before = (READS[0], UPLOADS[0])
    result = types.SimpleNamespace(reads=0, uploads=0)
    try:
        yield result
    finally:
        result.reads, result.uploads = READS[0] - before[0], UPLOADS[0] - before[1]


def main(argv=None) -> int:
    """``python tests/fake_cupy.py SCRIPT [ARGS...]``: run a script with this fake as ``cupy``."""
    import runpy
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python tests/fake_cupy.py SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    sys.modules["cupy"] = sys.modules[__name__]
    sys.argv = argv
    try:
        runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


if __name__ == "__main__":  # run as a file: import the module proper, then use its main
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fake_cupy

    raise SystemExit(fake_cupy.main())
