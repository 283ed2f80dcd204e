"""The hostile and odd inputs of the fault matrix, built in one folder.

Shared by ``tests/test_faults.py`` and ``benchmarks/fault_matrix.py`` so the evidence table
and the tests try the same files. Each :class:`Case` says what should happen to its file and
how to check the output.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from cloak.photo_io import TEMP_SUFFIX
from support.photo_factory import bomb_png, make_exif, srgb_icc


@dataclass
class Case:
    """One input of the matrix.

    Attributes:
        name: File name inside the batch folder.
        label: What it is, for the evidence table.
        expect: ``"refused"`` or ``"protected"``.
        says: Words the failure message (refused) or the notes (protected) must contain.
        output: Output file name (protected cases).
        check: ``check(source, output) -> problem or ""`` for protected cases.
    """

    name: str
    label: str
    expect: str
    says: tuple[str, ...] = ()
    output: str = ""
    check: Callable[[Path, Path], str] | None = None


def smooth_rgb(width: int, height: int) -> np.ndarray:
    """A smooth, asymmetric picture (survives JPEG; a wrong rotation or flip is obvious)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    img[..., 0] = 255 * x / max(width - 1, 1)
    img[..., 1] = 255 * y / max(height - 1, 1)
    img[..., 2] = 60 + 140 * ((x < width / 3) & (y < height / 2))
    return img.round().astype(np.uint8)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(*folders: Path) -> list[Path]:
    """Temporary files (``*.cloak-tmp``) anywhere under ``folders``."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += [p for p in folder.rglob(f"*{TEMP_SUFFIX}") if p.is_file()]
    return found


def crash_on_width(encoder: Any, width: int = 40) -> None:
    """Make ``encoder.encode`` raise ``RuntimeError("kernel exploded")`` on inputs ``width``
    pixels wide (one photo's size), and work as before on every other size."""
    real = encoder.encode

    def flaky(x: Any) -> Any:
        if x.shape[-1] == width:
            raise RuntimeError("kernel exploded")
        return real(x)

    encoder.encode = flaky


def disk_full_save(nth: int = 2) -> Callable[..., None]:
    """A stand-in for ``PIL.Image.Image.save``: the ``nth`` save into a stream writes part of a
    file, then fails with ENOSPC as a full disk would; every other save is the real one."""
    real_save = Image.Image.save
    streams: list[object] = []

    def save(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(fp, (str, os.PathLike)):
            streams.append(fp)
            if len(streams) == nth:
                fp.write(b"\x89PNG half a photo")
                raise OSError(errno.ENOSPC, "No space left on device")
        real_save(self, fp, *args, **kwargs)

    return save


def _encoded(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _displayed(source: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the broken-EXIF case
        im = Image.open(source)
    with im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.float32)


def _close_to_source(max_mean: float) -> Callable[[Path, Path], str]:
    """Output has the displayed orientation and size of the source and nearly its pixels."""

    def check(source: Path, output: Path) -> str:
        want = _displayed(source)
        with Image.open(output) as im:
            got = np.asarray(im.convert("RGB"), dtype=np.float32)
        if got.shape != want.shape:
            return f"size {got.shape[1]}x{got.shape[0]}, expected {want.shape[1]}x{want.shape[0]}"
        diff = float(np.abs(got - want).mean())
        return "" if diff <= max_mean else f"mean pixel change {diff:.1f} (wrong orientation?)"

    return check


def _alpha_kept(source: Path, output: Path) -> str:
    with Image.open(source) as a, Image.open(output) as b:
        want = np.asarray(a.convert("RGBA"))[..., 3]
        if b.mode not in ("RGBA", "LA"):
            return f"output mode {b.mode} has no alpha"
        got = np.asarray(b.convert("RGBA"))[..., 3]
    if got.shape != want.shape or not np.array_equal(got, want):
        return "alpha changed"
    return _close_to_source(4.0)(source, output)


def _gray16_kept(source: Path, output: Path) -> str:
    with Image.open(output) as im:
        if im.mode not in ("I;16", "I"):
            return f"output mode {im.mode}, expected 16-bit grayscale"
        got = np.asarray(im, dtype=np.float64)
    with Image.open(source) as im:
        want = np.asarray(im, dtype=np.float64)
    if got.shape != want.shape:
        return "size changed"
    worst = float(np.abs(got - want).max()) / 257
    return "" if worst <= 8.6 else f"changed by {worst:.1f}/255"


def _rgb_jpeg(source: Path, output: Path) -> str:
    with Image.open(output) as im:
        if im.format != "JPEG" or im.mode != "RGB":
            return f"output {im.format} {im.mode}, expected an RGB JPEG"
        size = im.size
    with Image.open(source) as im:
        return "" if im.size == size else f"size {size}, expected {im.size}"


def _icc_kept(source: Path, output: Path) -> str:
    with Image.open(source) as a, Image.open(output) as b:
        if a.info.get("icc_profile") != b.info.get("icc_profile"):
            return "colour profile not kept"
    return _close_to_source(6.0)(source, output)


def build_cases(folder: Path) -> list[Case]:
    """Write every hostile, odd and good file into ``folder``; return their cases."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    smooth = Image.fromarray(smooth_rgb(72, 48))
    jpeg = _encoded(smooth, "JPEG", quality=90)
    png = _encoded(smooth, "PNG")

    def refused(name: str, label: str, data: bytes, *says: str) -> None:
        (folder / name).write_bytes(data)
        cases.append(Case(name, label, "refused", says))

    def protected(
        name: str,
        label: str,
        data: bytes,
        output: str,
        check: Callable[[Path, Path], str],
        *says: str,
    ) -> None:
        (folder / name).write_bytes(data)
        cases.append(Case(name, label, "protected", says, output, check))

    # Broken or hostile files.
    refused("empty.jpg", "zero-byte file", b"", "empty (0 bytes)", "re-download")
    refused("truncated.jpg", "truncated JPEG", jpeg[: len(jpeg) // 2], "truncated", "re-")
    refused("truncated.png", "truncated PNG", png[: len(png) // 2], "truncated", "re-")
    refused(
        "notes.jpg", "text file named .jpg", b"shopping list\neggs\nmilk\n" * 20, "looks like text"
    )
    refused(
        "page.png",
        "HTML saved as .png",
        b"<!DOCTYPE html><html><body>403 Forbidden</body></html>\n",
        "looks like HTML",
        "re-export",
    )
    rng = np.random.default_rng(7)
    body = b"VP8 " + struct.pack("<I", 4000) + rng.integers(0, 256, 4000, np.uint8).tobytes()
    refused(
        "garbage.webp",
        "garbage with a valid WebP header",
        b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body,
        "re-",
    )
    bomb_png(folder / "bomb.png")
    cases.append(
        Case(
            "bomb.png",
            "decompression bomb 40000x40000 PNG",
            "refused",
            ("40000 x 40000", "above the limit", "--max-pixels"),
        )
    )
    big_icc = srgb_icc() + bytes(2_000_000)
    refused(
        "huge_icc_2mb.png",
        "PNG with a 2 MB ICC profile (over Pillow's 1 MB limit)",
        _encoded(smooth, "PNG", icc_profile=big_icc),
        "1 MB",
        "re-export",
    )

    # Odd but valid photos.
    protected(
        "cmyk.jpg",
        "CMYK JPEG",
        _encoded(smooth.convert("CMYK"), "JPEG", quality=95),
        "cmyk.jpg",
        _rgb_jpeg,
        "CMYK",
    )
    gray = (np.add.outer(np.arange(40), np.arange(56)) * 600).astype(np.uint16)
    protected(
        "gray16.png",
        "16-bit grayscale PNG",
        _encoded(Image.fromarray(gray), "PNG"),
        "gray16.png",
        _gray16_kept,
    )
    pal = smooth.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    protected(
        "palette_trns.png",
        "palette PNG with transparency",
        _encoded(pal, "PNG", transparency=0),
        "palette_trns.png",
        _alpha_kept,
        "palette",
    )
    rgba = smooth.convert("RGBA")
    alpha = np.full((48, 72), 255, np.uint8)
    alpha[10:30, 20:50] = 0
    alpha[35:, :] = 128
    rgba.putalpha(Image.fromarray(alpha))
    protected(
        "rgba_hole.png", "RGBA with a transparent region", _encoded(rgba, "PNG"), "rgba_hole.png",
        _alpha_kept,
    )  # fmt: skip
    for o in range(1, 9):
        protected(
            f"orient_{o}.jpg",
            f"EXIF orientation {o}",
            _encoded(smooth, "JPEG", quality=95, exif=make_exif(orientation=o)),
            f"orient_{o}.jpg",
            _close_to_source(6.0),
        )
    protected(
        "broken_exif.jpg",
        "broken EXIF",
        _encoded(
            smooth, "JPEG", quality=95, exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + bytes(40)
        ),
        "broken_exif.jpg",
        _close_to_source(6.0),
    )
    protected(
        "huge_icc.jpg",
        "JPEG with a 600 KB ICC profile",
        _encoded(smooth, "JPEG", quality=95, icc_profile=srgb_icc() + bytes(600_000)),
        "huge_icc.jpg",
        _icc_kept,
    )
    protected(
        "beach day é 写真.png",
        "name with spaces and non-ASCII characters",
        png,
        "beach day é 写真.png",
        _close_to_source(4.0),
    )
    frames = [smooth.convert("P"), Image.fromarray(smooth_rgb(72, 48)[::-1].copy()).convert("P")]
    protected(
        "anim.gif",
        "animated GIF (2 frames)",
        _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "anim.png",
        _close_to_source(6.0),
        "first frame",
    )
    rgb_frames = [f.convert("RGB") for f in frames]
    protected(
        "anim.webp",
        "animated WebP (2 frames)",
        _encoded(rgb_frames[0], "WEBP", save_all=True, append_images=rgb_frames[1:], lossless=True),
        "anim.webp",
        _close_to_source(6.0),
        "first frame",
    )

    # Plain good photos.
    protected("good.png", "good PNG", png, "good.png", _close_to_source(4.0))
    protected("good.jpg", "good JPEG", jpeg, "good.jpg", _close_to_source(6.0))
    return cases
