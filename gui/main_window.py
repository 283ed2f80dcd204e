"""The main window: lays out the queue, settings, compare view and progress, and wires actions.

It owns no protection logic: photos go to :class:`~cloak.gui.state.QueueModel`, settings to
:class:`~cloak.gui.state.SettingsModel`, and every long job to a
:class:`~cloak.gui.worker.Worker` running an engine generator off the UI thread.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import (
    QMainWindow,
    QMessageBox,
)
from superqt.utils import GeneratorWorker

from cloak.config import ProtectConfig
from cloak.eta import EtaEstimator
from cloak.gui.analysis import Analysis
from cloak.gui.art import STYLE, app_icon
from cloak.gui.encoder_bar import EncoderState
from cloak.gui.file_actions import FileActions
from cloak.gui.state import (
    DONE,
    FAILED,
    PROTECTING,
    WAITING,
    QueueModel,
    SettingsModel,
)
from cloak.gui.window_layout import build_layout, build_menus
from cloak.gui.worker import (
    BatchDone,
    EncoderLoader,
    EncoderSource,
    EncodersReady,
    FixedEncoders,
    ItemDone,
    ItemProgress,
    LoadStatus,
    ModelLoader,
    make_worker,
    protect_task,
)

QUEUED = Qt.ConnectionType.QueuedConnection
"""Worker signals always reach the window on the UI thread."""


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "time left known after the first photo"
    s = int(seconds + 0.5)
    return f"about {s // 60} min {s % 60:02d} s left" if s >= 60 else f"about {s} s left"


class MainWindow(FileActions, QMainWindow):
    """Cloak's window.

    Args:
        settings: Where settings persist (default ``QSettings("Cloak", "Cloak")``).
        encoder_loader: ``loader(names) -> (encoders, missing)``; tests inject tiny encoders.
        models_dir: Weights folder for the default loader.
        offline: Kept for the command line; the app downloads only when asked (Download).
        source: Where encoders come from (overrides ``encoder_loader``).

    Signals:
        run_finished: A protect run ended (done, cancelled or failed).
        analysis_ready: A row's AI view and scores arrived (and again with re-posts).
        ai_ready: ``(uid, reposts)``: an item's AI view and scores arrived.
        photo_shown: ``(uid, seconds)``: a protected photo appeared, seconds after it was saved.
        record: Every record of the protect worker, on the UI thread.
        worker_created: A protect worker, before it starts.
        encoders_changed: A download ended.
    """

    run_finished = Signal()
    analysis_ready = Signal(int)
    ai_ready = Signal(int, bool)
    photo_shown = Signal(int, float)
    record = Signal(object)
    worker_created = Signal(object)
    encoders_changed = Signal()

    def __init__(
        self,
        settings: QSettings | None = None,
        encoder_loader: EncoderLoader | None = None,
        models_dir: str | Path | None = None,
        offline: bool | None = None,
        source: EncoderSource | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Cloak: protect your photos from AI editing")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setStyleSheet(STYLE)
        self.queue = QueueModel(self)
        self.settings = SettingsModel(settings, self)
        if source is None:
            source = (
                FixedEncoders(encoder_loader)
                if encoder_loader is not None
                else ModelLoader(models_dir, offline)
            )
        self.source: EncoderSource = source
        self.worker: GeneratorWorker | None = None
        # The photo the compare view shows, for the protect worker (see protect_task).
        self._watched_uid: int | None = None
        self._step_s: float | None = None  # the last attack step's wall time (cancel's wait)
        self._last_step_at: float | None = None
        self._encoders: list[Any] | None = None
        self._encoders_key: tuple[str, ...] = ()
        self._run_attacked: tuple[str, ...] = ()
        self._run_counts: dict[str, int] = {}
        self._etas: dict[str, EtaEstimator] = {}  # per settings (their repr), for the session
        self._errored = False
        self.shown_after_s: float | None = None
        build_layout(self)
        self.analysis = Analysis(
            self.queue, self.compare, lambda: self.busy, lambda: self._encoders, self
        )
        self.analysis.ai_ready.connect(self.ai_ready)
        self.analysis.analysis_ready.connect(self.analysis_ready)
        build_menus(self)
        self._set_busy(False)
        self.encoder_state = EncoderState(
            self.source, self.settings, self.encoder_bar, self.settings_panel, self
        )
        self.encoder_state.downloaded.connect(self._encoders_downloaded)
        self.encoder_state.status.connect(self.status.setText)
        self.compare.reposts_requested.connect(self.request_reposts)

    # Layout

    def set_mode(self, mode: str) -> None:
        self.compare.set_mode(mode)

    # Encoders

    def refresh_encoders(self) -> None:
        """Say which chosen encoders are on this computer; offer to download the rest."""
        self.encoder_state.refresh()

    def download_missing(self) -> GeneratorWorker | None:
        """Download the chosen encoders that are missing, in a worker."""
        return self.encoder_state.download_missing()

    @property
    def downloader(self) -> GeneratorWorker | None:
        return self.encoder_state.downloader

    def _encoders_downloaded(self) -> None:
        self._encoders, self._encoders_key = None, ()  # load the new ones on the next run
        self.encoders_changed.emit()

    # Protecting

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def protect(self) -> GeneratorWorker | None:
        """Protect the waiting photos; if none waits, offer to redo the done ones."""
        if self.busy:
            return None
        todo = self.queue.rows_to_protect()
        config = self.settings.config
        if not todo:
            done = self.queue.rows_done()
            cur = self.queue_view.current_row()
            if cur >= 0 and self.queue.item(cur).status == FAILED:
                self.status.setText("Failed photos wait for Protect > Retry failed.")
                return None
            redo = [cur] if cur in done else done
            if redo and self.confirm_replace(redo):
                todo = redo
                config = config.replace(output=dataclasses.replace(config.output, overwrite=True))
            elif not redo and self.queue.rows_failed():
                self.status.setText("Failed photos wait for Protect > Retry failed.")
                return None
            elif not redo:
                self.status.setText("Open photos first (Ctrl+O), or drop them on the window.")
                return None
            else:
                self.status.setText("Kept the protected copy as it is.")
                return None
        return self._run(todo, config)

    def confirm_replace(self, rows: Sequence[int]) -> bool:
        """Ask before replacing protected copies (the originals are never touched)."""
        names = ", ".join(self.queue.item(r).source.name for r in rows[:3])
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        title = "Replace the protected copy?" if len(rows) == 1 else "Replace the protected copies?"
        answer = QMessageBox.question(
            self,
            title,
            f"{names}{more} {'is' if len(rows) == 1 else 'are'} already protected. Protect "
            f"again with the {self.settings.preset_name.capitalize()} settings and replace the "
            "protected copy? The original stays untouched.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def retry_failed(self) -> GeneratorWorker | None:
        """Run the failed photos again (they are not retried unless asked)."""
        if self.busy:
            return None
        rows = self.queue.rows_failed()
        if not rows:
            self.status.setText("No failed photo to retry.")
            return None
        for r in rows:
            self.queue.update(r, status=WAITING, message="")
        return self._run(rows, self.settings.config)

    def _run(self, todo: list[int], config: ProtectConfig) -> GeneratorWorker:
        self.banner.hide()
        for r in todo:
            self.queue.update(r, status=WAITING, progress=0.0, message="", pictures=None, ai=None)
        # A photo protected again shows its original until the new copy is done.
        self.show_row(self.queue_view.current_row())
        cached = self._encoders if self._encoders_key == config.encoders else None
        items = [self.queue.item(r) for r in todo]
        task = protect_task(
            todo,
            [it.uid for it in items],
            [it.source for it in items],
            config,
            self.settings.out_dir,
            self.source,
            cached,
            # What a photo costs depends on the settings, not on the run: photos protected
            # earlier in this session with the same settings inform this run's ETA.
            self._etas.setdefault(repr(config), EtaEstimator()),
            self._is_watched,
        )
        w = make_worker(task)
        w.yielded.connect(self._on_progress, QUEUED)
        w.returned.connect(self._on_returned, QUEUED)
        w.errored.connect(self._on_error, QUEUED)
        w.finished.connect(self._on_finished, QUEUED)
        self.worker = w
        self._run_attacked = tuple(config.encoders)
        self._run_counts = {"protected": 0, "failed": 0, "skipped": 0}
        self._step_s = self._last_step_at = None
        self._set_busy(True)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status.setText("Starting...")
        self.worker_created.emit(w)
        w.start()
        return w

    def cancel(self) -> None:
        """Stop at the next step; nothing half-written is kept."""
        if self.worker is not None:
            self.worker.quit()
            step = self._step_s
            wait = f"; a step takes about {step:.0f} s here" if step and step >= 1.5 else ""
            self.status.setText(
                f"Cancelling: stopping after the current step{wait} (loading or saving a "
                "photo finishes first)..."
            )

    @Slot(object)
    def _on_progress(self, rec: object) -> None:
        self.record.emit(rec)
        if isinstance(rec, EncodersReady):
            self._encoders = rec.encoders
            self._encoders_key = self._run_attacked
            self._run_attacked = tuple(e.name for e in rec.encoders) or self._run_attacked
            if rec.missing:
                self.encoder_state.details = "\n".join(f"{n}: {r}" for n, r in rec.missing.items())
            self.refresh_encoders()
        elif isinstance(rec, LoadStatus):
            self.status.setText(rec.message)
            if rec.total:
                self.progress.setRange(0, rec.total)
                self.progress.setValue(rec.done)
            else:
                self.progress.setRange(0, 0)
        elif isinstance(rec, ItemProgress):
            now = time.perf_counter()
            if self._last_step_at is not None and rec.stage == "attack":
                self._step_s = now - self._last_step_at
            self._last_step_at = now
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(rec.overall * 1000))
            self.queue.update(rec.row, status=PROTECTING, progress=rec.fraction)
            name = self.queue.item(rec.row).source.name
            self.status.setText(
                f"Protecting {name}: {round(rec.fraction * 100)}%, overall "
                f"{round(rec.overall * 100)}%, {_fmt_eta(rec.eta_s)}"
            )
        elif isinstance(rec, ItemDone):
            self._item_done(rec)

    def _item_done(self, rec: ItemDone) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(rec.overall * 1000))
        res = rec.result
        self._run_counts[res.status] = self._run_counts.get(res.status, 0) + 1
        if res.status == "failed":
            msg = res.message
            prefix = f"{self.queue.item(rec.row).source}: "
            msg = msg[len(prefix) :] if msg.startswith(prefix) else msg
            self.queue.update(rec.row, status=FAILED, progress=0.0, message=msg, result=res)
            if rec.row == self.queue_view.current_row():
                self.show_row(rec.row)
            return
        # Notes such as "animated GIF: only the first frame is protected" stay visible.
        note = "kept the earlier copy" if res.status == "skipped" else res.message
        self.queue.update(
            rec.row,
            status=DONE,
            progress=1.0,
            message=note,
            result=res,
            pictures=rec.pictures,
            ai=None,
            attacked=self._run_attacked,
        )
        self.analysis.keep_pictures(rec.row)
        if rec.row == self.queue_view.current_row():
            self.show_row(rec.row)
            if rec.pictures is not None and rec.done_at:
                self.shown_after_s = time.perf_counter() - rec.done_at
                self.photo_shown.emit(self.queue.item(rec.row).uid, self.shown_after_s)

    @Slot(object)
    def _on_returned(self, done: BatchDone) -> None:
        self._encoders = done.encoders
        self._encoders_key = tuple(self.settings.config.encoders)

    @Slot(object)
    def _on_error(self, exc: BaseException) -> None:
        self._errored = True
        self.show_banner(str(exc) or type(exc).__name__, error=True)
        self.status.setText("Stopped: see the message above.")

    @Slot()
    def _on_finished(self) -> None:
        w, self.worker = self.worker, None
        cancelled = w is not None and w.abort_requested
        for i, item in enumerate(self.queue.items):
            if item.status == PROTECTING:
                self.queue.update(i, status=WAITING, progress=0.0, message="")
        c = self._run_counts
        self.progress.setRange(0, 1000)
        if cancelled:
            self.progress.setValue(0)
            self.status.setText(
                f"Cancelled. {c['protected']} protected; nothing half-written was kept."
            )
        elif self._errored:
            self.progress.setValue(0)
        else:
            extra = f", {c['failed']} failed (see the queue)" if c["failed"] else ""
            self.status.setText(f"Done: {c['protected']} protected{extra}.")
            self.progress.setValue(1000)
        self._errored = False
        self._set_busy(False)
        row = self.queue_view.current_row()
        if row >= 0 and self.queue.item(row).status == DONE:
            self.show_row(row)  # what waited for the run: heatmap, AI view, scores
        self.run_finished.emit()

    def show_banner(self, text: str, error: bool = False) -> None:
        self.banner.setProperty("level", "error" if error else "warning")
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.banner_text.setText(text)
        self.banner.show()

    def _set_busy(self, busy: bool) -> None:
        for w in (self.protect_button, self.protect_action, self.settings_panel, self.open_action):
            w.setEnabled(not busy)
        self.retry_action.setEnabled(not busy)
        self.open_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.cancel_action.setEnabled(busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        done = [it for it in self.queue.items if it.status == DONE]
        row = self.queue_view.current_row()
        cur_done = row >= 0 and self.queue.item(row).status == DONE
        self.save_button.setEnabled(cur_done)
        self.save_action.setEnabled(cur_done)
        self.save_all_button.setEnabled(bool(done))
        self.save_all_action.setEnabled(bool(done))
        self.folder_button.setEnabled(bool(done) or self.settings.out_dir is not None)

    # Comparing

    def _current_changed(self, current: Any, _previous: Any) -> None:
        self._update_buttons()
        self.show_row(current.row() if current.isValid() else -1)

    def _item_changed(self, row: int) -> None:
        if row == self.queue_view.current_row():
            self._update_buttons()

    def _is_watched(self, uid: int) -> bool:
        """Whether the compare view shows photo ``uid`` (read by the protect worker's thread)."""
        return uid == self._watched_uid

    def show_row(self, row: int) -> None:
        """Show ``row`` in the compare view: what is known now, the rest when measured."""
        self._watched_uid = self.queue.item(row).uid if row >= 0 else None
        if row < 0:
            self.compare.clear()
            return
        item = self.queue.item(row)
        if item.status == FAILED:
            self.compare.show_failed(item.uid, item.source.name, item.message)
            return
        if item.status != DONE or item.dest is None:
            self.compare.show_original(item.uid, item.source)
            return
        self.analysis.keep_pictures(row)
        self.compare.ai_waits = self.busy
        self.compare.show_photo(
            item.uid, item.source.name, item.result, item.pictures, item.ai, item.attacked
        )
        if item.pictures is None or item.pictures.heat is None or item.ai is None:
            self.request_analysis(row)

    @property
    def analyser(self) -> GeneratorWorker | None:
        """The worker measuring the AI view and scores now (None: none)."""
        return self.analysis.worker

    @property
    def attacker_long_side(self) -> int | None:
        """The size the AI view and scores are measured at (None: the attacker's default)."""
        return self.analysis.attacker_long_side

    @attacker_long_side.setter
    def attacker_long_side(self, side: int | None) -> None:
        self.analysis.attacker_long_side = side

    def request_reposts(self, uid: int) -> GeneratorWorker | None:
        """Measure the platform re-post scenarios of item ``uid`` (on the person's request)."""
        return self.analysis.request_reposts(uid)

    def request_analysis(self, row: int, reposts: bool = False) -> GeneratorWorker | None:
        """Fill in what ``row`` lacks (pictures, AI view, scores); see :class:`Analysis`."""
        return self.analysis.request(row, reposts)

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        for w in (self.worker, self.analysis.worker, self.downloader):
            if w is not None:
                w.quit()
        QThreadPool.globalInstance().waitForDone(30000)
        super().closeEvent(event)
