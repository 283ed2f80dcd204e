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

from PySide6.QtCore import QSettings, Qt, QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import GeneratorWorker

from cloak.config import ProtectConfig
from cloak.gui.art import STYLE, app_icon
from cloak.gui.compare_view import MODE_TITLES, MODES, CompareView
from cloak.gui.encoder_bar import EncoderBar, EncoderState
from cloak.gui.queue_view import QueueView
from cloak.gui.settings_panel import SettingsPanel
from cloak.gui.state import (
    DONE,
    FAILED,
    PROTECTING,
    WAITING,
    QueueModel,
    SettingsModel,
    copy_all,
    copy_protected,
)
from cloak.gui.worker import (
    AiView,
    BatchDone,
    EncoderLoader,
    EncoderSource,
    EncodersReady,
    FixedEncoders,
    ItemDone,
    ItemProgress,
    LoadStatus,
    ModelLoader,
    Pictures,
    analyse_task,
    make_worker,
    protect_task,
)
from cloak.photo_io import SUPPORTED_SUFFIXES

QUEUED = Qt.ConnectionType.QueuedConnection
"""Worker signals always reach the window on the UI thread."""
KEEP_PICTURES = 3
"""Display pictures are kept in memory for this many recently shown photos."""


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "time left known after the first photo"
    s = int(seconds + 0.5)
    return f"about {s // 60} min {s % 60:02d} s left" if s >= 60 else f"about {s} s left"


