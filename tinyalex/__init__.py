"""tinyalex: AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012) from scratch on NumPy and CuPy."""

import os

# OpenBLAS, NumPy's matrix-product library, keeps its worker threads busy-waiting for the
# next product for about 2^28 CPU cycles (~0.1 s) after each one. tinyalex alternates
# products with multi-core array work (im2col, LRN, pooling; see tinyalex/parallel.py),
# and on a 2-core machine the spinning threads take a core away from that work: the mini
# training step ran 1.5x slower. 2^4 cycles means "sleep at once". OpenBLAS reads this
# variable when NumPy first loads it, so it only takes effect when tinyalex is imported
# before NumPy (as in `python -m tinyalex.train`); a value set by the user is kept.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
