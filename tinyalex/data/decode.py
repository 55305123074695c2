"""Reading one image file the way the paper did (section 2): RGB, shorter side to S, centre crop.

Pillow reads the file; this module makes every image look alike before the network sees it:

- EXIF orientation applied (a phone photo taken upright stays upright);
- any mode converted to 8-bit RGB: grayscale (L, 1, I;16, I, F) repeated over three channels,
  palette (P) expanded, CMYK converted, and transparency (RGBA, LA, P with a transparent
  colour) composited over white -- the visible picture, not whatever colour hides under
  alpha = 0;
- shorter side rescaled to ``S`` and the central ``S x S`` square kept, in one resampling
  (``Image.resize(box=...)``: the crop box is given in source pixels, so nothing is
  resampled twice). For JPEGs, ``Image.draft`` first lets the decoder skip detail that the
  downscale throws away anyway (DCT scaling by 1/2, 1/4, 1/8), which makes decoding large
  photos several times faster.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps

from tinyalex.data.imageset import DataError


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow image -> 8-bit RGB (see the module docstring for each mode)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        # a palette image may carry a transparent index: expand to RGBA to honour it
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        # 16/32-bit or float grayscale: Pillow's convert("L") clips instead of scaling.
        # Full scale: 65535 for 16-bit data, 1.0 for float data in [0, 1], else 255.
        values = np.asarray(img, dtype=np.float32)
        peak = float(values.max(initial=0.0))
        top = 65535.0 if (img.mode.startswith("I;16") or peak > 255) else 255.0
        if img.mode == "F" and peak <= 1.0:
            top = 1.0
        img = Image.fromarray(np.clip(values * np.float32(255.0 / top), 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")   # L, 1, CMYK, YCbCr, LAB, HSV, RGBX ...


def rescale_center_crop(img: Image.Image, size: int) -> Image.Image:
    """Shorter side -> ``size``, then the central ``size x size`` square (paper section 2).

    Done as one resampling of the central square of the source: box = (left, top, right,
    bottom) in source pixels, side = the shorter side, centred (half-pixel offsets allowed).
    """
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) / 2.0, (h - side) / 2.0
    box = (left, top, left + side, top + side)
    if side == size and left == int(left) and top == int(top):
        return img.crop(tuple(int(v) for v in box))   # already the right size: exact copy
    return img.resize((size, size), Image.Resampling.BILINEAR, box=box)


def decode(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode one file to uint8 (size, size, 3). Raises whatever Pillow raises on a bad file.

    Pillow is lazy: ``open`` reads only the header, ``load`` (called by draft/convert/resize)
    decodes; a truncated file fails there with OSError.
    """
    with warnings.catch_warnings():
        # a huge image is decoded anyway (DecompressionBombError above 2x the limit still stops
        # it); the warning would otherwise print once per file
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            if img.format == "JPEG":
                # ask for at least 2x the final size so the bilinear resize still averages
                w, h = img.size
                scale = 2 * size / min(w, h)
                img.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
            img = ImageOps.exif_transpose(img)     # also loads; returns a new image
            img = to_rgb(img)
            out = np.asarray(rescale_center_crop(img, size), dtype=np.uint8)
    if out.shape != (size, size, 3):
        raise ValueError(f"decoded to shape {out.shape}")
    return out


def load_image(path: str | os.PathLike, image_size: int) -> np.ndarray:
    """One image for prediction: uint8 (image_size, image_size, 3), preprocessed as in training.

    Raises DataError (one line, with the fix) when the file cannot be read as an image.
    """
    if not os.path.exists(path):
        raise DataError(f"image {path} does not exist: pass the path of an image file")
    if not os.path.isfile(path):  # a FIFO, a socket or a device: never opened (it may block)
        raise DataError(f"image {path} is not a regular file: pass the path of an image file")
    try:
        return decode(path, image_size)
    except Exception as err:   # any decoder failure means "not a usable image"
        raise DataError(f"cannot read {path} as an image ({describe_error(err)}): pass a JPEG, "
                        "PNG or another format Pillow reads") from err


def describe_error(err: BaseException) -> str:
    """A short reason for the skip report: 'truncated', 'not an image', or the error text."""
    text = str(err)
    if "truncated" in text.lower():
        return "truncated file"
    if "cannot identify image file" in text:
        return "not an image"
    return f"{type(err).__name__}: {text}"[:120]
