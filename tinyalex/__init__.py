"""tinyalex: AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012) from scratch on NumPy and CuPy.

    tinyalex.layers        the layers, written to be read beside the paper (the textbook)
    tinyalex.layers.naive  the same as plain loops (the definitions)
    tinyalex.fast          the same, arranged for speed on a CPU
    tinyalex.cuda.layers   the same on CUDA kernels (a GPU, or the CPU emulator)
    tinyalex.model         AlexNet(config, impl=...): the network, on any of the three
"""

__version__ = "0.1.0"
