"""Makes test photos (and hostile non-photos) in temporary folders.

Shared by the photo I/O tests, the fuzz test and ``benchmarks/fuzz_loader.py`` so the mutation
rules can't drift apart.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from support.paths import PHOTOS

SHARED_PHOTOS = PHOTOS
REAL_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")

CAMERA_MAKE = "Cloak Test Cam"
DATE_TAKEN = "2024:05:06 07:08:09"


def srgb_icc() -> bytes:
    """A real sRGB ICC profile."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def make_exif(orientation: int | None = None, gps: bool = True) -> bytes:
    """EXIF with a camera make, a date taken, optionally an orientation and a GPS block."""
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKE
    if orientation is not None:
        exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = DATE_TAKEN
    if gps:
        gps_ifd = exif.get_ifd(0x8825)
        gps_ifd[1] = "N"
        gps_ifd[2] = (52.0, 31.0, 12.0)
        gps_ifd[3] = "E"
        gps_ifd[4] = (13.0, 24.0, 36.0)
    return exif.tobytes()


def unique_rgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 where every pixel differs, so misplaced pixels are caught."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    img[..., 0] = (np.arange(width * height) % 256).reshape(height, width)
    img[..., 1] = (np.arange(width * height) // 256 % 256).reshape(height, width)
    return img


def write(path: Path, img: Image.Image, **save_kwargs: object) -> Path:
    """Save ``img`` at ``path`` (format from the suffix) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **save_kwargs)
    return path


def rgb_image(width: int = 16, height: int = 12, seed: int = 0) -> Image.Image:
    return Image.fromarray(unique_rgb(width, height, seed))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """PNG bytes written by hand (for layouts Pillow can't write, e.g. 16-bit RGB)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows, 9))
        + _png_chunk(b"IEND", b"")
    )


def bomb_png(path: Path, width: int = 40_000, height: int = 40_000) -> Path:
    """A genuine 1-bit all-black PNG of ``width`` x ``height`` that compresses to kilobytes."""
    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    chunks = [comp.compress(row * 1000) for _ in range(height // 1000)]
    chunks.append(comp.compress(row * (height % 1000)))
    chunks.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(chunks))
        + _png_chunk(b"IEND", b"")
    )
    return path


def rgb16_png(path: Path, width: int = 8, height: int = 6) -> Path:
    """A 16-bit-per-channel RGB PNG (Pillow reads it as 8-bit RGB)."""
    data = np.arange(width * height * 3, dtype=">u2").reshape(height, width * 3) * 1000
    rows = b"".join(b"\x00" + data[y].tobytes() for y in range(height))
    path.write_bytes(raw_png(width, height, 16, 2, rows))
    return path


def seed_images() -> dict[str, bytes]:
    """Small valid files of every supported kind, keyed by a file name, for fuzzing."""
    out: dict[str, bytes] = {}
    rgb = rgb_image(12, 9)

    def encode(name: str, img: Image.Image, **kw: object) -> None:
        buf = io.BytesIO()
        img.save(buf, format=kw.pop("format"), **kw)  # type: ignore[arg-type]
        out[name] = buf.getvalue()

    exif = make_exif(orientation=6)
    encode("seed.jpg", rgb, format="JPEG", exif=exif, icc_profile=srgb_icc(), quality=80)
    encode("seed.png", rgb.convert("RGBA"), format="PNG", exif=exif)
    encode(
        "gray16.png",
        Image.fromarray(np.arange(99, dtype=np.uint16).reshape(9, 11) * 600),
        format="PNG",
    )
    encode("palette.png", rgb.convert("P"), format="PNG", transparency=3)
    encode("seed.webp", rgb, format="WEBP", quality=80)
    encode("lossless.webp", rgb.convert("RGBA"), format="WEBP", lossless=True)
    encode(
        "anim.gif",
        rgb.convert("P"),
        format="GIF",
        save_all=True,
        append_images=[rgb_image(12, 9, 1).convert("P")],
    )
    encode("seed.tif", rgb, format="TIFF")
    encode("seed.bmp", rgb, format="BMP")
    encode("cmyk.jpg", rgb.convert("CMYK"), format="JPEG")
    # A real camera JPEG among the seeds; missing, this fails rather than fuzzing less.
    with Image.open(SHARED_PHOTOS / "rocket.jpg") as real:
        encode("rocket_crop.jpg", real.crop((100, 100, 132, 124)), format="JPEG")
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Damage ``data`` the ways real files get damaged: flipped, inserted, cut, duplicated."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1) if buf else 0
        if op == 0 and buf:  # flip bytes, biased to the header where parsers branch
            for _ in range(rng.randint(1, 8)):
                i = (
                    rng.randrange(min(len(buf), 64))
                    if rng.random() < 0.5
                    else rng.randrange(len(buf))
                )
                buf[i] = rng.randrange(256)
        elif op == 1:  # insert random bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 2:  # truncate
            del buf[pos:]
        elif op == 3 and buf:  # delete a span
            del buf[pos : pos + rng.randint(1, 64)]
        elif op == 4 and buf:  # duplicate a span elsewhere
            start = rng.randrange(len(buf))
            piece = buf[start : start + rng.randint(1, 128)]
            buf[pos:pos] = piece
        elif op == 5 and len(buf) >= 4:  # plant an extreme 32-bit number (sizes, offsets)
            i = rng.randrange(len(buf) - 3)
            buf[i : i + 4] = rng.choice(
                [b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00", b"\x00\x01\x00\x00"]
            )
    return bytes(buf)
