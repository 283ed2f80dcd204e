"""The one source of truth for photo formats: suffixes, format names, and sniffing by content.

Pillow format names ("JPEG", "PNG", ...) are what Cloak reasons with. A file's *suffix* says
what its name claims; its *content* says what it is. Phones and messengers produce PNGs named
``.jpg``, JPEGs named ``.png`` and files without an extension, so wherever both are known the
content wins (:func:`format_of`). No Pillow import here: the config reads this module.
"""

from __future__ import annotations

from pathlib import Path

FORMAT_OF_SUFFIX: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".heic": "HEIF",
    ".heif": "HEIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".gif": "GIF",
}
"""Every suffix Cloak reads, and the format its name claims (lower case, with the dot)."""
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(FORMAT_OF_SUFFIX)
HEIF_SUFFIXES: frozenset[str] = frozenset(s for s, f in FORMAT_OF_SUFFIX.items() if f == "HEIF")
SUPPORTED_FORMATS: frozenset[str] = frozenset(FORMAT_OF_SUFFIX.values())
"""Formats Cloak reads (MPO, a multi-picture JPEG, is read as JPEG)."""
OUTPUT_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "HEIF"})
"""Formats Cloak writes."""
LOSSLESS_FORMATS: frozenset[str] = frozenset({"PNG", "GIF", "TIFF", "BMP"})
"""Formats that always store pixels losslessly (a WebP may be either)."""
SUFFIX_FOR_FORMAT: dict[str, str] = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "HEIF": ".heic",
}
"""The suffix an output in each format gets."""
FORMAT_ALIASES: dict[str, str] = {"JPG": "JPEG", "HEIC": "HEIF", "TIF": "TIFF"}
OUTPUT_CHOICES: dict[str, str] = {
    "jpeg": "JPEG",
    "jpg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "heic": "HEIF",
}
"""What a user may type to choose an output format (``cloak protect --format``)."""
READABLE_NAMES = "JPEG, PNG, WebP, HEIC, TIFF, BMP or GIF"
"""The readable formats, for messages."""

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
SNIFF_BYTES = 32
"""How many leading bytes :func:`sniff` needs."""


def normalise_format(name: str) -> str:
    """``"jpg"``, ``".JPG"``, ``"jpeg"`` -> ``"JPEG"``; ``"heic"`` -> ``"HEIF"``."""
    upper = name.strip().lstrip(".").upper()
    return FORMAT_ALIASES.get(upper, upper)


def suffixes_for(fmt: str) -> frozenset[str]:
    """Every suffix that names format ``fmt`` (e.g. ``{".jpg", ".jpeg"}``)."""
    fmt = normalise_format(fmt)
    return frozenset(s for s, f in FORMAT_OF_SUFFIX.items() if f == fmt)


def is_heif_header(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts an HEIF/HEIC container."""
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def sniff(head: bytes) -> str | None:
    """The format a file's first :data:`SNIFF_BYTES` bytes announce, or None if none we read."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if is_heif_header(head):
        return "HEIF"
    return None


def sniff_file(path: str | Path) -> str | None:
    """The format ``path``'s content announces, or None (unreadable, or not a photo we read)."""
    try:
        with open(path, "rb") as f:
            return sniff(f.read(SNIFF_BYTES))
    except OSError:
        return None


def claimed_format(path: str | Path) -> str | None:
    """The format ``path``'s suffix claims, or None when the suffix is not a photo's."""
    return FORMAT_OF_SUFFIX.get(Path(path).suffix.lower())


def format_of(path: str | Path) -> str | None:
    """What ``path`` is: its content's format when readable, else what its suffix claims."""
    return sniff_file(path) or claimed_format(path)


def mismatch_note(path: str | Path, fmt: str, saved_as: str) -> str | None:
    """A note for the user when ``path``'s name does not say it is a ``fmt`` file, else None.

    Args:
        path: The source file.
        fmt: What its content is (a Pillow format name).
        saved_as: The output's file name.
    """
    fmt = normalise_format(fmt)
    # An MPO (a camera's multi-picture JPEG) is a JPEG to its user.
    if claimed_format(path) == ("JPEG" if fmt == "MPO" else fmt):
        return None
    suffix = Path(path).suffix
    named = f"named {suffix}" if suffix else "without an extension"
    return f"a {fmt} file {named}: kept as {fmt}, saved as {saved_as}"
