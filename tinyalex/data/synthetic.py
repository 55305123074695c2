"""The built-in data set: ten classes of procedurally drawn shapes, generated once, no download.

Every image (72x72 RGB by default) is one large shape on a textured background with clutter::

    classes   circle square triangle star cross ring crescent arrow heart hourglass
    object    radius 0.30-0.44 of the image side, any rotation, a slight stretch, centred
              to within +-5% of the side (random crops in training shift it further), and
              one random colour (with an optional gentle gradient) -- the colour is drawn
              independently of the class, so colour and brightness tell nothing
    background one of four textures (gradient, stripes, blotches, checks) in random colours,
              plus pixel noise; the object's colour is kept at RGB distance >= 130 from it
    clutter   2-6 small discs, bars and squares (a few pixels, far smaller than the object)
              behind the object and up to 1 speck in front

A class is its outline alone, which a CNN's local, shared filters can learn, while a linear
classifier on raw pixels cannot: position, rotation and colour are all random, so no fixed
pixel template matches a class (``benchmarks/linear_baseline.py``: about 20% top-1, chance 10%).

Generation is a pure function of ``(seed, split, class, index)``: each image draws from its
own ``SeedSequence``, so the set is the same whatever order or process draws it. It is written
in the ImageNet layout ``train/<class>/*.png``, ``val/<class>/*.png``, so the default training
run goes through exactly the loader real data uses. The folder name carries a version
(``shapes-v4-...``): bump ``VERSION`` whenever the drawing changes so no old cache is reused.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tinyalex import storage
from tinyalex.data.imageset import atomic_directory, cache_root

VERSION = 4
GENERATOR = "tinyalex.data.synthetic"  # dataset.json names it: the folder is tinyalex's
CLASSES = ("circle", "square", "triangle", "star", "cross", "ring", "crescent", "arrow", "heart",
           "hourglass")
IMAGE_SIZE = 72     # generated side; the mini preset crops its input from this
N_TRAIN = 1000      # images per class
N_VAL = 200
SUPERSAMPLE = 4     # the object mask is drawn 4x larger and box-filtered down (anti-aliasing)
SPLIT_IDS = {"train": 0, "val": 1}

# How hard the set is. Clutter, texture, a small or faint object and a wide spread of
# positions or angles all slow down how fast a CNN learns the outlines (the position spread
# most: 0.2 instead of 0.05 took the mini net several times as many steps); random rotation
# and colour are what keep a linear classifier on raw pixels near chance
# (``benchmarks/linear_baseline.py``). Changing any of these changes the images: bump VERSION.
RADIUS = (0.30, 0.44)       # object radius, fraction of the image side
JITTER = 0.05               # object centre: image centre +- JITTER * side, in x and y
ROTATION = np.pi            # object angle: uniform in +- ROTATION radians
MIN_CONTRAST = 130.0        # RGB distance between the object's colour and the background's mean
TEXTURE = 0.6               # amplitude of the background textures, relative to the full ones
CLUTTER_BEHIND = (2, 6)     # distractors drawn before the object (inclusive range)
CLUTTER_FRONT = (0, 1)      # ... and after it
NOISE_STD = 5.0             # per-pixel Gaussian noise, 0..255 units


# --- the shapes, in unit coordinates: centred on 0, inside the unit disc, y pointing down ---

def _circle_points(radius: float, n: int = 64, centre=(0.0, 0.0)) -> np.ndarray:
    """(n, 2) float32 vertices of a regular n-gon approximating a circle."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False, dtype=np.float32)
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def _star_points(points: int = 5, outer: float = 1.0, inner: float = 0.42) -> np.ndarray:
    """(2*points, 2) vertices alternating between the outer and inner radius."""
    t = np.arange(2 * points, dtype=np.float32) * np.float32(np.pi / points) - np.float32(np.pi / 2)
    r = np.where(np.arange(2 * points) % 2 == 0, outer, inner).astype(np.float32)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _heart_points(n: int = 64) -> np.ndarray:
    """The classic parametric heart (x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - ...), scaled."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False, dtype=np.float32)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    pts = np.stack([x, -y], axis=1) / np.float32(17.0)   # minus: image y points down
    return pts - pts.mean(axis=0)


def _poly(*xy) -> np.ndarray:
    return np.asarray(xy, dtype=np.float32).reshape(-1, 2)


# Each class: a list of (polygon, fill) drawn in order on the mask; fill 0 cuts a hole.
SHAPES: dict[str, list[tuple[np.ndarray, int]]] = {
    "circle": [(_circle_points(0.9), 255)],
    "square": [(_poly(-0.72, -0.72, 0.72, -0.72, 0.72, 0.72, -0.72, 0.72), 255)],
    "triangle": [(_circle_points(1.0, n=3), 255)],
    "star": [(_star_points(), 255)],
    "cross": [(_poly(-0.3, -1, 0.3, -1, 0.3, -0.3, 1, -0.3, 1, 0.3, 0.3, 0.3, 0.3, 1, -0.3, 1,
                     -0.3, 0.3, -1, 0.3, -1, -0.3, -0.3, -0.3), 255)],
    "ring": [(_circle_points(0.95), 255), (_circle_points(0.55), 0)],
    "crescent": [(_circle_points(0.95), 255), (_circle_points(0.8, centre=(0.45, -0.1)), 0)],
    "arrow": [(_poly(-1, -0.2, 0.15, -0.2, 0.15, -0.62, 1, 0, 0.15, 0.62, 0.15, 0.2, -1, 0.2),
               255)],
    "heart": [(_heart_points(), 255)],
    "hourglass": [(_poly(-0.78, -0.95, 0.78, -0.95, 0.12, 0, 0.78, 0.95, -0.78, 0.95, -0.12, 0),
                   255)],
}
assert tuple(SHAPES) == CLASSES


def _object_mask(name: str, size: int, centre, radius: float, angle: float, stretch: float,
                 ) -> np.ndarray:
    """Anti-aliased coverage of the transformed shape: float32 (size, size, 1) in [0, 1]."""
    c, s = np.cos(angle), np.sin(angle)
    # x' = R(angle) @ diag(stretch, 1/stretch) @ x * radius + centre, in supersampled pixels
    transform = np.float32([[c, -s], [s, c]]) @ np.float32([[stretch, 0], [0, 1 / stretch]])
    k = SUPERSAMPLE
    mask = Image.new("L", (size * k, size * k), 0)
    draw = ImageDraw.Draw(mask)
    for polygon, fill in SHAPES[name]:
        pts = (polygon @ transform.T * radius + np.float32(centre)) * k   # (V, 2) x, y
        draw.polygon([tuple(p) for p in pts.tolist()], fill=fill)
    # reduce(k): mean of each k x k block = fraction of the pixel the shape covers
    small = mask.reduce(k)
    return (np.asarray(small, dtype=np.float32) / np.float32(255.0))[:, :, None]


def _f32(value) -> np.float32:
    """A random scalar as float32, so that arithmetic with float32 arrays stays float32."""
    return np.float32(value)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size) float32 pixel coordinates y, x."""
    ax = np.arange(size, dtype=np.float32)
    return np.meshgrid(ax, ax, indexing="ij")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random texture: float32 (size, size, 3) in 0..255 units."""
    yy, xx = _grid(size)
    c0 = rng.uniform(0, 255, 3).astype(np.float32)
    kind = rng.integers(4)
    if kind == 0:      # linear gradient between two colours along a random direction
        c1 = rng.uniform(0, 255, 3).astype(np.float32)
        phi = _f32(rng.uniform(0, 2 * np.pi))
        t = (np.cos(phi) * xx + np.sin(phi) * yy) / np.float32(size)           # (S, S)
        t = (t - t.min()) / (t.max() - t.min())
        bg = c0 + (c1 - c0) * t[:, :, None]
    elif kind == 1:    # sinusoidal stripes with a random period (5-16 px) and direction
        phi = _f32(rng.uniform(0, 2 * np.pi))
        period = _f32(rng.uniform(5, 16))
        wave = np.sin(2 * np.pi * (np.cos(phi) * xx + np.sin(phi) * yy) / period
                      + _f32(rng.uniform(0, 2 * np.pi)))
        bg = c0 + wave[:, :, None] * (TEXTURE * rng.uniform(-40, 40, 3)).astype(np.float32)
    elif kind == 2:    # smooth blotches: a 4x4 colour field upsampled bicubically
        field = np.clip(c0 + TEXTURE * rng.normal(0, 45, (4, 4, 3)), 0, 255).astype(np.uint8)
        bg = np.asarray(Image.fromarray(field).resize((size, size), Image.Resampling.BICUBIC),
                        dtype=np.float32)
    else:              # checks of a random cell size in two nearby colours
        cell = np.float32(rng.integers(5, 13))
        parity = ((yy // cell + xx // cell) % 2)[:, :, None]                  # 0 or 1
        bg = c0 + parity * (TEXTURE * rng.uniform(-35, 35, 3)).astype(np.float32)
    return bg


def _clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, count: int):
    """Small distractors: discs (r 1.5-4 px), bars (6-15 px) and squares (3-7 px)."""
    for _ in range(count):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = rng.uniform(0, size, 2)
        kind = rng.integers(3)
        if kind == 0:
            r = rng.uniform(1.5, 4.0)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        elif kind == 1:
            length, phi = rng.uniform(6, 15), rng.uniform(0, np.pi)
            dx, dy = length / 2 * np.cos(phi), length / 2 * np.sin(phi)
            draw.line([x - dx, y - dy, x + dx, y + dy], fill=colour, width=int(rng.integers(1, 3)))
        else:
            h = rng.uniform(1.5, 3.5)
            draw.rectangle([x - h, y - h, x + h, y + h], fill=colour)


def render(seed: int, split: str, class_index: int, index: int, size: int = IMAGE_SIZE,
           ) -> np.ndarray:
    """Draw one image of the built-in set: uint8 (size, size, 3).

    A pure function of its arguments: the image's random numbers come from
    ``SeedSequence([seed, split id, class_index, index])``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_IDS[split], class_index,
                                                        index]))
    bg = _background(rng, size)
    bg_colour = bg.reshape(-1, 3).mean(axis=0)

    # Clutter goes behind the object: draw it onto the background with Pillow.
    canvas = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    _clutter(ImageDraw.Draw(canvas), rng, size, int(rng.integers(CLUTTER_BEHIND[0],
                                                                 CLUTTER_BEHIND[1] + 1)))
    img = np.asarray(canvas, dtype=np.float32)                             # (S, S, 3)

    # The object: a colour far enough from the background to be seen (rejection sampling).
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    while np.linalg.norm(colour - bg_colour) < MIN_CONTRAST:
        colour = rng.uniform(0, 255, 3).astype(np.float32)
    radius = _f32(rng.uniform(*RADIUS) * size)
    centre = (size / 2 + rng.uniform(-JITTER, JITTER, 2) * size).astype(np.float32)   # (x, y)
    angle = _f32(rng.uniform(-ROTATION, ROTATION))
    stretch = _f32(rng.uniform(0.85, 1.18))
    alpha = _object_mask(CLASSES[class_index], size, centre, radius, angle, stretch)
    yy, xx = _grid(size)
    phi = _f32(rng.uniform(0, 2 * np.pi))
    shade = (np.cos(phi) * (xx - centre[0]) + np.sin(phi) * (yy - centre[1])) / radius  # (S, S)
    fill = colour + _f32(rng.uniform(0, 25)) * shade[:, :, None]          # gentle gradient
    img = img * (1 - alpha) + fill * alpha                                 # "over" compositing

    img += rng.normal(0, NOISE_STD, img.shape).astype(np.float32)         # sensor-like noise
    out = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    _clutter(ImageDraw.Draw(out), rng, size,                               # specks in front
             int(rng.integers(CLUTTER_FRONT[0], CLUTTER_FRONT[1] + 1)))
    return np.asarray(out)


