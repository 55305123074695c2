"""The CPU emulator itself: CUDA's execution model on small kernels written for these tests.

The kernels of kernels/*.cu are checked in test_kernels.py; here each test pins down one piece
of the model (index variables, __shared__, __syncthreads, dynamic shared memory, atomics), the
argument checks, the build cache, and the AddressSanitizer debug mode.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tinyalex
from tinyalex.cuda import emulator
from tinyalex.cuda.emulator import EmulatedModule, scan_kernels

REPO_ROOT = Path(tinyalex.__file__).resolve().parent.parent

INDEX_KERNEL = r"""
// Every thread writes its own coordinates: out[global thread id] = packed indices.
extern "C" __global__ void where_am_i(int* out) {
    const int block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const int thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    const int id = block * (blockDim.x * blockDim.y * blockDim.z) + thread;
    out[4 * id + 0] = blockIdx.x + 100 * blockIdx.y + 10000 * blockIdx.z;
    out[4 * id + 1] = threadIdx.x + 100 * threadIdx.y + 10000 * threadIdx.z;
    out[4 * id + 2] = blockDim.x + 100 * blockDim.y + 10000 * blockDim.z;
    out[4 * id + 3] = gridDim.x + 100 * gridDim.y + 10000 * gridDim.z;
    SYNC
}
"""

SHARED_KERNELS = r"""
// Tree reduction in shared memory: each block sums its 256 inputs.
extern "C" __global__ void block_sum(const float* x, float* sums, int n) {
    __shared__ float partial[256];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    partial[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) sums[blockIdx.x] = partial[0];
}

// Reverse n values through dynamic shared memory; threads past n return before the barrier.
extern "C" __global__ void reverse(float* x, int n) {
    extern __shared__ float tile[];
    const int t = threadIdx.x;
    if (t >= n) return;
    tile[t] = x[t];
    __syncthreads();  // every write to tile must land before anyone reads a neighbour's
    x[t] = tile[n - 1 - t];
}

