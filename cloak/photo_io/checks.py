"""Output checks: refuse a destination before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

from cloak.config import SaveOptions
from cloak.errors import PhotoError
from cloak.formats import (
    SUFFIX_FOR_FORMAT,
    suffixes_for,
)
from cloak.photo_io.decoding import Photo


def check_destination(photo: Photo, dest: Path, fmt: str, options: SaveOptions) -> None:
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
