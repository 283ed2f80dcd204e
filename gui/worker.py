"""Long work off the UI thread: a generator run in a QThread, with cancel at the next step.

:class:`Worker` drives any generator function that takes a ``cancel`` callback; its signals are
started / yielded(record) / returned(value) / errored(exception) / finished, and ``finished``
is emitted whatever happened, so the window can always re-enable its buttons. The tasks below
(:func:`protect_task`, :func:`analyse_task`) only call the engine; none re-implements it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from cloak.config import ProtectConfig
from cloak.engine import run_to_end
from cloak.jobs import PhotoJob, PhotoResult, make_distinct, output_path, run_batch

log = logging.getLogger(__name__)

EncoderLoader = Callable[[Sequence[str]], tuple[list[Any], dict[str, str]]]
"""``loader(names) -> (encoders, {missing name: reason})``; may raise ``WeightsError``."""

DISPLAY_LONG_SIDE = 1600
"""Compare-view pictures larger than this are shown downscaled (scores use full size)."""


class Worker(QObject):
    """Runs ``fn(cancel)`` (a generator) in its own QThread.

    Signals:
        started: The generator is about to run.
        yielded: Each record the generator yields.
        returned: The generator's return value.
        errored: The exception that stopped it.
        finished: Always last, after returned or errored.
    """

    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()

    def __init__(self, fn: Callable[[Callable[[], bool]], Generator[Any, None, Any]]) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()
        self._thread = QThread()
        self._thread.setObjectName("cloak-worker")
        self.moveToThread(self._thread)
        self._thread.started.connect(self._run)
        self._running = False

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def cancel(self) -> None:
        """Ask the generator to stop at its next step."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self._running

    def wait(self, ms: int = 30000) -> bool:
        """Block until the thread has ended (for shutdown)."""
        return self._thread.wait(ms)

    def _run(self) -> None:
        self.started.emit()
        try:
            self.returned.emit(run_to_end(self._fn(self._cancel.is_set), self.yielded.emit))
        except Exception as exc:  # noqa: BLE001 - every error must reach the window
            log.debug("worker failed", exc_info=True)
            self.errored.emit(exc)
        finally:
            self._running = False
            self.finished.emit()
            self._thread.quit()


# Records the protect task yields


@dataclass
class LoadStatus:
    """Weights are being downloaded or loaded: ``done`` of ``total`` (0 total = busy)."""

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
class ItemDone:
    """One photo finished (protected, skipped or failed)."""

    row: int
    result: PhotoResult
    overall: float


@dataclass
class BatchDone:
    """What the protect task returns."""

    results: list[PhotoResult]
    encoders: list[Any]
    missing: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False


