"""Shapes and tolerances shared by the kernel tests (emulator: test_kernels.py; GPU:
test_kernels_gpu.py), so that both run exactly the same comparisons."""

import numpy as np

FWD = {"rtol": 1e-5, "atol": 1e-5}  # |kernel - numpy| <= tol + eps * |numpy|, forward
BWD = {"rtol": 1e-4, "atol": 1e-4}  # backward


def rand(*shape, seed=0):
    """Standard normal float32 array of the given shape."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def scaled_close(got, ref, tol):
    """(ok, error): max|got - ref| <= tol * (1 + max|ref|), for whole-network outputs."""
    error = float(np.max(np.abs(got.astype(np.float64) - ref)))
    return error <= tol * (1 + float(np.max(np.abs(ref)))), error


def pool_input(N, C, H, W, seed, ties):
    """Input for a max-pool test; with ties, few distinct values so windows hold equal maxima."""
    if ties:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 3, size=(N, C, H, W)).astype(np.float32)
    return rand(N, C, H, W, seed=seed)


# (N, C, H, W, kh, kw, stride, pad): odd, non-square images and kernels, stride 4, pad 2,
# stride > kernel (skipped pixels), a window as large as the padded image.
IM2COL_CASES = [
    (2, 3, 11, 11, 3, 3, 1, 1),
    (2, 3, 35, 31, 11, 11, 4, 0),  # conv1-like: 11x11, stride 4
    (2, 4, 9, 7, 5, 5, 1, 2),  # conv2-like: 5x5, pad 2, non-square
    (1, 2, 8, 10, 3, 3, 2, 0),
    (2, 3, 7, 9, 3, 2, 2, 1),  # non-square kernel
    (1, 2, 9, 9, 2, 2, 3, 0),  # stride > kernel
    (1, 1, 5, 4, 7, 6, 1, 1),  # one window covering the padded image
]


# (N, C, H, W, F, K, stride, pad, groups)
CONV_CASES = [
    (2, 3, 15, 13, 4, 5, 4, 2, 1),  # stride 4, pad 2, non-square
    (2, 4, 9, 9, 6, 5, 1, 2, 2),  # groups 2 (the two-GPU split), pad 2
    (1, 6, 7, 6, 4, 3, 1, 1, 2),
    (2, 2, 11, 11, 4, 11, 4, 0, 2),
]


# (N, C, H, W, n, k, alpha, beta)
LRN_CASES = [
    (2, 7, 5, 3, 5, 2.0, 1e-4, 0.75),  # the paper's constants, odd and non-square
    (2, 8, 4, 4, 5, 1.0, 0.5, 0.75),  # large alpha: the cross-channel term matters
    (1, 2, 3, 5, 5, 2.0, 0.3, 0.75),  # fewer channels than the window
    (1, 6, 3, 3, 3, 1.0, 0.1, 0.5),
    (1, 4, 2, 3, 1, 2.0, 0.2, 1.0),  # n = 1: each channel alone
]


# (N, C, H, W, size, stride)
POOL_CASES = [
    (2, 3, 13, 13, 3, 2),  # AlexNet's overlapping 3/2 pool
    (1, 2, 7, 10, 3, 2),  # non-square, a leftover column
    (2, 2, 8, 8, 2, 2),  # non-overlapping
    (1, 3, 6, 5, 3, 1),  # heavy overlap
    (1, 2, 9, 8, 2, 3),  # gaps between windows
]
