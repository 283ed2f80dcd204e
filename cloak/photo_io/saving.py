"""Writing protected pixels back with the source's size, orientation, profile, alpha, metadata."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cloak.config import SaveOptions
from cloak.errors import PhotoError
from cloak.photo_io.atomic import atomic_write
from cloak.photo_io.checks import check_destination
from cloak.photo_io.decoding import Photo, register_heif
from cloak.photo_io.exif import clean_exif
from cloak.photo_io.policy import JPEG_MAX_ICC, output_format


def _quantise(values: np.ndarray, bits: int) -> np.ndarray:
    top = 65535.0 if bits == 16 else 255.0
    out = np.round(np.clip(values, 0.0, 1.0) * top)
    return out.astype(np.uint16 if bits == 16 else np.uint8)


def _build_image(photo: Photo, rgb: np.ndarray, fmt: str) -> Image.Image:
    alpha = photo.alpha
    if alpha is not None and alpha.dtype != np.uint8:
        # Pillow has no 16-bit alpha modes; keep the top 8 bits.
        alpha = np.round(alpha.astype(np.float64) / 257.0).astype(np.uint8)
    if photo.is_grayscale:
        gray = rgb.mean(axis=2)
        if photo.bit_depth == 16 and fmt == "PNG" and alpha is None:
            return Image.fromarray(_quantise(gray, 16))
        img = Image.fromarray(_quantise(gray, 8))
        if alpha is not None and fmt == "PNG":
            return Image.merge("LA", [img, Image.fromarray(alpha)])
        if alpha is not None and fmt != "JPEG":
            # WebP/HEIF have no gray+alpha layout; Pillow would silently drop the alpha.
            rgba = img.convert("RGBA")
            rgba.putalpha(Image.fromarray(alpha))
            return rgba
        if alpha is not None:
            return _flatten(img.convert("RGB"), alpha).convert("L")
        return img
    img = Image.fromarray(_quantise(rgb, 8))
    if alpha is not None:
        if fmt == "JPEG":
            return _flatten(img, alpha)
        img.putalpha(Image.fromarray(alpha))
    return img


def _flatten(img: Image.Image, alpha: np.ndarray) -> Image.Image:
    white = Image.new("RGB", img.size, (255, 255, 255))
    return Image.composite(img, white, Image.fromarray(alpha))


def _save_kwargs(photo: Photo, fmt: str, options: SaveOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if fmt == "JPEG":
        # 4:4:4 chroma: subsampling would average away the colour part of the perturbation.
        kwargs.update(quality=options.jpeg_quality, subsampling=0)
    elif fmt == "WEBP":
        lossless = photo.lossless if options.webp_lossless is None else options.webp_lossless
        kwargs.update(quality=options.webp_quality, lossless=lossless, method=4)
        if lossless:
            kwargs["exact"] = True  # keep colour under fully transparent pixels too
    elif fmt == "HEIF":
        kwargs.update(quality=options.heif_quality)
    icc = photo.icc_profile
    if icc is not None and not (fmt == "JPEG" and len(icc) > JPEG_MAX_ICC):
        kwargs["icc_profile"] = icc
    if photo.exif is not None and not options.strip_metadata:
        # Damaged EXIF is dropped, never fatal.
        with contextlib.suppress(Exception):
            kwargs["exif"] = clean_exif(photo.exif, options.strip_gps)
    return kwargs


def save_photo(
    photo: Photo, rgb: np.ndarray, dest: str | Path, options: SaveOptions = SaveOptions()
) -> Path:
    """Write protected pixels with the source's size, orientation, profile, alpha and metadata.

    Args:
        photo: The loaded source photo (gives alpha, ICC, EXIF, grayscale, bit depth, format).
        rgb: (H, W, 3) floats in [0, 1] in the photo's displayed size; rounded to the nearest
            8-bit (or 16-bit for 16-bit grayscale PNG) value.
        dest: The output file; its suffix must match :func:`output_suffix`.
        options: Output format, quality and metadata policy.

    Returns:
        ``dest`` as a Path, after it was written atomically.

    Raises:
        PhotoError: Bad pixels, the destination is the source, exists (without overwrite), is
            not writable, or the disk is full. No partial or temporary file is left behind.
    """
    dest = Path(dest)
    fmt = output_format(photo, options)
    if fmt == "HEIF":
        register_heif(dest)
    rgb = np.asarray(rgb)
    width, height = photo.size
    if rgb.shape != (height, width, 3):
        raise PhotoError(
            dest,
            f"pixels have shape {rgb.shape}, expected {(height, width, 3)}; this is a bug "
            "in the caller, please report it",
        )
    if not np.isfinite(rgb).all():
        raise PhotoError(dest, "pixels contain NaN or infinity; this is a bug, please report it")
    check_destination(photo, dest, fmt, options)
    img = _build_image(photo, rgb, fmt)
    kwargs = _save_kwargs(photo, fmt, options)
    atomic_write(dest, lambda f: img.save(f, format=fmt, **kwargs), options.overwrite)
    return dest
