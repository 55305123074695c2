"""tinyalex's CUDA kernels (``kernels/*.cu``) from Python.

- ``layers``: the layer functions of ``tinyalex.layers`` on those kernels (``impl="cuda"``),
  for CuPy arrays on a GPU or NumPy arrays on the CPU emulator.
- ``ops``: one launcher per kernel, with argument checks; ``layers`` is built on them.
- ``staging``: a GPU training step's host side: uint8 batches through pinned memory with the
  crops made on the GPU, and the running loss read back only every few steps.
- ``emulator`` + ``emulate.h``: compile a ``.cu`` file with g++ and launch its kernels on NumPy
  arrays with CuPy's calling convention; an AddressSanitizer debug mode.
- ``nvrtc``: compile every kernel with NVRTC for sm_75/80/90, no GPU needed
  (``python -m tinyalex.cuda.nvrtc``).
- ``sources``: where the ``.cu`` files are, and each kernel's declared block size.
"""
