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
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from struct import error as StructError
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from cloak.errors import ConfigError, PhotoError
from cloak.formats import (
    HEIF_SUFFIXES,
    OUTPUT_FORMATS,
    SUFFIX_FOR_FORMAT,
    SUPPORTED_SUFFIXES,
    is_heif_header,
    normalise_format,
    sniff_file,
    suffixes_for,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "SUPPORTED_SUFFIXES",
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

DEFAULT_MAX_PIXELS = 100_000_000
TEMP_SUFFIX = ".cloak-tmp"

_LOSSLESS_FORMATS = frozenset({"PNG", "GIF", "TIFF", "BMP"})
# Pillow splits an ICC profile over APP2 segments of 65519 bytes, at most 255 of them.
_JPEG_MAX_ICC = 65519 * 255
_EXIF_ORIENTATION = 0x0112
_EXIF_GPS_IFD = 0x8825
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_REEXPORT = "re-export it as JPEG or PNG"

# Pillow's decompression-bomb limit is a process-wide global; we replace it with our own
# per-call check (``max_pixels``) made from the header, so it is lifted only while a header is
# parsed, under a lock so concurrent loads don't restore each other's values.
_PILLOW_LIMIT_LOCK = threading.Lock()


@dataclass
class Photo:
    """A decoded photo plus everything needed to write it back faithfully.

    Attributes:
        path: The source file.
        rgb: (H, W, 3) float32 in [0, 1], displayed orientation, colour as stored.
        alpha: (H, W) original alpha in displayed orientation and original dtype, or None.
        format: Pillow format name of the source ("JPEG", "PNG", "WEBP", "HEIF", "TIFF",
            "BMP", "GIF").
        mode: The source's Pillow mode ("RGB", "L", "I;16", "P", "CMYK", ...).
        bit_depth: 8 or 16 (per channel, as Cloak will write it for grayscale).
        exif: Original EXIF bytes, or None (also None when they were unreadable).
        icc_profile: ICC profile bytes to re-attach, or None.
        is_grayscale: True when the source has a single colour channel.
        frames: Number of frames in the source; only the first is used.
        notes: Human-readable notes about anything Cloak changed or dropped.
        lossless: True when the source was stored losslessly (decides WebP output mode).
    """

    path: Path
    rgb: np.ndarray
    alpha: np.ndarray | None
    format: str
    mode: str
    bit_depth: int
    exif: bytes | None
    icc_profile: bytes | None
    is_grayscale: bool
    frames: int = 1
    notes: list[str] = field(default_factory=list)
    lossless: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in displayed orientation."""
        return (int(self.rgb.shape[1]), int(self.rgb.shape[0]))


@dataclass(frozen=True)
class SaveOptions:
    """How to write a protected photo.

    Attributes:
        format: "JPEG", "PNG", "WEBP" or "HEIF"; None keeps the source format (GIF, TIFF and
            BMP become PNG; HEIF becomes JPEG when pillow-heif is missing).
        jpeg_quality: JPEG quality 1-100; 95 keeps the protection from being washed out.
        webp_quality: Quality 1-100 for lossy WebP.
        webp_lossless: True/False forces the WebP mode; None = lossless when the source was
            lossless, lossy otherwise.
        heif_quality: HEIF quality 1-100 (pillow-heif's own default of 50 would wash out the
            protection).
        strip_gps: Remove the GPS block from EXIF (privacy default).
        strip_metadata: Remove all EXIF. The ICC profile is kept: it is colour, not metadata.
        overwrite: Replace an existing output file. The source file is never replaced.
    """

    format: str | None = None
    jpeg_quality: int = 95
    webp_quality: int = 95
    webp_lossless: bool | None = None
    heif_quality: int = 95
    strip_gps: bool = True
    strip_metadata: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.format is not None:
            name = normalise_format(self.format)
            if name not in OUTPUT_FORMATS:
                raise ConfigError(
                    f"output format {self.format!r} is not supported; "
                    f"choose one of {', '.join(sorted(OUTPUT_FORMATS))}"
                )
            object.__setattr__(self, "format", name)
        for name in ("jpeg_quality", "webp_quality", "heif_quality"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 100:
                raise ConfigError(f"{name} must be an integer from 1 to 100, got {value!r}")


def heif_available() -> bool:
    """Whether HEIC/HEIF files can be read and written (the ``heic`` extra is installed)."""
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        return False
    return True


def _register_heif(path: Path) -> None:
    # Imported lazily: pillow-heif is an optional extra and registering it is a global change
    # to Pillow that only HEIF users should pay for.
    try:
        import pillow_heif
    except ImportError:
        raise PhotoError(path, "HEIC needs the heic extra: pip install 'cloak[heic]'") from None
    pillow_heif.register_heif_opener()


def has_photo_suffix(path: str | Path) -> bool:
    """Whether ``path``'s name ends in a suffix Cloak reads (case-insensitive)."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def is_supported(path: str | Path) -> bool:
    """Whether Cloak reads ``path``: a photo suffix, or (any name) a photo's content.

    A file named without an extension, or with a wrong one, is accepted when its first bytes
    are those of a format Cloak reads.
    """
    return has_photo_suffix(path) or sniff_file(path) is not None


def iter_photos(root: str | Path, recursive: bool = False) -> Iterator[Path]:
    """Yield the supported photo files under ``root`` in sorted order.

    Hidden files and folders (name starting with ".") are skipped, which also skips Cloak's own
    temporary files. Symlinked folders are followed once: each real folder is visited at most
    once, so symlink loops terminate. Unreadable subfolders are skipped.

    Args:
        root: A folder, or a single file (yielded if supported).
        recursive: Descend into subfolders.

    Raises:
        PhotoError: ``root`` doesn't exist or can't be listed.
    """
    root = Path(root)
    if root.is_file():
        if is_supported(root):
            yield root
        return
    if not root.is_dir():
        raise PhotoError(root, "does not exist; check the path")
    visited: set[str] = set()
    try:
        entries = _sorted_entries(root)
    except OSError as exc:
        raise PhotoError(
            root, f"can't list this folder ({exc.strerror}); check its permissions"
        ) from None
    visited.add(os.path.realpath(root))
    yield from _walk(entries, recursive, visited)


def _sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def _walk(entries: list[os.DirEntry[str]], recursive: bool, visited: set[str]) -> Iterator[Path]:
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks; loops are caught by ``visited``
            is_file = not is_dir and entry.is_file()
        except OSError:
            continue
        # Folders are scanned by suffix: other files in a photo folder are not opened.
        if is_file and has_photo_suffix(entry.name):
            yield Path(entry.path)
        elif is_dir and recursive:
            real = os.path.realpath(entry.path)
            if real in visited:
                continue
            visited.add(real)
            try:
                children = _sorted_entries(Path(entry.path))
            except OSError:
                continue
            yield from _walk(children, recursive, visited)


# --------------------------------------------------------------------------------------------
# Loading


def _sniff_text(head: bytes) -> str | None:
    """Describe ``head`` if it is plainly text (an HTML error page saved as .jpg, a note)."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<head", b"<body")):
        return "HTML"
    if not head or b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 4:
            return None
    return "text"


def _bomb_error(path: Path, width: int, height: int, max_pixels: int) -> PhotoError:
    if max_pixels >= 100_000:
        size, limit = f"{width * height / 1e6:.1f} megapixels", f"{max_pixels / 1e6:.1f}"
    else:  # a small limit in megapixels would read "0.0 megapixels, above the limit of 0.0"
        size, limit = f"{width * height} pixels", f"{max_pixels}"
    return PhotoError(
        path,
        f"is {width} x {height} = {size}, above the limit of {limit}; "
        "downscale it or raise --max-pixels",
    )


def _open_image(path: Path, max_pixels: int, warned: list[str]) -> Image.Image:
    """Open ``path`` (header only) and check its size before any pixel is decoded."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if path.suffix.lower() in HEIF_SUFFIXES or is_heif_header(head):
        _register_heif(path)
    try:
        # Warnings (e.g. "Corrupt EXIF data") become notes rather than console noise.
        with _PILLOW_LIMIT_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except UnidentifiedImageError:
        kind = _sniff_text(head)
        if kind is not None:
            raise PhotoError(path, f"is not an image (looks like {kind}); {_REEXPORT}") from None
        raise PhotoError(
            path, f"is not an image Cloak can read (unknown or damaged format); {_REEXPORT}"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(
            path, f"is too large to open safely ({exc}); downscale it or raise --max-pixels"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, StructError, MemoryError) as exc:
        if "MAX_TEXT_CHUNK" in str(exc):
            raise PhotoError(
                path,
                "holds a metadata block (text or colour profile) over Pillow's 1 MB safety "
                "limit; re-export it without the oversized metadata",
            ) from None
        raise PhotoError(
            path, f"file is truncated or damaged ({exc}); re-download or re-export it"
        ) from None
    warned.extend(dict.fromkeys(f"reader warning: {w.message}" for w in caught))
    width, height = img.size
    if width <= 0 or height <= 0:
        img.close()
        raise PhotoError(path, f"has an impossible size {width} x {height}; {_REEXPORT}")
    if width * height > max_pixels:
        img.close()
        raise _bomb_error(path, width, height, max_pixels)
    return img


def load_photo(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Read a photo for protection.

    Args:
        path: The photo file: any suffix in :data:`SUPPORTED_SUFFIXES`, or any name when its
            content is a photo Cloak reads (the content decides the format).
        max_pixels: Refuse images with more pixels than this, checked from the header before
            decoding (decompression bombs).

    Returns:
        The decoded :class:`Photo`, pixels in displayed orientation.

    Raises:
        PhotoError: For every failure, with a message naming the file and what to do.
    """
    path = Path(path)
    if not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ConfigError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if not path.exists():
        raise PhotoError(path, "does not exist; check the path and the spelling")
    if path.is_dir():
        raise PhotoError(path, "is a folder, not a photo; pass a photo file")
    if not path.is_file():
        raise PhotoError(path, "is not a regular file (a device or pipe?); pass a photo file")
    if not is_supported(path):
        raise PhotoError(
            path,
            f"has an unsupported type {path.suffix or '(no suffix)'!r}; convert it to JPEG or "
            f"PNG (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})",
        )
    warned: list[str] = []
    try:
        if path.stat().st_size == 0:
            raise PhotoError(path, "is empty (0 bytes); re-download or re-export it")
        img = _open_image(path, max_pixels, warned)
    except PhotoError:
        raise
    except PermissionError:
        raise PhotoError(path, "can't be read (permission denied); check its permissions") from None
    except OSError as exc:
        raise PhotoError(path, f"can't be read ({exc.strerror or exc}); check the file") from None
    try:
        # Pillow warns about damaged metadata while seeking and decoding; those become notes
        # rather than console noise.
        with img, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            photo = _decode(path, img, warned)
        for message in dict.fromkeys(f"reader warning: {w.message}" for w in caught):
            if len(photo.notes) < 10:
                photo.notes.append(message)
        return photo
    except PhotoError:
        raise
    except MemoryError:
        raise PhotoError(path, "is too large for the available memory; downscale it") from None
    except Exception as exc:  # noqa: BLE001 - any Pillow failure is a damaged file to the user
        raise PhotoError(
            path,
            f"file is truncated or damaged ({type(exc).__name__}: {exc}); "
            "re-download or re-export it",
        ) from None


def _decode(path: Path, img: Image.Image, warned: list[str]) -> Photo:
    notes = list(warned)
    fmt = img.format or "UNKNOWN"
    try:
        frames = int(getattr(img, "n_frames", 1))
    except Exception as exc:  # noqa: BLE001 - counting frames reads the whole file
        raise PhotoError(
            path, f"file is truncated or damaged ({exc}); re-download or re-export it"
        ) from None
    if fmt == "MPO":
        # Phones write extra pictures (depth maps, previews) after the main JPEG.
        fmt, frames = "JPEG", 1
        notes.append("multi-picture JPEG: only the main picture is kept")
    elif frames > 1:
        notes.append(
            f"animated {fmt} with {frames} frames: only the first frame is protected and saved"
        )
    img.seek(0)
    # Decode now, inside the caller's try: a truncated file fails here, not later.
    img.load()

    mode = img.mode
    info = img.info
    lossless = fmt in _LOSSLESS_FORMATS or (fmt == "WEBP" and _webp_is_lossless(path))
    icc = info.get("icc_profile") or None
    exif_bytes, orientation = _read_exif(img, notes)

    rgb, alpha, bit_depth, is_gray = _to_arrays(img, notes)
    if mode == "CMYK":
        note = "CMYK photo converted to RGB"
        if icc is not None:
            # The profile maps CMYK values; attached to RGB pixels it would garble colours.
            icc = None
            note += "; its CMYK colour profile can't describe RGB and was dropped"
        notes.append(note)
    if fmt == "PNG" and _png_is_16bit_colour(path):
        notes.append("16-bit colour reduced to 8-bit (16-bit grayscale is kept)")
    if mode in ("P", "PA"):
        notes.append("palette image: saved in full colour, a palette can't hold the protection")
    rgb = _orient(rgb, orientation)
    if alpha is not None:
        alpha = np.ascontiguousarray(_orient(alpha, orientation))
    return Photo(
        path=path,
        rgb=np.ascontiguousarray(rgb, dtype=np.float32),
        alpha=alpha,
        format=fmt,
        mode=mode,
        bit_depth=bit_depth,
        exif=exif_bytes,
        icc_profile=icc if isinstance(icc, bytes) else None,
        is_grayscale=is_gray,
        frames=frames,
        notes=notes,
        lossless=lossless,
    )


def _read_exif(img: Image.Image, notes: list[str]) -> tuple[bytes | None, int]:
    """Return (EXIF bytes to carry over, orientation 1-8); damaged EXIF is dropped."""
    raw = img.info.get("exif")
    orientation = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = img.getexif()
            value = exif.get(_EXIF_ORIENTATION, 1)
            if raw is not None:
                parsed = Image.Exif()
                parsed.load(raw)
                if not len(parsed):
                    raise ValueError("EXIF block holds no readable tags")
                # Prove the block survives a rewrite now, so saving can't fail on it later.
                _clean_exif(raw, strip_gps=True)
    except Exception:  # noqa: BLE001 - EXIF is written by countless buggy devices
        notes.append("EXIF metadata is damaged and will not be copied to the output")
        return None, 1
    if isinstance(value, int) and 1 <= value <= 8:
        orientation = value
    if img.format == "TIFF":
        # TIFF tags describe the TIFF container itself, not portable EXIF; don't carry them.
        raw = None
    return (bytes(raw) if isinstance(raw, (bytes, bytearray)) and raw else None), orientation


def _to_arrays(
    img: Image.Image, notes: list[str]
) -> tuple[np.ndarray, np.ndarray | None, int, bool]:
    """Convert any Pillow mode to (rgb float32 [0,1], alpha or None, bit depth, grayscale)."""
    mode = img.mode
    alpha: np.ndarray | None = None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        gray = np.asarray(img).astype(np.float32) / 65535.0
        return _gray3(gray), None, 16, True
    if mode == "I":
        data = np.asarray(img)
        if data.min() < 0 or data.max() > 65535:
            notes.append("32-bit integer values outside 0-65535 were clipped")
        gray = np.clip(data, 0, 65535).astype(np.float32) / 65535.0
        return _gray3(gray), None, 16, True
    if mode == "F":
        data = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0)
        scale = 1.0 if float(data.max(initial=0.0)) <= 1.0 else 255.0
        notes.append("32-bit float grayscale is saved as 16-bit")
        return _gray3(np.clip(data / scale, 0.0, 1.0)), None, 16, True
    if mode in ("1", "L"):
        gray = np.asarray(img.convert("L")).astype(np.float32) / 255.0
        return _gray3(gray), None, 8, True
    if mode in ("LA", "La"):
        la = img if mode == "LA" else img.convert("LA")
        arr = np.asarray(la)
        return _gray3(arr[..., 0].astype(np.float32) / 255.0), arr[..., 1].copy(), 8, True
    has_alpha = mode in ("RGBA", "RGBa", "PA") or (
        mode in ("P", "RGB", "L") and "transparency" in img.info
    )
    if has_alpha:
        arr = np.asarray(img.convert("RGBA"))
        alpha = arr[..., 3].copy()
        rgb8 = arr[..., :3]
    else:
        rgb8 = np.asarray(img.convert("RGB"))
    return rgb8.astype(np.float32) / 255.0, alpha, 8, False


def _gray3(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation like ``ImageOps.exif_transpose`` (works on any array dtype)."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(arr, k=-1)
    if orientation == 7:
        return arr[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(arr, k=1)
    return arr


def _png_is_16bit_colour(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(26)
    # IHDR data starts at byte 16: width, height, bit depth, colour type.
    return len(head) == 26 and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 6)


def _webp_is_lossless(path: Path) -> bool:
    """Whether the WebP's first image chunk is VP8L (lossless)."""
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    pos = 12
    while pos + 8 <= len(data):
        tag = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if tag == b"VP8L":
            return True
        if tag == b"VP8 ":
            return False
        if tag == b"ANMF":
            pos += 8 + 16  # the frame's own chunks follow its 16-byte header
            continue
        pos += 8 + size + (size & 1)
    return False


# --------------------------------------------------------------------------------------------
# Saving


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
        elif options.strip_gps and _has_gps(photo.exif):
            notes.append("GPS location removed from EXIF")
    if photo.icc_profile is not None and fmt == "JPEG" and len(photo.icc_profile) > _JPEG_MAX_ICC:
        notes.append("colour profile too large for JPEG: dropped")
    return notes


def _has_gps(exif_bytes: bytes) -> bool:
    try:
        exif = Image.Exif()
        exif.load(exif_bytes)
        return _EXIF_GPS_IFD in exif
    except Exception:  # noqa: BLE001
        return False


def _clean_exif(exif_bytes: bytes, strip_gps: bool) -> bytes:
    """EXIF for the output: orientation reset (pixels are upright), GPS optionally removed."""
    exif = Image.Exif()
    exif.load(exif_bytes)
    # Reading the Exif sub-IFD makes Pillow write it back out (camera, date, exposure).
    exif.get_ifd(0x8769)
    if strip_gps:
        exif.pop(_EXIF_GPS_IFD, None)
        # Pillow re-adds any sub-IFD it has cached, so drop the cache too.
        exif._ifds.pop(_EXIF_GPS_IFD, None)
    else:
        exif.get_ifd(_EXIF_GPS_IFD)
    if _EXIF_ORIENTATION in exif:
        exif[_EXIF_ORIENTATION] = 1
    return exif.tobytes()


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
    if icc is not None and not (fmt == "JPEG" and len(icc) > _JPEG_MAX_ICC):
        kwargs["icc_profile"] = icc
    if photo.exif is not None and not options.strip_metadata:
        # Damaged EXIF is dropped, never fatal.
        with contextlib.suppress(Exception):
            kwargs["exif"] = _clean_exif(photo.exif, options.strip_gps)
    return kwargs


def _check_destination(photo: Photo, dest: Path, fmt: str, options: SaveOptions) -> None:
    if dest.suffix.lower() not in suffixes_for(fmt):
        raise PhotoError(
            dest, f"suffix doesn't match the {fmt} output; name it *{SUFFIX_FOR_FORMAT[fmt]}"
        )
    same = os.path.abspath(dest) == os.path.abspath(photo.path)
    if not same and dest.exists() and photo.path.exists():
        same = os.path.samefile(dest, photo.path)
    if same:
        raise PhotoError(
            dest,
            "is the original photo, which Cloak never modifies; choose another output folder "
            "with -o or another name",
        )
    if dest.is_dir():
        raise PhotoError(dest, "is a folder; choose a file name for the output")
    if dest.exists() and not options.overwrite:
        raise PhotoError(
            dest, "already exists; choose another output folder with -o or pass --overwrite"
        )
    parent = dest.parent
    if not parent.exists():
        raise PhotoError(
            dest, f"folder {parent} doesn't exist; create it or choose another with -o"
        )
    if not parent.is_dir():
        raise PhotoError(dest, f"{parent} is not a folder; choose another output folder with -o")


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
        _register_heif(dest)
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
    _check_destination(photo, dest, fmt, options)
    img = _build_image(photo, rgb, fmt)
    kwargs = _save_kwargs(photo, fmt, options)
    _atomic_write(dest, lambda f: img.save(f, format=fmt, **kwargs), options.overwrite)
    return dest


def _atomic_write(dest: Path, write: Any, overwrite: bool) -> None:
    """Write via a hidden temp file in ``dest``'s folder, fsync, then rename into place."""
    tmp: Path | None = None
    try:
        fd, tmp = _create_temp(dest)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, dest)
        else:
            _link_no_clobber(tmp, dest)
        tmp = None
        _fsync_dir(dest.parent)
    except PhotoError:
        raise
    except OSError as exc:
        raise _write_error(dest, exc) from None
    except Exception as exc:  # noqa: BLE001 - e.g. an encoder refusing the data
        raise PhotoError(
            dest, f"couldn't be written ({type(exc).__name__}: {exc}); try another output format"
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _create_temp(dest: Path) -> tuple[int, Path]:
    # os.open with 0o666 lets the umask decide the final permissions, like a normal save
    # (mkstemp would leave the photo readable by its owner only).
    for _ in range(100):
        # Name cut short so a long (but legal) output name can't make the temp name too long.
        tmp = dest.parent / f".{dest.name[:80]}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise PhotoError(dest, "couldn't create a temporary file; clean up *.cloak-tmp files")


def _link_no_clobber(tmp: Path, dest: Path) -> None:
    # A hard link fails if dest appeared meanwhile, so a file is never replaced by a race.
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise PhotoError(
            dest, "already exists; choose another output folder with -o or pass --overwrite"
        ) from None
    except OSError:
        # Some file systems (FAT, some network shares) have no hard links.
        if dest.exists():
            raise PhotoError(
                dest, "already exists; choose another output folder with -o or pass --overwrite"
            ) from None
        os.replace(tmp, dest)
        return
    os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename durable; not possible (or needed) on every platform.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(dest: Path, exc: OSError) -> PhotoError:
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return PhotoError(dest, f"disk full while writing {dest.name}: free space and rerun")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PhotoError(
            dest, f"folder {dest.parent} isn't writable; choose another output folder with -o"
        )
    if code == errno.ENOTDIR:
        return PhotoError(
            dest, f"{dest.parent} is not a folder; choose another output folder with -o"
        )
    if code == errno.ENAMETOOLONG:
        return PhotoError(dest, "name is too long for the file system; use a shorter name")
    return PhotoError(dest, f"couldn't be written ({exc.strerror or exc}); check the output folder")
