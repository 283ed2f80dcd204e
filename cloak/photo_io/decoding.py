"""Decoding a photo file into pixels, refusing every bad file with a message a user can act on."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from struct import error as StructError

import numpy as np
from PIL import Image, UnidentifiedImageError

from cloak.errors import ConfigError, PhotoError
from cloak.formats import (
    HEIF_SUFFIXES,
    LOSSLESS_FORMATS,
    SUPPORTED_SUFFIXES,
    is_heif_header,
)
from cloak.photo_io.discovery import is_supported
from cloak.photo_io.exif import read_exif

DEFAULT_MAX_PIXELS = 100_000_000


_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


REEXPORT = "re-export it as JPEG or PNG"


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


def heif_available() -> bool:
    """Whether HEIC/HEIF files can be read and written (the ``heic`` extra is installed)."""
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        return False
    return True


def register_heif(path: Path) -> None:
    # Imported lazily: pillow-heif is an optional extra and registering it is a global change
    # to Pillow that only HEIF users should pay for.
    try:
        import pillow_heif
    except ImportError:
        raise PhotoError(path, "HEIC needs the heic extra: pip install 'cloak[heic]'") from None
    pillow_heif.register_heif_opener()


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
        register_heif(path)
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
            raise PhotoError(path, f"is not an image (looks like {kind}); {REEXPORT}") from None
        raise PhotoError(
            path, f"is not an image Cloak can read (unknown or damaged format); {REEXPORT}"
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
        raise PhotoError(path, f"has an impossible size {width} x {height}; {REEXPORT}")
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
    lossless = fmt in LOSSLESS_FORMATS or (fmt == "WEBP" and _webp_is_lossless(path))
    icc = info.get("icc_profile") or None
    exif_bytes, orientation = read_exif(img, notes)

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
