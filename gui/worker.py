"""Long work off the UI thread: engine generators run by superqt's :class:`GeneratorWorker`.

A task is a generator function that takes a ``cancel`` callback. :func:`make_worker` wraps it
in a superqt ``GeneratorWorker`` (signals started / yielded / returned / errored / aborted /
finished) whose ``quit()`` is the cancel: superqt stops at the next yield, and the engine,
which is handed ``cancel``, stops inside its step loop too, so a cancel acts within one step.
``finished`` is emitted whatever happened, so the window can always re-enable its buttons.

The tasks below (:func:`protect_task`, :func:`analyse_task`) only call the engine; none
re-implements it. Every record carries the queue item's ``uid`` so the window can drop a
record that belongs to a photo no longer shown.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from superqt.utils import GeneratorWorker

from cloak.config import ProtectConfig
from cloak.device import release_freed_memory
from cloak.eta import EtaEstimator, pixels_of
from cloak.jobs import PhotoJob, PhotoResult, make_distinct, output_path, run_batch

log = logging.getLogger(__name__)

DISPLAY_LONG_SIDE = 1600
"""Compare-view pictures larger than this are shown downscaled (scores use full size)."""

EncoderLoader = Callable[[Sequence[str]], tuple[list[Any], dict[str, str]]]
"""``loader(names) -> (encoders, {missing name: reason})`` (see :class:`FixedEncoders`)."""

Task = Callable[[Callable[[], bool]], Generator[Any, None, Any]]
"""``task(cancel)``: a generator that checks ``cancel()`` between steps."""


def make_worker(task: Task) -> GeneratorWorker:
    """A superqt worker for ``task``, not started: connect its signals, then ``start()``.

    ``worker.quit()`` cancels: the task sees ``cancel()`` turn true at its next step.
    """
    holder: list[GeneratorWorker] = []

    def run() -> Generator[Any, None, Any]:
        return (yield from task(lambda: holder[0].abort_requested))

    worker = GeneratorWorker(run)
    holder.append(worker)
    return worker


class EncoderSource(Protocol):
    """Where the window gets its encoders: what is missing, a download, and loading."""

    def missing(self, names: Sequence[str]) -> list[str]:
        """Names in ``names`` whose weights are not on this computer."""
        ...

    def download(self, name: str) -> None:
        """Fetch ``name``'s weights (may raise)."""
        ...

    def load(self, names: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
        """``(encoders, {name left out: reason})``; may raise ``WeightsError``."""
        ...


class ModelLoader:
    """The real encoders: weights from the models folder, downloaded only on request.

    ``offline`` (or ``HF_HUB_OFFLINE``) refuses downloads; loading never downloads.
    """

    def __init__(self, models_dir: str | Path | None = None, offline: bool | None = None) -> None:
        self.models_dir = models_dir
        self.offline = offline

    def missing(self, names: Sequence[str]) -> list[str]:
        from cloak.models import model_status

        present = {r.name for r in model_status(self.models_dir) if r.available}
        return [n for n in names if n.lower() not in present]

    def download(self, name: str) -> None:
        from cloak.models import download
        from cloak.models.weights import is_offline

        if is_offline(self.offline):
            raise RuntimeError(
                f"{name}: downloads are off (--offline or HF_HUB_OFFLINE=1); start the app "
                "without them to download"
            )
        download(name, models_dir=self.models_dir, progress=False)

    def load(self, names: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
        from cloak.models import load_ensemble

        # Only what is on disk is loaded: downloads happen when the person asks for them.
        return load_ensemble(names, models_dir=self.models_dir, offline=True)


class FixedEncoders:
    """Encoders from a function ``names -> (encoders, missing)`` (tests inject tiny ones)."""

    def __init__(self, fn: EncoderLoader) -> None:
        self.fn = fn

    def missing(self, names: Sequence[str]) -> list[str]:
        return []

    def download(self, name: str) -> None:
        raise RuntimeError(f"{name}: these encoders cannot be downloaded")

    def load(self, names: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
        return self.fn(names)


# Records the tasks yield


@dataclass
class LoadStatus:
    """Something slow is under way: ``done`` of ``total`` (0 total = busy)."""

    message: str
    done: int = 0
    total: int = 0


@dataclass
class EncodersReady:
    """The encoders are loaded (the window keeps them for the compare view)."""

    encoders: list[Any]
    missing: dict[str, str]


@dataclass
class ItemProgress:
    """One photo's progress inside the batch, with the batch's overall fraction and ETA."""

    row: int
    fraction: float
    overall: float
    eta_s: float | None
    stage: str


@dataclass
class Pictures:
    """A protected photo and its original at display size, as uint8 (H, W, 3) arrays.

    ``heat`` (the amplified change) needs both photos at full size: it is None in the quick
    pictures shown the moment a photo is done, and comes with the analysis.
    """

    uid: int
    original: np.ndarray
    protected: np.ndarray
    heat: np.ndarray | None


@dataclass
class ItemDone:
    """One photo finished (protected, skipped or failed), with its pictures when protected.

    ``done_at`` is the ``time.perf_counter()`` when the file was written, so the window can
    tell how long the picture took to appear.
    """

    row: int
    result: PhotoResult
    overall: float
    pictures: Pictures | None = None
    done_at: float = 0.0


@dataclass
class BatchDone:
    """What the protect task returns."""

    results: list[PhotoResult]
    encoders: list[Any]
    missing: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False


@dataclass
class AiView:
    """The encoder/decoder round trips of one photo at the attacker's size, and its scores."""

    uid: int
    encoder: str
    original: np.ndarray | None
    protected: np.ndarray | None
    report: Any
    reposts: bool
    seconds: float


def _uint8(x: Any) -> np.ndarray:
    """(1, 3, H, W) tensor in [0, 1] -> display-size (H, W, 3) uint8 (a quarter of float32)."""
    from cloak.metrics import to_array
    from cloak.transforms import resize_long_side

    if max(x.shape[-2:]) > DISPLAY_LONG_SIDE:
        x = resize_long_side(x, DISPLAY_LONG_SIDE)
    return (to_array(x) * 255.0 + 0.5).astype(np.uint8)


def load_pair(source: Path, dest: Path) -> tuple[Any, Any]:
    """The original and the protected photo as full-size (1, 3, H, W) tensors."""
    from cloak.metrics import to_tensor
    from cloak.photo_io import load_photo

    original = to_tensor(load_photo(source).rgb)
    protected = to_tensor(load_photo(dest).rgb)
    if protected.shape != original.shape:
        raise ValueError(f"{dest.name}: its size differs from the original {source.name}")
    return original, protected


def read_scaled_image(path: Path, long_side: int) -> tuple[Any, str]:
    """A photo file as a QImage of at most ``long_side`` px, scaled while decoding (a JPEG
    decodes straight to 1/2, 1/4 or 1/8 size), and the reader's error text; the image is null
    when the file cannot be read."""
    from PySide6.QtGui import QImageReader

    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > long_side:
        reader.setScaledSize(size * (long_side / max(size.width(), size.height())))
    return reader.read(), reader.errorString()


def read_scaled(path: Path, long_side: int = DISPLAY_LONG_SIDE) -> np.ndarray:
    """A photo file at display size as (H, W, 3) uint8, scaled while decoding, so it costs a
    fraction of a full decode."""
    from PySide6.QtGui import QImage

    img, error = read_scaled_image(path, long_side)
    if img.isNull():
        raise ValueError(f"{path.name}: cannot be read for display ({error})")
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    rows = np.frombuffer(img.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return rows[:, : w * 3].reshape(h, w, 3).copy()


def quick_pictures(uid: int, source: Path, dest: Path) -> Pictures:
    """The original and the protected file at display size, read cheaply (no heatmap)."""
    return Pictures(uid, read_scaled(source), read_scaled(dest), None)


def pictures_of(uid: int, original: Any, protected: Any) -> Pictures:
    """Display-size pictures of a pair. The change is measured at full size (one channel, in
    row bands) and coloured after it is scaled to display size, so a 12 MP pair adds about
    50 MB here instead of the 450 MB of a full-size colour heat image and its temporaries."""
    from cloak.compare import change_map, colourise

    change = change_map(original, protected, 10.0)
    if max(change.shape[-2:]) > DISPLAY_LONG_SIDE:
        from cloak.transforms import resize_long_side

        change = resize_long_side(change, DISPLAY_LONG_SIDE)
    return Pictures(uid, _uint8(original), _uint8(protected), _uint8(colourise(change)))


def protect_task(
    rows: Sequence[int],
    uids: Sequence[int],
    sources: Sequence[Path],
    config: ProtectConfig,
    out_dir: Path | None,
    source: EncoderSource,
    encoders: list[Any] | None = None,
    eta: EtaEstimator | None = None,
    watched: Callable[[int], bool] | None = None,
) -> Task:
    """A protect run over queue ``rows`` (items ``uids``, files ``sources``).

    Encoders are loaded inside the worker unless ``encoders`` is given; the batch goes on past
    failed photos, and cancelling stops at the next step. Each protected photo comes back with
    its display pictures, so the window can show it at once. ``eta``: the estimator of earlier
    runs with the same settings, which this run goes on feeding (the first photo of a run then
    has an ETA too); only this worker touches it while the run lasts. ``watched(uid)``: whether
    the person is looking at that photo, asked from the worker thread as each photo starts;
    only such a photo keeps the attack's clean round trips for its measurement (None: every
    photo keeps them).
    """

    def run(cancel: Callable[[], bool]) -> Generator[Any, None, BatchDone]:
        missing: dict[str, str] = {}
        encs = encoders
        if encs is None:
            yield LoadStatus("Loading the encoders...")
            encs, missing = source.load(list(config.encoders))
            yield EncodersReady(list(encs), dict(missing))
        jobs = [PhotoJob(src, output_path(src, out_dir, config, None)) for src in sources]
        make_distinct(jobs)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        pixels = pixels_of(sources)
        estimator = eta if eta is not None else EtaEstimator()
        total = max(1, len(jobs))

        # The attack's clean round trips come back with the result of the photo the person
        # looks at: the measurement of the saved photo then encodes only the protected copy.
        # A photo nobody looks at would drop them unused (the analysis keeps a few), after a
        # round trip at the work size that can cost as much as a sixth of its protection.
        def keep(i: int) -> bool:
            return watched is None or watched(uids[i])

        batch = run_batch(jobs, config, encs, cancel, keep_clean=keep)
        # A photo's time runs from the end of the one before (or the batch's start), so its
        # decoding, before its first progress record, is counted too.
        photo_started = time.perf_counter()
        while True:
            try:
                ev = next(batch)
            except StopIteration as stop:
                results: list[PhotoResult] = stop.value
                break
            row = rows[ev.index]
            if ev.progress is not None:
                frac = ev.progress.fraction if ev.progress.stage == "attack" else 0.0
                if ev.progress.stage == "lift":
                    frac = 0.99
                overall = (ev.index + frac) / total
                left = estimator.remaining(pixels[ev.index + 1 :], pixels[ev.index], frac)
                yield ItemProgress(row, frac, overall, left, ev.progress.stage)
            elif ev.result is not None:
                res = ev.result
                done_at = time.perf_counter()
                pics = None
                if res.status == "protected" and not cancel():
                    try:
                        pics = quick_pictures(uids[ev.index], res.source, res.dest)
                    except Exception:  # noqa: BLE001 - the compare view loads it again later
                        log.debug("pictures of %s failed", res.dest, exc_info=True)
                if res.status == "protected":
                    # The whole wall time of the photo, pictures included, is what the next
                    # photos will cost too.
                    estimator.observe(pixels[ev.index], time.perf_counter() - photo_started)
                yield ItemDone(row, res, (ev.index + 1) / total, pics, done_at)
                photo_started = time.perf_counter()
        return BatchDone(results, list(encs), missing, cancelled=cancel())

    return run


def analyse_task(
    uid: int,
    source: Path,
    dest: Path,
    encoders: Sequence[Any],
    attacker_long_side: int | None = None,
    need_pictures: bool = True,
    reposts: bool = False,
    known: AiView | None = None,
    cache: dict[Any, Any] | None = None,
    bf16: bool = False,
    seeds: Sequence[Any] = (),
) -> Task:
    """Pictures, AI view and scores of one protected photo, cheapest first.

    Yields :class:`Pictures` (when ``need_pictures``), then an :class:`AiView` with the
    scores of the photo posted as is (unless ``known`` has them already), then, when
    ``reposts`` (the person asked for them), one with the platform re-post scenarios added.
    The AI view is the round trip of the first encoder with a decoder at the attacker's size,
    the same round trip the score is computed from (computed once). Full-size PSNR and the
    largest change come with the protect result, so they are not computed again here.
    ``attacker_long_side`` defaults to :data:`cloak.metrics.ATTACKER_LONG_SIDE`. ``cache``
    (a :data:`cloak.metrics.OriginalCache` kept for this original photo) keeps the original's
    encodings and round trips, so measuring another protected copy of the same photo (after a
    redo with another preset) computes only the protected side; seeded with the attack's
    round trips (:func:`cloak.metrics.seed_cache`), even the first measurement does. ``bf16``:
    measure under bf16 autocast, as the attack ran. ``seeds``: the attack's
    :class:`~cloak.metrics.KnownRoundTrip` records of this photo (used where they match).
    """

    def run(cancel: Callable[[], bool]) -> Generator[Any, None, int]:
        try:
            yield from measure_pair(cancel)
        finally:
            # The full-size pair and the round trips are gone: a protection that starts next
            # gets their pages from a lean heap, not on top of them (see release_freed_memory).
            release_freed_memory()
        return uid

    def measure_pair(cancel: Callable[[], bool]) -> Generator[Any, None, None]:
        from cloak.metrics import ATTACKER_LONG_SIDE, PLATFORMS, measure, seed_cache

        side = attacker_long_side or ATTACKER_LONG_SIDE
        original, protected = load_pair(source, dest)
        if seeds and cache is not None and known is None:
            seed_cache(cache, original, seeds, bf16, side)
        if need_pictures:
            yield pictures_of(uid, original, protected)
        if cancel():
            return
        started = time.perf_counter()
        ai = known
        if ai is None:
            rts: dict[tuple[str, str, int, str], Any] = {}
            # Only what the panel shows: the damage at the AI view's size, posted as is (the
            # latent shift of an encoder with a decoder is not shown, so not measured).
            report = measure(
                original,
                protected,
                list(encoders),
                {},
                side,
                cache=cache,
                roundtrips=rts,
                pixels=False,
                shift=False,
                bf16=bf16,
            )
            decoders = [e for e in encoders if e.has_decoder]
            name, ai_o, ai_p = "", None, None
            if decoders:
                name = decoders[0].name
                ai_o = _uint8(rts[(name, "direct", side, "original")])
                ai_p = _uint8(rts[(name, "direct", side, "protected")])
            ai = AiView(uid, name, ai_o, ai_p, report, False, time.perf_counter() - started)
            yield ai
        if reposts and not ai.reposts and not cancel():
            more = measure(
                original,
                protected,
                list(encoders),
                PLATFORMS,
                side,
                cache=cache,
                direct=False,
                pixels=False,
                shift=False,
                bf16=bf16,
            )
            report = dataclasses.replace(ai.report, scores=ai.report.scores + more.scores)
            yield dataclasses.replace(
                ai, report=report, reposts=True, seconds=ai.seconds + time.perf_counter() - started
            )

    return run
