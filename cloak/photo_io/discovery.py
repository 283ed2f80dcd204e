"""Finding the photos in what a user names: files, folders, and folders of folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from cloak.errors import PhotoError
from cloak.formats import (
    SUPPORTED_SUFFIXES,
    sniff_file,
)


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
