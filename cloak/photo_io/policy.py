"""Format policy: which format and suffix a protected photo is written in, and what that changes."""

from __future__ import annotations

from cloak.config import SaveOptions
from cloak.formats import (
    OUTPUT_FORMATS,
    SUFFIX_FOR_FORMAT,
    normalise_format,
)
from cloak.photo_io.decoding import Photo, heif_available
from cloak.photo_io.exif import has_gps

# Pillow splits an ICC profile over APP2 segments of 65519 bytes, at most 255 of them.
JPEG_MAX_ICC = 65519 * 255


def output_format(photo_or_format: Photo | str, options: SaveOptions = SaveOptions()) -> str:
    """The Pillow format name a photo will be written in ("JPEG", "PNG", "WEBP" or "HEIF")."""
    if options.format is not None:
        return options.format
    source = photo_or_format.format if isinstance(photo_or_format, Photo) else photo_or_format
    source = normalise_format(source)
    if source == "MPO":
        return "JPEG"
    if source == "HEIF":
        return "HEIF" if heif_available() else "JPEG"
    if source in OUTPUT_FORMATS:
        return source
    return "PNG"  # GIF, TIFF, BMP, anything else: lossless and universally accepted


def output_suffix(photo_or_format: Photo | str, options: SaveOptions = SaveOptions()) -> str:
    """The file suffix for the output, e.g. ".jpg"."""
    return SUFFIX_FOR_FORMAT[output_format(photo_or_format, options)]


def save_notes(photo: Photo, options: SaveOptions = SaveOptions()) -> list[str]:
    """Human-readable notes on what saving ``photo`` with ``options`` will change."""
    fmt = output_format(photo, options)
    notes = []
    if fmt != normalise_format(photo.format) and options.format is None:
        if photo.format == "HEIF":
            notes.append("saved as JPEG: HEIC output needs pip install 'cloak[heic]'")
        else:
            notes.append(f"{photo.format} saved as {fmt}")
    if photo.alpha is not None and fmt == "JPEG":
        notes.append("JPEG can't store transparency: transparent areas are flattened onto white")
    if photo.is_grayscale and photo.bit_depth == 16 and fmt != "PNG":
        notes.append(f"16-bit grayscale reduced to 8-bit ({fmt} holds 8 bits)")
    if photo.exif is not None:
        if options.strip_metadata:
            notes.append("all EXIF metadata removed")
        elif options.strip_gps and has_gps(photo.exif):
            notes.append("GPS location removed from EXIF")
    if photo.icc_profile is not None and fmt == "JPEG" and len(photo.icc_profile) > JPEG_MAX_ICC:
        notes.append("colour profile too large for JPEG: dropped")
    return notes
