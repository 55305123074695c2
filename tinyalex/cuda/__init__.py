"""tinyalex's CUDA kernels (``kernels/*.cu``) from Python.

- ``layers``: the layer functions of ``tinyalex.layers`` on those kernels (``impl="cuda"``),
  for CuPy arrays on a GPU or NumPy arrays on the CPU emulator.
- ``ops``: one launcher per kernel, with argument checks; ``layers`` is built on them.
- ``emulator`` + ``emulate.h``: compile a ``.cu`` file with g++ and launch its kernels on NumPy
  arrays with CuPy's calling convention; an AddressSanitizer debug mode.
- ``nvrtc``: compile every kernel with NVRTC for sm_75/80/90, no GPU needed
  (``python -m tinyalex.cuda.nvrtc``).
- ``sources``: where the ``.cu`` files are, and each kernel's declared block size.
"""
