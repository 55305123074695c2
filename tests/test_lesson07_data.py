"""Lesson 7, data: its checkers and helpers.

The checkers pass the answers and name the classic mistakes. Each wrong version below is
written the way a student might write it, independently of the checker's own list of
mistakes; each test asserts that the checker fails it AND says the right thing about it.
"""

import numpy as np
from lesson_checks import failing

from tinyalex.lessons import lesson07_data as lesson


def test_crop_mistakes():
    def off_by_one(images, mean, crop, top, left, flip):
        return lesson.crop_batch(images, mean, crop - 1, top, left, flip)

    assert "t : t + crop" in failing("crop_batch", off_by_one)

    def hwc(images, mean, crop, top, left, flip):
        return lesson.crop_batch(images, mean, crop, top, left, flip).transpose(0, 2, 3, 1)

    assert "HWC layout" in failing("crop_batch", hwc)

    def no_mean(images, mean, crop, top, left, flip):
        return lesson.crop_batch(images, 0 * mean, crop, top, left, flip)

    assert "mean image is not subtracted" in failing("crop_batch", no_mean)

    def mean_not_flipped(images, mean, crop, top, left, flip):
        out = []
        for b in range(len(images)):
            window = images[b, top[b]:top[b] + crop, left[b]:left[b] + crop].transpose(2, 0, 1)
            if flip[b]:
                window = window[:, :, ::-1]
            out.append(window - mean[:, top[b]:top[b] + crop, left[b]:left[b] + crop])
        return np.array(out, dtype=np.float32)

    assert "its mean window is not" in failing("crop_batch", mean_not_flipped)

    def upside_down(images, mean, crop, top, left, flip):
        x = lesson.crop_batch(images, mean, crop, top, left, np.zeros_like(flip))
        x[flip] = x[flip][:, :, ::-1, :]
        return x

    assert "mirrors up-down" in failing("crop_batch", upside_down)

    def swapped(images, mean, crop, top, left, flip):
        return lesson.crop_batch(images, mean, crop, left, top, flip)

    assert "swapped" in failing("crop_batch", swapped)


def test_ten_crop_mistakes():
    def past_the_edge(size, crop):
        far, c = size - crop + 1, (size - crop) // 2
        five = [(0, 0), (0, far), (far, 0), (far, far), (c, c)]
        return [(t, lft, False) for t, lft in five] + [(t, lft, True) for t, lft in five]

    assert "past the image" in failing("ten_crop_windows", past_the_edge)

    def rounded_up(size, crop):
        far, c = size - crop, -(-(size - crop) // 2)
        five = [(0, 0), (0, far), (far, 0), (far, far), (c, c)]
        return [(t, lft, False) for t, lft in five] + [(t, lft, True) for t, lft in five]

    assert "rounded down" in failing("ten_crop_windows", rounded_up)

    def interleaved(size, crop):
        windows = lesson.ten_crop_windows(size, crop)
        return [w for pair in zip(windows[:5], windows[5:], strict=True) for w in pair]

    assert "another order" in failing("ten_crop_windows", interleaved)


def test_lighting_mistakes():
    def in_pixel_units(rng, batch, eigvals, eigvecs, std):
        return (rng.normal(0.0, std, (batch, 3)) * eigvals) @ eigvecs.T

    assert "255 times too large" in failing("lighting_offsets", in_pixel_units)

    def rows(rng, batch, eigvals, eigvecs, std):
        return (rng.normal(0.0, std, (batch, 3)) * eigvals / 255) @ eigvecs

    assert "COLUMNS" in failing("lighting_offsets", rows)

    def square_roots(rng, batch, eigvals, eigvecs, std):
        return (rng.normal(0.0, std, (batch, 3)) * np.sqrt(eigvals) / 255) @ eigvecs.T

    assert "square roots" in failing("lighting_offsets", square_roots)
