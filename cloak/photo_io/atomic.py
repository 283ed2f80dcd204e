"""Atomic writes: a hidden temp file in the destination folder, fsync, then rename."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Any

from cloak.errors import PhotoError

TEMP_SUFFIX = ".cloak-tmp"


def atomic_write(dest: Path, write: Any, overwrite: bool) -> None:
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
