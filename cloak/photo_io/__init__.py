"""Reading and writing the user's photos.

Everything a user can throw at Cloak enters here, so every failure becomes a
:class:`~cloak.errors.PhotoError` that names the file and says what to do; no Pillow
traceback ever reaches a user.

Decisions, in one place:

* Pixels are handed to the engine as float32 RGB in [0, 1] in the *displayed* orientation
  (EXIF orientation applied), colour as stored: no ICC conversion, the profile is re-attached
  on save so the photo looks the same.
* Alpha is kept aside untouched and put back bit-exact: the perturbation lives in colour only.
* Palette images (PNG/GIF ``P``/``PA``) are saved as full-colour RGB/RGBA PNG: 256 palette
  entries can't hold a per-pixel perturbation. GIF sources are therefore saved as PNG, as are
  TIFF and BMP sources (lossless, and a format every site accepts).
* Animated GIF/WebP: the first frame is protected, and a note says so.
* CMYK JPEGs are converted to RGB on load; their CMYK ICC profile can't describe RGB data, so it
  is dropped (with a note) and the output is an RGB JPEG.
* Pillow can't hold 16-bit colour, so 16-bit RGB becomes 8-bit (with a note); 16-bit grayscale
  stays 16-bit (``I;16`` PNG).
* JPEG is written at quality 95 with 4:4:4 chroma, so the protection is not washed out by the
  encoder. WebP is lossless when the source was lossless (PNG, GIF, TIFF, BMP, lossless WebP),
  lossy at ``webp_quality`` otherwise.
* The GPS block is removed from EXIF by default (privacy); other EXIF (camera, date) is kept
  unless ``strip_metadata``. The EXIF orientation is reset to 1 because pixels are written in
  displayed orientation.
* Writes are atomic (temp file in the destination folder, fsync, rename) and never touch the
  source file or an existing file unless asked.

The work is split by job: :mod:`~cloak.photo_io.discovery` (finding photos),
:mod:`~cloak.photo_io.decoding` (reading them), :mod:`~cloak.photo_io.exif` (metadata),
:mod:`~cloak.photo_io.policy` (which format a result is written in),
:mod:`~cloak.photo_io.checks` (refusing a destination up front),
:mod:`~cloak.photo_io.atomic` (writing without half-written files) and
:mod:`~cloak.photo_io.saving` (putting it together). Suffix and format rules live in
:mod:`cloak.formats`; the output options (:class:`~cloak.config.SaveOptions`) in the config.
"""

from __future__ import annotations

from cloak.config import SaveOptions
from cloak.formats import OUTPUT_FORMATS, SUPPORTED_SUFFIXES
from cloak.photo_io.atomic import TEMP_SUFFIX
from cloak.photo_io.decoding import DEFAULT_MAX_PIXELS, Photo, heif_available, load_photo
from cloak.photo_io.discovery import has_photo_suffix, is_supported, iter_photos
from cloak.photo_io.policy import output_format, output_suffix, save_notes
from cloak.photo_io.saving import save_photo

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "SUPPORTED_SUFFIXES",
    "TEMP_SUFFIX",
    "Photo",
    "SaveOptions",
    "has_photo_suffix",
    "heif_available",
    "is_supported",
    "iter_photos",
    "load_photo",
    "output_format",
    "output_suffix",
    "save_notes",
    "save_photo",
]