class MainWindow(QMainWindow):
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
        self.analyser: GeneratorWorker | None = None
        self._analysing: int | None = None
        self._reposts_after: int | None = None
        self._step_s: float | None = None  # the last attack step's wall time (cancel's wait)
        self._last_step_at: float | None = None
        self._encoders: list[Any] | None = None
        self._encoders_key: tuple[str, ...] = ()
        self._run_attacked: tuple[str, ...] = ()
        self._run_counts: dict[str, int] = {}
        self._errored = False
        self._recent: list[int] = []
        self.shown_after_s: float | None = None
        self.attacker_long_side: int | None = None  # None: cloak.metrics.ATTACKER_LONG_SIDE
        self._build()
        self._actions()
        self._set_busy(False)
        self.encoder_state = EncoderState(
            self.source, self.settings, self.encoder_bar, self.settings_panel, self
        )
        self.encoder_state.downloaded.connect(self._encoders_downloaded)
        self.encoder_state.status.connect(self.status.setText)
        self.compare.reposts_requested.connect(self.request_reposts)

    # Layout

    def _build(self) -> None:
        self.queue_view = QueueView(self.queue)
        self.settings_panel = SettingsPanel(self.settings)
        self.compare = CompareView()
        self.protect_button = QPushButton("Protect")
        self.protect_button.setObjectName("protect")
        self.cancel_button = QPushButton("Cancel")
        self.open_button = QPushButton("Open photos...")
        self.save_button = QPushButton("Save as...")
        self.save_all_button = QPushButton("Save all...")
        self.folder_button = QPushButton("Open output folder")
        self.encoder_bar = EncoderBar()
        self.banner = QFrame()
        self.banner.setObjectName("banner")
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("x")
        close.clicked.connect(self.banner.hide)
        b = QHBoxLayout(self.banner)
        b.addWidget(self.banner_text, 1)
        b.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.banner.hide()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.status = QLabel("Ready.")

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.open_button)
        lv.addWidget(self.queue_view, 1)
        lv.addWidget(self.settings_panel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.protect_button, 1)
        buttons.addWidget(self.cancel_button)
        lv.addLayout(buttons)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.encoder_bar)
        rv.addWidget(self.banner)
        rv.addWidget(self.compare, 1)
        saves = QHBoxLayout()
        saves.addWidget(self.status, 1)
        saves.addWidget(self.save_button)
        saves.addWidget(self.save_all_button)
        saves.addWidget(self.folder_button)
        rv.addLayout(saves)
        rv.addWidget(self.progress)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 900])
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(8, 8, 8, 8)
        cl.addWidget(split)
        self.setCentralWidget(central)
        self.resize(1280, 800)

        self.open_button.clicked.connect(self.open_dialog)
        self.protect_button.clicked.connect(self.protect)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self.save_dialog)
        self.save_all_button.clicked.connect(self.save_all_dialog)
        self.folder_button.clicked.connect(self.open_output_folder)
        self.queue_view.selectionModel().currentChanged.connect(self._current_changed)
        self.queue.items_changed.connect(self._update_buttons)
        self.queue.item_changed.connect(self._item_changed)

    def _actions(self) -> None:
        def act(menu: Any, text: str, keys: Sequence[Any], slot: Any) -> QAction:
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        bar = self.menuBar()
        f = bar.addMenu("&File")
        self.open_action = act(
            f, "&Open photos...", [QKeySequence.StandardKey.Open], self.open_dialog
        )
        act(f, "Open &folder...", ["Ctrl+Shift+O"], self.open_folder_dialog)
        f.addSeparator()
        self.save_action = act(f, "&Save as...", [QKeySequence.StandardKey.Save], self.save_dialog)
        self.save_all_action = act(f, "Save &all...", ["Ctrl+Shift+S"], self.save_all_dialog)
        act(f, "Open output &folder", [], self.open_output_folder)
        f.addSeparator()
        act(f, "&Quit", [QKeySequence.StandardKey.Quit], self.close)
        p = bar.addMenu("&Protect")
        self.protect_action = act(p, "&Protect", ["Ctrl+Return", "Ctrl+Enter"], self.protect)
        self.cancel_action = act(p, "&Cancel", ["Esc"], self.cancel)
        self.retry_action = act(p, "&Retry failed", [], self.retry_failed)
        v = bar.addMenu("&View")
        self.mode_actions = []
        for i, mode in enumerate(MODES):
            a = act(v, MODE_TITLES[mode], [str(i + 1)], lambda _=False, m=mode: self.set_mode(m))
            self.mode_actions.append(a)
        v.addSeparator()
        st = self.compare.state
        act(v, "Zoom &in", ["Ctrl+=", "Ctrl++", QKeySequence.StandardKey.ZoomIn], st.zoom_in)
        act(v, "Zoom &out", ["Ctrl+-", QKeySequence.StandardKey.ZoomOut], st.zoom_out)
        act(v, "&Fit", ["Ctrl+0"], st.reset)

    def set_mode(self, mode: str) -> None:
        self.compare.set_mode(mode)

    # Opening

    def add_paths(self, paths: Sequence[str | Path]) -> int:
        n = self.queue.add_paths(paths)
        if n and self.queue_view.current_row() < 0:
            self.queue_view.setCurrentIndex(self.queue.index(0))
        self.status.setText(f"{self.queue.rowCount()} photo(s) in the queue.")
        return n

    def open_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open photos", str(Path.home()), f"Photos ({patterns});;All files (*)"
        )
        if files:
            self.add_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", str(Path.home()))
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.add_paths(paths)
            event.acceptProposedAction()

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
        self._keep_pictures(rec.row)
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

    def show_row(self, row: int) -> None:
        """Show ``row`` in the compare view: what is known now, the rest when measured."""
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
        self._keep_pictures(row)
        self.compare.ai_waits = self.busy
        self.compare.show_photo(
            item.uid, item.source.name, item.result, item.pictures, item.ai, item.attacked
        )
        if item.pictures is None or item.pictures.heat is None or item.ai is None:
            self.request_analysis(row)

    def request_reposts(self, uid: int) -> GeneratorWorker | None:
        """Measure the platform re-post scenarios of item ``uid`` (on the person's request)."""
        row = self.queue.row_of(uid)
        if row < 0 or self.queue.item(row).ai is None:
            return None
        return self.request_analysis(row, reposts=True)

    def request_analysis(self, row: int, reposts: bool = False) -> GeneratorWorker | None:
        """Fill in what ``row`` lacks (pictures, AI view, scores) in a worker, cheapest first;
        ``reposts`` adds the platform re-post scenarios."""
        item = self.queue.item(row)
        if item.dest is None or not item.dest.is_file() or self._encoders is None:
            return None
        if self.busy:
            # Measured when the run ends: alongside a protection it would slow it down and add
            # its full-size pictures to the protection's in memory (the peak of a session).
            self.compare.ai_waits = True
            self.compare.set_ai(item.uid, item.ai)
            return None
        self.compare.ai_waits = False
        a = self.analyser
        if a is not None:
            if self._analysing == item.uid:
                if reposts:
                    self._reposts_after = item.uid  # once the AI view of this photo is in
                    self.compare.reposts_pending = True
                    self.compare.set_ai(item.uid, item.ai)
                return a
            a.quit()  # another photo: stop it at its next stage, its records are dropped
        encoders = [e for e in self._encoders if e.name in item.attacked] or self._encoders
        w = make_worker(
            analyse_task(
                item.uid,
                item.source,
                item.dest,
                encoders,
                self.attacker_long_side,
                need_pictures=item.pictures is None or item.pictures.heat is None,
                reposts=reposts,
                known=item.ai,
            )
        )
        self.compare.reposts_pending = reposts
        if reposts:
            self.compare.set_ai(item.uid, item.ai)
        w.yielded.connect(self._on_analysis, QUEUED)
        w.errored.connect(lambda exc, uid=item.uid: self._on_analysis_error(uid, exc), QUEUED)
        w.finished.connect(lambda w=w: self._on_analysis_finished(w), QUEUED)
        self.analyser, self._analysing = w, item.uid
        w.start()
        return w

    @Slot(object)
    def _on_analysis(self, rec: Any) -> None:
        row = self.queue.row_of(rec.uid)
        if row < 0:
            return
        if isinstance(rec, Pictures):
            if rec.uid in self._recent:
                self.queue.item(row).pictures = rec
            self.compare.set_pictures(rec.uid, rec)
        elif isinstance(rec, AiView):
            self.queue.item(row).ai = rec
            if rec.reposts:
                self.compare.reposts_pending = False
            self.compare.set_ai(rec.uid, rec)
            self.ai_ready.emit(rec.uid, rec.reposts)
            self.analysis_ready.emit(row)

    def _on_analysis_error(self, uid: int, exc: BaseException) -> None:
        if self.compare.current_uid == uid:
            self.compare.scores.show_scores(None, note=f"Could not compare: {exc}")

    def _on_analysis_finished(self, w: GeneratorWorker) -> None:
        if self.analyser is not w:
            return
        self.analyser, self._analysing = None, None
        uid, self._reposts_after = self._reposts_after, None
        if uid is not None and uid == self.compare.current_uid:
            self.request_reposts(uid)
        elif self.compare.reposts_pending:
            self.compare.reposts_pending = False
            cur = self.compare.current_uid
            row = self.queue.row_of(cur) if cur is not None else -1
            if row >= 0:
                self.compare.set_ai(cur, self.queue.item(row).ai)

    def _keep_pictures(self, row: int) -> None:
        """Keep display pictures for the few photos seen last; the others are read again from
        disk when selected (full-size pictures of every photo would grow without bound)."""
        uid = self.queue.item(row).uid
        self._recent = [u for u in self._recent if u != uid][-(KEEP_PICTURES - 1) :] + [uid]
        for it in self.queue.items:
            if it.pictures is not None and it.uid not in self._recent:
                it.pictures = None

    # Saving

    def save_to(self, row: int, target: str | Path) -> Path:
        """Copy row's protected photo to ``target``; the original is never overwritten."""
        return copy_protected(self.queue.item(row), target)

    def save_all_to(self, folder: str | Path) -> list[Path]:
        """Copy every protected photo into ``folder`` (originals are never overwritten)."""
        return copy_all(self.queue.items, folder)

    def save_dialog(self) -> None:
        row = self.queue_view.current_row()
        if row < 0 or self.queue.item(row).dest is None:
            return
        dest = self.queue.item(row).dest
        path, _ = QFileDialog.getSaveFileName(self, "Save the protected photo", str(dest))
        if path:
            try:
                self.status.setText(f"Saved {self.save_to(row, path)}")
            except (OSError, ValueError) as exc:
                self.show_banner(str(exc), error=True)

    def save_all_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save all protected photos to")
        if folder:
            try:
                self.status.setText(f"Saved {len(self.save_all_to(folder))} photo(s) to {folder}")
            except (OSError, ValueError) as exc:
                self.show_banner(str(exc), error=True)

    def output_folder(self) -> Path | None:
        if self.settings.out_dir is not None:
            return self.settings.out_dir
        for item in self.queue.items:
            if item.dest is not None:
                return item.dest.parent
        return None

    def open_output_folder(self) -> None:
        folder = self.output_folder()
        if folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        for w in (self.worker, self.analyser, self.downloader):
            if w is not None:
                w.quit()
        QThreadPool.globalInstance().waitForDone(30000)
        super().closeEvent(event)