def _write_class(args) -> int:
    """Worker: write every image of one (split, class) folder; returns the count."""
    folder, seed, split, class_index, count, size = args
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        with storage.open_for_writing(folder / f"{i:05d}.png") as f:
            Image.fromarray(render(seed, split, class_index, i, size)).save(
                f, format="PNG", compress_level=1)
    return count


def dataset_name(seed: int = 0, n_train: int = N_TRAIN, n_val: int = N_VAL,
                 size: int = IMAGE_SIZE) -> str:
    """Folder name of a generated set: versioned, and naming any non-default size."""
    name = f"shapes-v{VERSION}-seed{seed}"
    if (n_train, n_val, size) != (N_TRAIN, N_VAL, IMAGE_SIZE):
        name += f"-{size}px-{n_train}x{n_val}"
    return name


def builtin_dataset(root: str | os.PathLike | None = None, seed: int = 0, *,
                    n_train: int = N_TRAIN, n_val: int = N_VAL, size: int = IMAGE_SIZE,
                    workers: int | None = None, log=None) -> Path:
    """Generate the built-in data set once and return its folder (``train/``, ``val/`` inside).

    root: the cache folder (default ``$TINYALEX_CACHE`` or ``~/.cache/tinyalex``); the set
    lands in ``root/shapes-v<VERSION>-seed<seed>``. A finished folder is reused as it is; the
    folder is built under a temporary name and renamed at the end, so an interrupted
    generation is never taken for a finished one. workers: processes drawing in parallel
    (default: up to 2).
    log: a callable that gets one line when generation starts.
    """
    final = cache_root(root) / dataset_name(seed, n_train, n_val, size)
    if (final / "dataset.json").is_file():
        return final
    if log:
        log(f"generating the built-in data set ({len(CLASSES)} classes x {n_train} train + "
            f"{n_val} val images) into {final} (once)")
    jobs = []
    # room: PNGs of these noisy images take about 70% of the raw pixels (measured)
    need = len(CLASSES) * (n_train + n_val) * size * size * 3
    with atomic_directory(final, need, "the built-in data set") as tmp:
        for split, count in (("train", n_train), ("val", n_val)):
            for class_index, name in enumerate(CLASSES):
                jobs.append((str(tmp / split / name), seed, split, class_index, count, size))
        workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_write_class, jobs))
        else:
            for job in jobs:
                _write_class(job)
        # written last: its presence marks a complete set
        os.sync()  # the images reach the disk before the file that marks them complete
        with storage.durable_file(tmp / "dataset.json", "w") as f:
            f.write(json.dumps(
                {"generator": f"{GENERATOR} v{VERSION}", "seed": seed,
                 "classes": list(CLASSES), "image_size": size, "train_per_class": n_train,
                 "val_per_class": n_val}, indent=1) + "\n")
    return final
