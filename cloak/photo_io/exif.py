"""EXIF metadata: read it (and the orientation), find and remove the GPS block."""

from __future__ import annotations

import warnings

from PIL import Image

EXIF_ORIENTATION = 0x0112


EXIF_GPS_IFD = 0x8825


def read_exif(img: Image.Image, notes: list[str]) -> tuple[bytes | None, int]:
    """Return (EXIF bytes to carry over, orientation 1-8); damaged EXIF is dropped."""
    raw = img.info.get("exif")
    orientation = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = img.getexif()
            value = exif.get(EXIF_ORIENTATION, 1)
            if raw is not None:
                parsed = Image.Exif()
                parsed.load(raw)
                if not len(parsed):
                    raise ValueError("EXIF block holds no readable tags")
                # Prove the block survives a rewrite now, so saving can't fail on it later.
                clean_exif(raw, strip_gps=True)
    except Exception:  # noqa: BLE001 - EXIF is written by countless buggy devices
        notes.append("EXIF metadata is damaged and will not be copied to the output")
        return None, 1
    if isinstance(value, int) and 1 <= value <= 8:
        orientation = value
    if img.format == "TIFF":
        # TIFF tags describe the TIFF container itself, not portable EXIF; don't carry them.
        raw = None
    return (bytes(raw) if isinstance(raw, (bytes, bytearray)) and raw else None), orientation


def has_gps(exif_bytes: bytes) -> bool:
    try:
        exif = Image.Exif()
        exif.load(exif_bytes)
        return EXIF_GPS_IFD in exif
    except Exception:  # noqa: BLE001
        return False


def clean_exif(exif_bytes: bytes, strip_gps: bool) -> bytes:
    """EXIF for the output: orientation reset (pixels are upright), GPS optionally removed."""
    exif = Image.Exif()
    exif.load(exif_bytes)
    # Reading the Exif sub-IFD makes Pillow write it back out (camera, date, exposure).
    exif.get_ifd(0x8769)
    if strip_gps:
        exif.pop(EXIF_GPS_IFD, None)
        # Pillow re-adds any sub-IFD it has cached, so drop the cache too.
        exif._ifds.pop(EXIF_GPS_IFD, None)
    else:
        exif.get_ifd(EXIF_GPS_IFD)
    if EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1
    return exif.tobytes()
