"""Every kernels/*.cu compiles with NVRTC, the compiler CuPy uses, for sm_75, sm_80 and sm_90.

No GPU is needed: NVRTC is a plain library (the ``nvidia-cuda-nvrtc-cu12`` wheel of the ``test``
extra). Warnings count as failures. When NVRTC is missing these tests FAIL, with the fix in the
message: the compile check is the point of this file, so it is never skipped silently.
"""

import pytest

from tinyalex.cuda import nvrtc
from tinyalex.cuda.emulator import scan_kernels
from tinyalex.cuda.sources import kernel_files, kernel_source

KERNEL_FILES = [path.name for path in kernel_files()]


def test_the_kernel_files_are_there():
    expected = {"augment.cu", "im2col.cu", "lrn.cu", "maxpool.cu", "philox.cu", "sgd.cu"}
    assert expected <= set(KERNEL_FILES)


@pytest.mark.parametrize("arch", nvrtc.ARCHES)
@pytest.mark.parametrize("filename", KERNEL_FILES)
def test_kernel_compiles_with_nvrtc(filename, arch):
    source = kernel_source(filename)
    cubin, log = nvrtc.compile_source(source, filename, nvrtc.cupy_options(arch))
    assert log == "", f"{filename} for {arch}: NVRTC says\n{log}"
    assert cubin[:4] == b"\x7fELF"  # a real cubin for that architecture


@pytest.mark.parametrize("filename", ["augment.cu", "sgd.cu"])
def test_bit_exact_kernels_compile_without_fused_multiply_adds(filename):
    """These two promise NumPy's float32 results bit for bit: no FMA may merge two roundings."""
    ptx, _ = nvrtc.compile_source(kernel_source(filename), filename,
                                  ("-ftz=true", "-arch=compute_80"))
    text = ptx.decode()
    assert ".f32" in text and "fma" not in text


def test_every_kernel_file_has_a_header_and_extern_c_kernels():
    for filename in KERNEL_FILES:
        source = kernel_source(filename)
        assert source.startswith(f"// {filename} -- "), f"{filename}: header must come first"
        for word in ("Layout", "Launch geometry", "Must match"):
            assert word in source, f"{filename}: the header must state its {word.lower()}"
        assert scan_kernels(source), f'{filename}: no extern "C" __global__ kernel'


def test_a_broken_kernel_fails_with_the_compiler_log():
    source = 'extern "C" __global__ void broken(float* x) { x[0] = undefined_name; }\n'
    with pytest.raises(nvrtc.NVRTCError, match="undefined_name"):
        nvrtc.compile_source(source, "broken.cu", nvrtc.cupy_options("sm_80"))


def test_host_headers_are_rejected_as_on_a_gpu():
    """g++ (the emulator) would accept <cfloat>; NVRTC has no host headers, so CI must say no."""
    source = '#include <cfloat>\nextern "C" __global__ void f(float* x) { x[0] = FLT_MAX; }\n'
    with pytest.raises(nvrtc.NVRTCError, match="cfloat"):
        nvrtc.compile_source(source, "host_header.cu", nvrtc.cupy_options("sm_75"))


def test_cli(tmp_path, capsys):
    assert nvrtc.main([]) == 0
    warns = tmp_path / "warns.cu"
    warns.write_text('extern "C" __global__ void f(float* x) { int unused = 3; x[0] = 1.0f; }\n')
    assert nvrtc.main(["--arch", "sm_80", str(warns)]) == 1
    assert "unused" in capsys.readouterr().out  # the log is printed
