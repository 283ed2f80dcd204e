"""Protecting files: one photo, or a batch that goes on past bad files.

These are generators too: they yield :class:`PhotoEvent` records so the CLI can draw progress
bars and the GUI can update its queue, and they never leave a half-written file behind (the
photo is written atomically only after the attack has finished).
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cloak.config import ProtectConfig
from cloak.device import release_freed_memory
from cloak.engine import Progress, protect
from cloak.errors import Cancelled, CloakError, PhotoError
from cloak.formats import READABLE_NAMES, format_of, mismatch_note
from cloak.metrics import KnownRoundTrip
from cloak.models.base import AutoEncoder
from cloak.photo_io import (
    is_supported,
    iter_photos,
    load_photo,
    output_suffix,
    save_notes,
    save_photo,
)
from cloak.tensors import to_array, to_tensor
from cloak.tiling import band_differences

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PROTECTED_TAG = "_protected"
"""Added to the file name when the output would land beside its original."""


@dataclass
class PhotoJob:
    """One photo to protect and where its result goes."""

    source: Path
    dest: Path


@dataclass
class PhotoResult:
    """What happened to one photo.

    Attributes:
        source: The original (never modified).
        dest: The protected file (or where it would have gone).
        status: ``"protected"``, ``"skipped"`` or ``"failed"``.
        seconds: Wall time for this photo.
        psnr: PSNR of the saved photo against the original (dB), when protected.
        linf_255: Largest pixel change in 1/255 units, when protected.
        message: Why it failed or was skipped.
        clean: The original's round trips the attack computed (only when the caller asked
            for them; see :func:`protect_file`).
    """

    source: Path
    dest: Path
    status: str
    seconds: float = 0.0
    psnr: float | None = None
    linf_255: float | None = None
    message: str = ""
    clean: list[KnownRoundTrip] = field(default_factory=list)


@dataclass
class PhotoEvent:
    """A progress record of a batch: which photo, and its engine progress or final result."""

    index: int
    total: int
    job: PhotoJob
    progress: Progress | None = None
    result: PhotoResult | None = None


def output_path(
    source: Path, out_dir: Path | None, config: ProtectConfig, root: Path | None
) -> Path:
    """Where the protected copy of ``source`` goes.

    Beside the original (or in the same folder), the name gets ``_protected`` so the original is
    never overwritten; in another folder the name is kept. ``root`` keeps a batch's sub-folders.
    """
    # The content decides the format (a PNG named .jpg stays a PNG and is saved as .png).
    suffix = output_suffix(format_of(source) or "PNG", config.output)
    if out_dir is None:
        folder = source.parent
    elif root is not None:
        folder = out_dir / source.parent.relative_to(root)
    else:
        folder = out_dir
    same_folder = folder.resolve() == source.parent.resolve()
    stem = source.stem + (PROTECTED_TAG if same_folder else "")
    return folder / f"{stem}{suffix}"


def plan(
    paths: Iterable[str | Path],
    out_dir: str | Path | None,
    config: ProtectConfig,
    recursive: bool = False,
) -> tuple[list[PhotoJob], list[PhotoResult]]:
    """Turn the command line's paths into jobs.

    Returns the jobs and the paths refused up front (missing paths, unsupported files), which a
    batch reports as failed without stopping.
    """
    out = Path(out_dir) if out_dir is not None else None
    jobs: list[PhotoJob] = []
    refused: list[PhotoResult] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            # Without -o, a folder's results go to a sibling "<name>_protected" folder.
            target = out if out is not None else p.parent / f"{p.name}{PROTECTED_TAG}"
            # Results written into the input folder itself get the "_protected" tag; only an
            # output folder elsewhere inside the input is skipped (earlier results live there).
            separate = target.resolve() != p.resolve()
            for src in iter_photos(p, recursive):
                if src.stem.endswith(PROTECTED_TAG) or (separate and _inside(src, target)):
                    continue
                _add(jobs, seen, src, output_path(src, target, config, p))
        elif p.is_file():
            if not is_supported(p):
                refused.append(
                    PhotoResult(
                        p,
                        p,
                        "failed",
                        message=f"{p}: not a supported photo type (use {READABLE_NAMES})",
                    )
                )
                continue
            _add(jobs, seen, p, output_path(p, out, config, None))
        else:
            refused.append(
                PhotoResult(p, p, "failed", message=f"{p}: no such file or folder; check the path")
            )
    make_distinct(jobs)
    return jobs, refused


def make_distinct(jobs: list[PhotoJob]) -> None:
    """Give every job its own output, never one of the batch's originals.

    ``a.bmp`` and ``a.gif`` both become ``a.png``, ``a.jpg`` and ``a.jpeg`` both ``a.jpg``; the
    later one (in planning order, so reruns agree) gets its source type in its name
    (``a-gif.png``) rather than being skipped as "already protected" or overwriting the other.
    Callers that build their own jobs (the GUI queue) should call it too.
    """
    taken = {job.source.resolve() for job in jobs}
    for job in jobs:
        dest, n = job.dest, 1
        while dest.resolve() in taken:
            stem = job.dest.stem
            tag = PROTECTED_TAG if stem.endswith(PROTECTED_TAG) and stem != job.source.stem else ""
            core = stem[: len(stem) - len(tag)]
            kind = job.source.suffix[1:].lower() or "file"
            extra = kind + (f"-{n}" if n > 1 else "")
            dest = job.dest.with_name(f"{core}-{extra}{tag}{job.dest.suffix}")
            n += 1
        job.dest = dest
        taken.add(dest.resolve())


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _add(jobs: list[PhotoJob], seen: set[Path], src: Path, dest: Path) -> None:
    key = src.resolve()
    if key not in seen:
        seen.add(key)
        jobs.append(PhotoJob(src, dest))


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round ``x`` to 8-bit levels in place, as :func:`cloak.tensors.quantize` does by copy.

    The engine's result belongs to the caller, and at 12 MP each copy costs 150 MB.
    """
    return x.clamp_(0, 1).mul_(255.0).round_().div_(255.0)


