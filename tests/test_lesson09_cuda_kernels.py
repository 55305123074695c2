"""Lesson 9, the CUDA kernels: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
import pytest
from lesson_checks import failing

from tinyalex.lessons import lesson09_cuda_kernels as lesson


def test_index_arithmetic_mistakes():
    def ow_by_height(index, OH, OW):
        return index // (OW * OH), (index // OW) % OH, index % OH

    assert "index % OW" in failing("thread_coords", ow_by_height)

    def no_wrap(index, OH, OW):
        return index // (OW * OH), index // OW, index % OW

    assert "% OH" in failing("thread_coords", no_wrap)

    assert "rounds DOWN" in failing("grid_blocks", lambda total, block: total // block)
    assert "useless block" in failing("grid_blocks", lambda total, block: total // block + 1)

    def floor_first(h, size, stride, count):
        return np.maximum(0, (h - size + 1) // stride), np.minimum(count - 1, h // stride)

    assert "ceiling" in failing("windows_containing", floor_first)

    def unclipped(h, size, stride, count):
        first, _ = lesson.windows_containing(h, size, stride, count)
        return first, h // stride

    assert "clipped at count - 1" in failing("windows_containing", unclipped)


def test_kernel_helpers_read_and_plant():

    text, first = lesson.kernel_text("maxpool.cu", "maxpool_forward_kernel")
    assert text.startswith('extern "C"') and text.endswith("}") and first > 1
    assert lesson.numbered("a\nb", 7) == "   7  a\n   8  b"
    source = "f(){ if (i >= n) return; }\ng(){ if (i >= n) return; }"
    planted = lesson.plant(source, "i >= n", "i > n", after="g(")
    assert planted.count("i >= n") == 1 and planted.index("i > n") > planted.index("g(")
    with pytest.raises(ValueError, match="say where"):
        lesson.plant(source, "i >= n", "i > n")
    assert lesson.line_of(planted, "i > n") == 2
    report = ("==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000001234\n"
              "READ of size 4 at 0x602000001234 thread T0\n"
              "    #0 0x7f00deadbeef in k /tmp/xyz/bug.cu:37\n    #1 0x7f in other\n")
    summary = lesson.asan_summary(report, "bug.cu")
    assert "k bug.cu:37" in summary and "/tmp" not in summary and "other" not in summary


def test_lesson_9_gpu_timing_runs_on_a_fake_cupy(fake_cupy):
    # the GPU branch of lesson 9, on tests/fake_cupy.py: the real kernel through the emulator
    from tinyalex import backend

    assert backend.gpu_problem() is None
    timing = lesson.gpu_maxpool_timing(shape=(2, 3, 9, 13), repeats=2)
    assert timing["max_difference"] == 0.0 and timing["cpu_ms"] > 0 and timing["gpu_ms"] >= 0
