"""tinyalex's raw CUDA kernels (``kernels/*.cu``) from Python.

- ``ops``: the hot path of the layers (im2col/col2im, LRN, max-pool) on those kernels, for CuPy
  arrays on a GPU or NumPy arrays on the CPU emulator; ``tinyalex.backend.kernel_ops`` picks.
- ``emulator`` + ``emulate.h``: compile a ``.cu`` file with g++ and launch its kernels on NumPy
  arrays with CuPy's calling convention; an AddressSanitizer debug mode.
- ``nvrtc``: compile every kernel with NVRTC for sm_75/80/90, no GPU needed
  (``python -m tinyalex.cuda.nvrtc``).
- ``sources``: where the ``.cu`` files are (checkout or installed package).
"""