class ModelLoader:
    """The real encoder loader: downloads missing weights (unless offline), then loads."""

    def __init__(self, models_dir: str | Path | None = None, offline: bool | None = None) -> None:
        self.models_dir = models_dir
        self.offline = offline

    def to_download(self, names: Sequence[str]) -> list[str]:
        """Names whose weights are not all present locally (and may be downloaded)."""
        from cloak.models import model_status
        from cloak.models.weights import is_offline

        if is_offline(self.offline):
            return []
        present = {r.name for r in model_status(self.models_dir) if r.available}
        return [n for n in names if n.lower() not in present]

    def download(self, name: str) -> None:
        from cloak.models import download

        download(name, models_dir=self.models_dir, progress=False)

    def __call__(self, names: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
        from cloak.models import load_ensemble

        return load_ensemble(names, models_dir=self.models_dir, offline=self.offline)


def _eta(started: float, overall: float) -> float | None:
    if overall <= 0.02:
        return None
    spent = time.perf_counter() - started
    return spent / overall * (1.0 - overall)


def protect_task(
    rows: Sequence[int],
    sources: Sequence[Path],
    config: ProtectConfig,
    out_dir: Path | None,
    loader: EncoderLoader,
    encoders: list[Any] | None = None,
) -> Callable[[Callable[[], bool]], Generator[Any, None, BatchDone]]:
    """A protect run over queue ``rows`` (their ``sources``), for :class:`Worker`.

    Encoders are loaded (and downloaded on first run) inside the worker unless ``encoders`` is
    given; the batch goes on past failed photos, and cancelling stops at the next step.
    """

    def run(cancel: Callable[[], bool]) -> Generator[Any, None, BatchDone]:
        missing: dict[str, str] = {}
        encs = encoders
        if encs is None:
            wanted = list(config.encoders)
            fetch = getattr(loader, "to_download", None)
            todo = fetch(wanted) if fetch is not None else []
            for i, name in enumerate(todo):
                if cancel():
                    return BatchDone([], [], cancelled=True)
                yield LoadStatus(
                    f"First run: downloading the weights of {name} ({i + 1} of {len(todo)})...",
                    i,
                    len(todo),
                )
                try:
                    loader.download(name)  # type: ignore[attr-defined]
                except Exception as exc:  # noqa: BLE001 - load_ensemble reports it below
                    missing[name] = str(exc)
            yield LoadStatus("Loading the encoders...")
            encs, more = loader(wanted)
            missing.update(more)
            yield EncodersReady(list(encs), dict(missing))
        jobs = [PhotoJob(src, output_path(src, out_dir, config, None)) for src in sources]
        make_distinct(jobs)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        total = max(1, len(jobs))
        batch = run_batch(jobs, config, encs, cancel)
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
                yield ItemProgress(row, frac, overall, _eta(started, overall), ev.progress.stage)
            elif ev.result is not None:
                yield ItemDone(row, ev.result, (ev.index + 1) / total)
        return BatchDone(results, list(encs), missing, cancelled=cancel())

    return run


def _display(x: Any) -> Any:
    from cloak.metrics import to_array
    from cloak.transforms import resize_long_side

    if max(x.shape[-2:]) > DISPLAY_LONG_SIDE:
        x = resize_long_side(x, DISPLAY_LONG_SIDE)
    return to_array(x)


def analyse_task(
    row: int,
    source: Path,
    dest: Path,
    encoders: Sequence[Any],
    attacker_long_side: int | None = None,
) -> Callable[[Callable[[], bool]], Generator[Any, None, tuple[int, Any]]]:
    """Pictures and scores for the compare view of one protected photo, for :class:`Worker`.

    Returns ``(row, Analysis)``. The AI view is the round trip of the first encoder that has a
    decoder, at the attacker's working size (as :mod:`cloak.compare` draws it).
    ``attacker_long_side`` defaults to :data:`cloak.metrics.ATTACKER_LONG_SIDE`.
    """
    from cloak.gui.state import Analysis

    def run(cancel: Callable[[], bool]) -> Generator[Any, None, tuple[int, Any]]:
        from cloak.compare import heatmap
        from cloak.metrics import ATTACKER_LONG_SIDE, measure, roundtrip, to_tensor
        from cloak.photo_io import load_photo
        from cloak.transforms import resize_long_side

        side = attacker_long_side or ATTACKER_LONG_SIDE
        yield LoadStatus("Comparing...")
        original = to_tensor(load_photo(source).rgb)
        protected = to_tensor(load_photo(dest).rgb)
        if protected.shape != original.shape:
            raise ValueError(f"{dest}: size differs from the original")
        result = Analysis(
            original=_display(original),
            protected=_display(protected),
            heat=_display(heatmap(original, protected, 10.0)),
        )
        decoders = [e for e in encoders if getattr(e, "has_decoder", False)]
        if decoders and not cancel():
            enc = decoders[0]
            o = resize_long_side(original, side)
            p = resize_long_side(protected, side)
            result.ai_original = _display(roundtrip(enc, o))
            result.ai_protected = _display(roundtrip(enc, p))
            result.encoder = enc.name
        if not cancel():
            yield LoadStatus("Scoring...")
            result.report = measure(original, protected, list(encoders), attacker_long_side=side)
        return row, result

    return run