def protect_file(
    job: PhotoJob,
    config: ProtectConfig,
    encoders: Sequence[AutoEncoder],
    cancel: Callable[[], bool] | None = None,
    keep_clean: bool = False,
) -> Generator[Progress, None, PhotoResult]:
    """Load, protect and atomically save one photo.

    ``keep_clean``: return the original's round trips at the work size
    (:attr:`PhotoResult.clean`, about 3 MB per encoder at 1024 px), for a caller that measures
    the saved photo next (:func:`cloak.metrics.seed_cache`); the attack may have to compute
    them for the purpose, and a long batch would hold one set per photo, so only then.

    Raises:
        PhotoError: The photo cannot be read or written.
        Cancelled: ``cancel`` returned True; nothing was written.
    """
    start = time.perf_counter()
    if job.dest.exists() and not config.output.overwrite:
        return PhotoResult(
            job.source, job.dest, "skipped", message="already protected (use --overwrite to redo)"
        )
    photo = load_photo(job.source, max_pixels=config.max_pixels)
    original = to_tensor(photo.rgb)
    result = yield from protect(original, encoders, config, cancel, keep_clean)
    if cancel is not None and cancel():
        raise Cancelled("protection cancelled before saving")
    saved = quantize(result.protected)
    clean = result.clean
    del result
    try:
        job.dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PhotoError(
            job.dest.parent,
            f"cannot create the output folder ({exc.strerror}); choose another with -o",
        ) from exc
    save_photo(photo, to_array(saved), job.dest, config.output)
    notes = list(photo.notes)
    named = mismatch_note(job.source, photo.format, job.dest.name)
    if named is not None:
        notes.insert(0, named)
    # The figures a person is shown are those of the file written: a JPEG, WebP or HEIF save
    # adds its own changes to the protection's (16/255 before saving read 25/255 after).
    written = saved
    try:
        reread = to_tensor(load_photo(job.dest, max_pixels=config.max_pixels).rgb)
        if reread.shape == saved.shape:
            written = reread
    except PhotoError:
        log.debug("could not read %s back; its figures are those before saving", job.dest)
    mse, largest = band_differences(written, original)
    del saved, original, written
    # The next photo of a batch starts from the memory this one no longer holds.
    release_freed_memory()
    return PhotoResult(
        job.source,
        job.dest,
        "protected",
        seconds=time.perf_counter() - start,
        psnr=math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse),
        linf_255=largest * 255.0,
        message="; ".join(notes + save_notes(photo, config.output)),
        clean=clean,
    )


def run_batch(
    jobs: Sequence[PhotoJob],
    config: ProtectConfig,
    encoders: Sequence[AutoEncoder],
    cancel: Callable[[], bool] | None = None,
    keep_clean: bool | Callable[[int], bool] = False,
) -> Generator[PhotoEvent, None, list[PhotoResult]]:
    """Protect every job in turn, going on past failures (``keep_clean``: see
    :func:`protect_file`; a callable is asked, as each photo starts, with the photo's index:
    only the photos that will be measured next need them).

    A photo that fails (bad file, full disk, a crash inside the attack) is reported as failed
    and the batch continues. Cancelling stops at the next step: finished photos are kept,
    nothing half-written remains, and a rerun skips what is done.
    """
    results: list[PhotoResult] = []
    total = len(jobs)
    for i, job in enumerate(jobs):
        if cancel is not None and cancel():
            break
        start = time.perf_counter()
        keep = keep_clean(i) if callable(keep_clean) else keep_clean
        gen = protect_file(job, config, encoders, cancel, keep)
        try:
            while True:
                try:
                    rec = next(gen)
                except StopIteration as stop:
                    res: PhotoResult = stop.value
                    break
                yield PhotoEvent(i, total, job, progress=rec)
        except Cancelled:
            break
        except PhotoError as exc:
            res = PhotoResult(job.source, job.dest, "failed", message=str(exc))
        except CloakError as exc:
            res = PhotoResult(job.source, job.dest, "failed", message=f"{job.source}: {exc}")
        except MemoryError:
            res = PhotoResult(
                job.source,
                job.dest,
                "failed",
                message=f"{job.source}: out of memory; close other programs or lower --work-size",
            )
        except Exception as exc:  # noqa: BLE001 - one photo's crash must not stop the batch
            log.debug("crash while protecting %s:\n%s", job.source, traceback.format_exc())
            res = PhotoResult(
                job.source,
                job.dest,
                "failed",
                message=f"{job.source}: internal error ({type(exc).__name__}: {exc}); "
                "please report it with this message",
            )
        finally:
            gen.close()
        if res.seconds == 0.0:
            res.seconds = time.perf_counter() - start
        results.append(res)
        yield PhotoEvent(i, total, job, result=res)
    return results