// Many threads hit the same few counters: only atomics count right.
extern "C" __global__ void histogram(const int* values, int* counts, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) atomicAdd(&counts[values[i]], 1);
    __syncthreads();  // barrier mode: the block's threads really run at once
}
"""


@pytest.fixture(scope="module")
def shared_module():
    return EmulatedModule(code=SHARED_KERNELS, name="shared_toys.cu")


def test_scan_finds_kernels_and_their_barriers():
    source = textwrap.dedent("""
        // extern "C" __global__ void in_a_comment(float* x) { __syncthreads(); }
        extern "C" __global__ void plain(float* x) { x[0] = 1.0f; }
        extern "C" __global__ void synced(float* x) { if (x) { __syncthreads(); } }
    """)
    assert scan_kernels(source) == {"plain": False, "synced": True}
    helper = '__device__ void wait() { __syncthreads(); }\n' + source
    assert scan_kernels(helper) == {"plain": True, "synced": True}  # may call the helper


@pytest.mark.parametrize("sync", ["", "__syncthreads();"], ids=["loop-mode", "barrier-mode"])
def test_index_variables_in_a_3d_launch(sync):
    source = INDEX_KERNEL.replace("SYNC", sync)
    assert scan_kernels(source) == {"where_am_i": bool(sync)}
    module = EmulatedModule(code=source, name="index.cu")
    grid, block = (3, 2, 2), (4, 3, 2)
    threads = np.prod(grid) * np.prod(block)
    out = np.full((threads, 4), -1, np.int32)
    module.get_function("where_am_i")(grid, block, (out,))
    bz, by, bx, tz, ty, tx = np.meshgrid(*(np.arange(d) for d in grid[::-1] + block[::-1]),
                                         indexing="ij")
    expected_block = (bx + 100 * by + 10000 * bz).ravel()
    expected_thread = (tx + 100 * ty + 10000 * tz).ravel()
    np.testing.assert_array_equal(out[:, 0], expected_block)
    np.testing.assert_array_equal(out[:, 1], expected_thread)
    assert (out[:, 2] == 4 + 100 * 3 + 10000 * 2).all()
    assert (out[:, 3] == 3 + 100 * 2 + 10000 * 2).all()


def test_shared_memory_reduction(shared_module):
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    sums = np.zeros(4, np.float32)
    shared_module.get_function("block_sum")((4,), (256,), (x, sums, np.int32(1000)))
    expected = [x[i * 256 : (i + 1) * 256].sum(dtype=np.float64) for i in range(4)]
    np.testing.assert_allclose(sums, expected, rtol=1e-5, atol=1e-5)


def test_barrier_dynamic_shared_memory_and_early_return(shared_module):
    x = np.arange(100, dtype=np.float32)
    shared_module.get_function("reverse")((1,), (128,), (x, np.int32(100)), shared_mem=400)
    np.testing.assert_array_equal(x, np.arange(100, dtype=np.float32)[::-1])


def test_atomic_add_with_real_threads(shared_module):
    values = np.random.default_rng(1).integers(0, 5, size=2000).astype(np.int32)
    counts = np.zeros(5, np.int32)
    shared_module.get_function("histogram")((8,), (256,), (values, counts, np.int32(2000)))
    np.testing.assert_array_equal(counts, np.bincount(values, minlength=5))


def test_arguments_are_checked_against_the_kernel_signature(shared_module):
    kernel = shared_module.get_function("block_sum")
    assert kernel.params == ["const float*", "float*", "int"]
    x, sums = np.zeros(256, np.float32), np.zeros(1, np.float32)
    with pytest.raises(TypeError, match="np.int32"):
        kernel((1,), (256,), (x, sums, 256))  # a Python int: CuPy would pass 8 bytes
    with pytest.raises(TypeError, match="np.int32"):
        kernel((1,), (256,), (x, sums, np.int64(256)))
    with pytest.raises(TypeError, match="float32 array"):
        kernel((1,), (256,), (x.astype(np.float64), sums, np.int32(256)))
    with pytest.raises(TypeError, match="takes 3 arguments"):
        kernel((1,), (256,), (x, sums))
    with pytest.raises(ValueError, match="C-contiguous"):
        kernel((1,), (256,), (x[::2], sums, np.int32(128)))
    sums.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        kernel((1,), (256,), (x, sums, np.int32(256)))


def test_launch_limits_are_cuda_s(shared_module):
    kernel = shared_module.get_function("reverse")
    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="1024"):
        kernel((1,), (1025,), (x, np.int32(4)))
    with pytest.raises(ValueError, match="1024 threads"):
        kernel((1,), (64, 32), (x, np.int32(4)))
    with pytest.raises(ValueError, match="grid"):
        kernel((0,), (4,), (x, np.int32(4)))
    with pytest.raises(ValueError, match="shared_mem"):
        kernel((1,), (4,), (x, np.int32(4)), shared_mem=49153)
    with pytest.raises(KeyError, match="reverse"):
        shared_module.get_function("no_such_kernel")


def test_builds_are_cached_outside_the_repository(shared_module):
    again = EmulatedModule(code=SHARED_KERNELS, name="shared_toys.cu")
    assert again.library_path == shared_module.library_path
    assert REPO_ROOT not in shared_module.library_path.resolve().parents


def test_compile_errors_point_at_the_cu_line():
    source = 'extern "C" __global__ void f(float* x) {\n    x[0] = 1.0f;\n    x[1] = oops;\n}\n'
    with pytest.raises(RuntimeError, match=r"typo\.cu:3"):
        EmulatedModule(code=source, name="typo.cu")


def test_warp_intrinsics_are_refused_clearly():
    source = ('extern "C" __global__ void f(float* x) '
              "{ x[0] = __shfl_down_sync(0xffffffff, x[0], 1); }\n")
    with pytest.raises(RuntimeError, match="warp intrinsic"):
        EmulatedModule(code=source, name="warp.cu")


OUT_OF_BOUNDS = r"""
import numpy as np
from tinyalex.cuda.emulator import EmulatedModule
module = EmulatedModule(code='''
extern "C" __global__ void fill(float* x, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) x[i] = 1.0f;  // bug: <= also writes x[n], one past the end
}
''', name="off_by_one.cu")
x = np.zeros(1000, np.float32)
module.get_function("fill")((4,), (256,), (x, np.int32(N)))
print("finished")
"""


def _run_under_asan(n: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, **emulator.asan_environment())
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    script = OUT_OF_BOUNDS.replace("np.int32(N)", f"np.int32({n})")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)


def test_debug_mode_catches_out_of_bounds_writes():
    caught = _run_under_asan(1000)
    assert caught.returncode != 0
    assert "heap-buffer-overflow" in caught.stderr
    assert "off_by_one.cu:4" in caught.stderr  # the faulty line of the kernel source
    assert "finished" not in caught.stdout
    clean = _run_under_asan(999)  # the same kernel within bounds runs clean under ASan
    assert clean.returncode == 0, clean.stderr
    assert "finished" in clean.stdout


def test_debug_mode_explains_how_to_start_it(monkeypatch):
    if emulator.asan_loaded():
        pytest.skip("this process already runs under AddressSanitizer")
    with pytest.raises(RuntimeError, match="tinyalex.cuda.emulator --debug"):
        EmulatedModule(code=SHARED_KERNELS, name="shared_toys.cu", debug=True)
