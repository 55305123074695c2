"""tinyalex: AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012) from scratch on NumPy and CuPy."""

__version__ = "0.1.0"
