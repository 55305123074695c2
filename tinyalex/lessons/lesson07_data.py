"""Lesson 7, data (``notebooks/07_data.ipynb``): exercises and figure.

Exercises: a batch of crops and reflections minus the mean image (section 2, 4.1), the ten
windows of ten-crop testing, PCA lighting's offsets. Figure: crop windows drawn on a
photograph.
"""


from __future__ import annotations

import numpy as np

from tinyalex.data import augment
from tinyalex.lessons import plots
from tinyalex.lessons.checking import (
    Case,
    Exercise,
    Lesson,
    first_match,
    register,
)

LESSON = Lesson(
    7, "07_data.ipynb", "Data", ("2", "4.1"),
    "the 256 rescale and centre crop, the mean image, random crops and reflections, PCA "
    "lighting on a photograph, ten-crop testing measured")


# ---- the lesson's figures ------------------------------------------------------------------

def draw_windows(image, windows, crop: int, title: str = "", labels=None):
    """An image (H, W, 3) with crop x crop windows outlined; windows: (top, left[, flip])."""
    plt = plots.pyplot()
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(image)
    for k, window in enumerate(windows):
        top, left = int(window[0]), int(window[1])
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), crop, crop, fill=False, lw=2,
                               edgecolor=f"C{k % 10}", ls="--" if k % 2 else "-"))
        if labels is not None:
            # the label in the window's corner nearest the image's edge, so that windows
            # sharing a corner (the four corners of ten-crop testing) keep their labels apart
            height, width = np.shape(image)[:2]
            row = (top + crop - 4, "bottom") if 2 * top > height - crop else (
                (top + 3, "top") if 2 * top < height - crop else (top + crop // 2, "center"))
            col = (left + crop - 4, "right") if 2 * left > width - crop else (
                (left + 3, "left") if 2 * left < width - crop else (left + crop // 2, "center"))
            ax.text(col[0], row[0], str(labels[k]), color=f"C{k % 10}", fontsize=9,
                    va=row[1], ha=col[1], weight="bold",
                    bbox=dict(facecolor="white", alpha=0.7, lw=0, pad=1))
    ax.set(xlabel="column (pixels)", ylabel="row (pixels)",
           title=title or f"{len(windows)} windows of {crop} x {crop}")
    fig.tight_layout()
    return fig


# ---- the exercises -------------------------------------------------------------------------

def _crop_cases():
    # (batch, image side S, crop): windows up to the far edge (top = S - crop), odd sizes
    values = [(4, 9, 5), (3, 12, 7), (5, 8, 8), (6, 11, 4)]
    cases = []
    for seed, (batch, size, crop) in enumerate(values):
        rng = np.random.default_rng(seed + 100)
        images = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
        mean = (rng.random((3, size, size)) * 255).astype(np.float32)
        top = rng.integers(0, size - crop + 1, batch)
        left = rng.integers(0, size - crop + 1, batch)
        top[0], left[-1] = size - crop, size - crop  # one window at each far edge, always
        flip = np.arange(batch) % 2 == 1  # both kinds in every case
        cases.append(Case((images, mean, crop, top, left, flip),
                          label=f"{batch} images {size}x{size}, crop {crop}"))
    return cases


def _crop_variant(images, mean, crop, top, left, flip, *, mean_flipped=True, subtract=True,
                  axis=3, swap=False, mean_at=None):
    """crop_batch with one thing changed (the wrong answers the diagnosis recognises)."""
    x = images.astype(np.float64).transpose(0, 3, 1, 2)
    out = []
    for b in range(len(images)):
        t, lft = (left[b], top[b]) if swap else (top[b], left[b])
        window = x[b, :, t : t + crop, lft : lft + crop]
        mt, ml = (t, lft) if mean_at is None else mean_at
        m = mean[:, mt : mt + crop, ml : ml + crop].astype(np.float64)
        if flip[b]:
            window = np.flip(window, axis=axis - 1)
            m = np.flip(m, axis=axis - 1) if mean_flipped else m
        out.append(window - m if subtract else window)
    return np.stack(out)


def _diagnose_crop(case, got, want):
    images, mean, crop, top, left, flip = case.args
    out, B = np.asarray(got["x"]), len(images)
    if out.shape == (B, crop, crop, 3):
        return ("the result is in the images' HWC layout; the network reads (B, 3, crop, crop): "
                "move the channel axis to the front (transpose(0, 3, 1, 2))")
    if out.shape[:2] == (B, 3) and out.shape[2:] != (crop, crop):
        return (f"your windows are {out.shape[2]}x{out.shape[3]}, not {crop}x{crop}: the window "
                "at top t holds rows t .. t + crop - 1, the slice t : t + crop")
    if out.shape != want["x"].shape:
        return None
    center = augment.center_offset(images.shape[1], crop)
    return first_match(out, [
        ("the mean image is not subtracted (section 2: the only preprocessing)",
         _crop_variant(*case.args, subtract=False)),
        ("the mean's window must be the image's window, at the same (top, left) (the mean of "
         "the 256 x 256 images is subtracted before cropping)",
         _crop_variant(*case.args, mean_at=(0, 0))),
        ("you subtracted the mean's CENTRE window; subtract the window at the same (top, left) "
         "as the image's", _crop_variant(*case.args, mean_at=(center, center))),
        ("the image is flipped but its mean window is not: subtract first, then flip both "
         "together", _crop_variant(*case.args, mean_flipped=False)),
        ("your flip mirrors up-down; a horizontal reflection mirrors left-right (the last, W "
         "axis)", _crop_variant(*case.args, axis=2)),
        ("top and left are swapped: top is the first row of the window (the H axis), left its "
         "first column (the W axis)", _crop_variant(*case.args, swap=True)),
        ("no image was flipped: mirror image b left-right where flip[b] is True",
         _crop_variant(*case.args[:5], np.zeros(B, dtype=bool))),
    ])


def crop_batch(images, mean, crop_size, top, left, flip):
    # images uint8 (B, S, S, 3) as stored (HWC); mean float32 (3, S, S), CHW.
    x = images.astype(np.float32).transpose(0, 3, 1, 2)  # (B, 3, S, S), channels first
    out = np.empty((len(images), 3, crop_size, crop_size), dtype=np.float32)
    for b in range(len(images)):
        rows = slice(top[b], top[b] + crop_size)  # crop_size pixels: top .. top + crop - 1
        cols = slice(left[b], left[b] + crop_size)
        out[b] = x[b, :, rows, cols] - mean[:, rows, cols]  # the mean's SAME window
        if flip[b]:
            out[b] = out[b, :, :, ::-1]  # mirror left-right: the last (W) axis
    return out


register(Exercise(
    name="crop_batch", lesson=7,
    answers=(augment.crop_batch,),
    task="cut each image's crop window, subtract the mean image's same window, flip where asked",
    signature="def crop_batch(images, mean, crop_size, top, left, flip):",
    cases=_crop_cases, outputs=("x",),
    reference=augment.crop_batch, reference_name="tinyalex.data.augment.crop_batch",
    solution=crop_batch, diagnose=_diagnose_crop,
    hint="Per image b: rows top[b] : top[b] + crop_size, the same columns from left[b]; subtract "
         "mean[:, rows, cols]; if flip[b], reverse the last axis; output (B, 3, crop, crop)."))


def _ten_crop_cases():
    values = [(256, 227), (256, 224), (27, 23), (12, 5), (10, 7), (9, 9)]
    return [Case(v, label=f"image {v[0]}, crop {v[1]}") for v in values]


def _own_ten_crop_windows(image_size, crop_size):
    return [tuple(map(int, w[:2])) + (bool(w[2]),)
            for w in augment.ten_crop_windows(image_size, crop_size)]


def _diagnose_ten_crop(case, got, want):
    size, crop = case.args
    windows = np.asarray(got["windows"])
    right = np.asarray(want["windows"])
    if windows.shape != right.shape:
        return ("return ten (top, left, flip) triples: five windows unflipped, then the same "
                "five flipped" if windows.shape[:1] != (10,) else None)
    far, center = size - crop, (size - crop) // 2
    if set(map(tuple, windows.tolist())) == set(map(tuple, right.tolist())):
        return ("the right ten windows in another order: top-left, top-right, bottom-left, "
                "bottom-right, centre, then the same five flipped")
    corner = windows[:4, :2]
    if np.any(corner == far + 1):
        return (f"a corner window starts at {far + 1}: it would end one pixel past the image. The "
                f"last whole window starts at image_size - crop_size = {far}")
    if np.any(corner == far - 1) and far > 0:
        return (f"a far corner starts at {far - 1}, one pixel short of the edge: the last whole "
                f"window starts at image_size - crop_size = {far}")
    if not np.all(windows[[4, 9], :2] == center):
        return (f"the centre window starts at (image_size - crop_size) // 2 = {center} "
                "(rounded down: the extra pixel of an odd margin goes to the bottom and right)")
    if not np.array_equal(windows[:, 2].astype(bool), right[:, 2].astype(bool)):
        return "the first five windows are not flipped, the last five are"
    return None


def ten_crop_windows(image_size, crop_size):
    far = image_size - crop_size  # the last top (or left) where a whole window fits
    center = (image_size - crop_size) // 2
    five = [(0, 0), (0, far), (far, 0), (far, far), (center, center)]
    return [(t, lft, False) for t, lft in five] + [(t, lft, True) for t, lft in five]


register(Exercise(
    name="ten_crop_windows", lesson=7,
    task="the ten test windows (top, left, flip): four corners, the centre, and their reflections",
    signature="def ten_crop_windows(image_size, crop_size):",
    cases=_ten_crop_cases, outputs=("windows",),
    reference=_own_ten_crop_windows, reference_name="tinyalex.data.augment.ten_crop_windows",
    solution=ten_crop_windows, diagnose=_diagnose_ten_crop,
    hint="The last whole window starts at far = image_size - crop_size; the corners are (0, 0), "
         "(0, far), (far, 0), (far, far); the centre (far // 2, far // 2); then all five with "
         "flip True."))


def _lighting_cases():
    values = [(5, 0.1), (1, 0.1), (8, 0.3), (3, 1.0)]
    cases = []
    for seed, (batch, std) in enumerate(values):
        rng = np.random.default_rng(seed + 120)
        eigvecs, _ = np.linalg.qr(rng.standard_normal((3, 3)))  # orthonormal columns
        eigvals = np.sort(rng.random(3) * 3000)[::-1].copy()  # 0..255 units squared
        cases.append(Case((batch, eigvals.astype(np.float32), eigvecs.astype(np.float32), std),
                          label=f"batch {batch}, std {std}", extra=dict(seed=seed + 130)))
    return cases


def _call_lighting(fn, case):
    batch, eigvals, eigvecs, std = case.args
    return fn(np.random.default_rng(case.extra["seed"]), batch, eigvals, eigvecs, std)


def _diagnose_lighting(case, got, want):
    batch, eigvals, eigvecs, std = case.args
    offsets = np.asarray(got["offsets"])
    if offsets.shape == (3, batch) and batch != 3:
        return "one row per image: the result is (batch, 3), an RGB offset for each image"
    a = np.random.default_rng(case.extra["seed"]).normal(0.0, std, (batch, 3))
    l, P = eigvals.astype(np.float64), eigvecs.astype(np.float64)
    return first_match(offsets, [
        ("255 times too large: the formula is applied to pixels in 0..1 (the eigenvalues are "
         "stored in 0..255 units squared), so the offset in 0..255 units is P (a * l) / 255",
         (a * l) @ P.T),
        ("the eigenvectors are the COLUMNS of eigvecs (p_i = eigvecs[:, i]); you used its rows",
         (a * l / 255) @ P),
        ("you scaled by the square roots of the eigenvalues (the standard deviations); the "
         "paper's formula multiplies a_i by the eigenvalue l_i itself",
         (a * np.sqrt(l) / 255) @ P.T),
        ("a_i ~ N(0, std^2) has standard deviation std: rng.normal(0.0, std, (batch, 3)), not "
         "std^2", (np.random.default_rng(case.extra["seed"]).normal(0.0, std**2, (batch, 3))
                   * l / 255) @ P.T),
    ])


def lighting_offsets(rng, batch, eigvals, eigvecs, std):
    # offset = [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T per image, with a_i ~ N(0, std^2); the
    # eigenvalues are in 0..255 units squared, the formula is applied in 0..1 units (see
    # tinyalex.data.augment.lighting_offsets): 255 * P (a * l / 255^2) = P (a * l) / 255.
    alphas = rng.normal(0.0, std, (batch, 3))  # one draw per image and component
    return (alphas * eigvals / 255.0) @ eigvecs.T  # row b: sum_i p_i * a_bi * l_i / 255


register(Exercise(
    name="lighting_offsets", lesson=7,
    answers=(augment.lighting_offsets,),
    task="PCA lighting: one RGB offset per image, P [a1 l1, a2 l2, a3 l3]^T (in 0..255 units)",
    signature="def lighting_offsets(rng, batch, eigvals, eigvecs, std):",
    cases=_lighting_cases, outputs=("offsets",), call=_call_lighting,
    reference=augment.lighting_offsets, reference_name="tinyalex.data.augment.lighting_offsets",
    solution=lighting_offsets, diagnose=_diagnose_lighting,
    hint="Draw a (batch, 3) array of a_i with standard deviation std. Image b's offset is "
         "the sum over i of eigenvector i (a COLUMN of eigvecs) times a[b, i] times eigenvalue "
         "i, divided by 255 (the units); one matrix product does every image.",
    atol=1e-4, rtol=1e-4))
