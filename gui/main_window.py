"""The main window: lays out the queue, settings, compare view and progress, and wires actions.

It owns no protection logic: photos go to :class:`~cloak.gui.state.QueueModel`, settings to
:class:`~cloak.gui.state.SettingsModel`, and every long job to a
:class:`~cloak.gui.worker.Worker` running an engine generator off the UI thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cloak.gui.art import STYLE, app_icon
from cloak.gui.compare_view import MODE_TITLES, MODES, CompareView
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
    BatchDone,
    EncoderLoader,
    EncodersReady,
    ItemDone,
    ItemProgress,
    LoadStatus,
    ModelLoader,
    Worker,
    analyse_task,
    protect_task,
)
from cloak.photo_io import SUPPORTED_SUFFIXES

QUEUED = Qt.ConnectionType.QueuedConnection
"""Worker signals always reach the window on the UI thread."""


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left..."
    s = int(seconds + 0.5)
    return f"about {s // 60} min {s % 60:02d} s left" if s >= 60 else f"about {s} s left"


class MainWindow(QMainWindow):
    """Cloak's window.

    Args:
        settings: Where settings persist (default ``QSettings("Cloak", "Cloak")``).
        encoder_loader: ``loader(names) -> (encoders, missing)``; tests inject tiny encoders.
        models_dir: Weights folder for the default loader.
        offline: Never download weights (default loader).
    """

    run_finished = Signal()
    analysis_ready = Signal(int)

    def __init__(
        self,
        settings: QSettings | None = None,
        encoder_loader: EncoderLoader | None = None,
        models_dir: str | Path | None = None,
        offline: bool | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("Cloak: protect your photos from AI editing")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setStyleSheet(STYLE)
        self.queue = QueueModel(self)
        self.settings = SettingsModel(settings, self)
        self.loader: EncoderLoader = encoder_loader or ModelLoader(models_dir, offline)
        self.worker: Worker | None = None
        self.analyser: Worker | None = None
        self._old: list[Worker] = []
        self._encoders: list[Any] | None = None
        self._encoders_key: tuple[str, ...] = ()
        self._pending_analysis: int | None = None
        self.attacker_long_side: int | None = None  # None: the metrics' default (768 px)
        self._build()
        self._actions()
        self._set_busy(False)

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

    # Protecting

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.running

    def protect(self) -> Worker | None:
        """Protect the queued photos that are not done yet (all of them if every one is)."""
        if self.busy:
            return None
        rows = self.queue.rows_to_protect()
        todo = [r for r in rows if self.queue.item(r).status != DONE] or rows
        if not todo:
            self.status.setText("Open photos first (Ctrl+O), or drop them on the window.")
            return None
        self.banner.hide()
        for r in todo:
            self.queue.update(r, status=WAITING, progress=0.0, message="", analysis=None)
        config = self.settings.config
        cached = self._encoders if self._encoders_key == config.encoders else None
        task = protect_task(
            todo,
            [self.queue.item(r).source for r in todo],
            config,
            self.settings.out_dir,
            self.loader,
            cached,
        )
        w = Worker(task)
        w.yielded.connect(self._on_progress, QUEUED)
        w.returned.connect(self._on_returned, QUEUED)
        w.errored.connect(self._on_error, QUEUED)
        w.finished.connect(self._on_finished, QUEUED)
        self.worker = w
        self._set_busy(True)
        self.progress.setValue(0)
        self.status.setText("Starting...")
        w.start()
        return w

    def cancel(self) -> None:
        """Stop at the next step; nothing half-written is kept."""
        if self.busy and self.worker is not None:
            self.worker.cancel()
            self.status.setText("Cancelling...")

    @Slot(object)
    def _on_progress(self, rec: object) -> None:
        if isinstance(rec, EncodersReady):
            self._encoders = rec.encoders
            self._encoders_key = self.settings.config.encoders
        elif isinstance(rec, LoadStatus):
            self.status.setText(rec.message)
            if rec.total:
                self.progress.setRange(0, rec.total)
                self.progress.setValue(rec.done)
            else:
                self.progress.setRange(0, 0)
        elif isinstance(rec, ItemProgress):
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(rec.overall * 1000))
            self.queue.update(rec.row, status=PROTECTING, progress=rec.fraction)
            name = self.queue.item(rec.row).source.name
            self.status.setText(
                f"Protecting {name}: {round(rec.fraction * 100)}%, overall "
                f"{round(rec.overall * 100)}%, {_fmt_eta(rec.eta_s)}"
            )
        elif isinstance(rec, ItemDone):
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(rec.overall * 1000))
            res = rec.result
            if res.status == "failed":
                msg = res.message
                prefix = f"{self.queue.item(rec.row).source}: "
                msg = msg[len(prefix) :] if msg.startswith(prefix) else msg
                self.queue.update(rec.row, status=FAILED, progress=0.0, message=msg, result=res)
            else:
                # Notes such as "animated GIF: only the first frame is protected" stay visible.
                note = "kept the earlier copy" if res.status == "skipped" else res.message
                self.queue.update(rec.row, status=DONE, progress=1.0, message=note, result=res)
                if rec.row == self.queue_view.current_row():
                    self.request_analysis(rec.row)

    @Slot(object)
    def _on_returned(self, done: BatchDone) -> None:
        self._encoders = done.encoders
        self._encoders_key = self.settings.config.encoders
        for i, item in enumerate(self.queue.items):
            if item.status == PROTECTING:
                self.queue.update(i, status=WAITING, progress=0.0, message="cancelled")
        if done.missing:
            lines = "\n".join(f"{n}: {r}" for n, r in done.missing.items())
            self.show_banner(f"Some encoders could not be loaded and were left out:\n{lines}")
        ok = sum(r.status == "protected" for r in done.results)
        failed = sum(r.status == "failed" for r in done.results)
        if done.cancelled:
            self.status.setText(f"Cancelled. {ok} protected; nothing half-written was kept.")
        else:
            extra = f", {failed} failed (see the queue)" if failed else ""
            self.status.setText(f"Done: {ok} protected{extra}.")
            self.progress.setValue(self.progress.maximum())

    @Slot(object)
    def _on_error(self, exc: BaseException) -> None:
        for i, item in enumerate(self.queue.items):
            if item.status in (PROTECTING, WAITING):
                self.queue.update(i, status=WAITING, progress=0.0)
        self.show_banner(str(exc) or type(exc).__name__, error=True)
        self.status.setText("Stopped: see the message above.")

    @Slot()
    def _on_finished(self) -> None:
        self._retire(self.worker)
        self.progress.setRange(0, 1000)
        self._set_busy(False)
        self.run_finished.emit()
        row = self.queue_view.current_row()
        if row >= 0 and self.queue.item(row).status == DONE:
            self.request_analysis(row)

    def _retire(self, w: Worker | None) -> None:
        # Keep finished workers referenced until their threads have really ended.
        self._old = [o for o in self._old if not o.wait(0)]
        if w is not None:
            self._old.append(w)

    def show_banner(self, text: str, error: bool = False) -> None:
        self.banner.setProperty("level", "error" if error else "warning")
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.banner_text.setText(text)
        self.banner.show()

    def _set_busy(self, busy: bool) -> None:
        for w in (self.protect_button, self.protect_action, self.settings_panel, self.open_action):
            w.setEnabled(not busy)
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
        row = current.row() if current.isValid() else -1
        if row >= 0 and self.queue.item(row).status == DONE:
            self.request_analysis(row)
        else:
            self.compare.set_analysis(None)

    def _item_changed(self, row: int) -> None:
        if row == self.queue_view.current_row():
            self._update_buttons()

    def request_analysis(self, row: int) -> None:
        """Show the compare view of ``row``, computing it in a worker the first time."""
        item = self.queue.item(row)
        if item.analysis is not None:
            self.compare.set_analysis(item.analysis)
            self.analysis_ready.emit(row)
            return
        if item.dest is None or not item.dest.is_file() or self._encoders is None:
            return
        if self.analyser is not None and self.analyser.running:
            self._pending_analysis = row
            return
        self._pending_analysis = None
        self.compare.set_busy("Computing the AI view and the scores...")
        w = Worker(
            analyse_task(row, item.source, item.dest, self._encoders, self.attacker_long_side)
        )
        w.returned.connect(self._on_analysis, QUEUED)
        w.errored.connect(self._on_analysis_error, QUEUED)
        w.finished.connect(self._on_analysis_finished, QUEUED)
        self.analyser = w
        w.start()

    @Slot(object)
    def _on_analysis(self, value: tuple[int, Any]) -> None:
        row, analysis = value
        if row < self.queue.rowCount():
            self.queue.item(row).analysis = analysis
            if row == self.queue_view.current_row():
                self.compare.set_analysis(analysis)
            self.analysis_ready.emit(row)

    @Slot(object)
    def _on_analysis_error(self, exc: BaseException) -> None:
        self.compare.set_busy(f"Could not compare: {exc}")

    @Slot()
    def _on_analysis_finished(self) -> None:
        self._retire(self.analyser)
        pending, self._pending_analysis = self._pending_analysis, None
        if pending is not None:
            self.request_analysis(pending)

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
        for w in (self.worker, self.analyser):
            if w is not None and w.running:
                w.cancel()
                w.wait(30000)
        super().closeEvent(event)
