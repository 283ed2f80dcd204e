"""Opening and saving: the file dialogs, drag and drop, and copies of protected photos.

A mix-in of :class:`~cloak.gui.main_window.MainWindow`: it works on the window's queue,
settings, status line and banner, and never touches a photo's original.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog

from cloak.gui.state import copy_all, copy_protected
from cloak.photo_io import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from PySide6.QtWidgets import QLabel

    from cloak.gui.queue_view import QueueView
    from cloak.gui.state import QueueModel, SettingsModel


class FileActions:
    """Open photos (dialog, folder, drop) and save protected copies (dialog, all, folder)."""

    # The window this is mixed into provides these.
    queue: QueueModel
    settings: SettingsModel
    queue_view: QueueView
    status: QLabel

    def show_banner(self, text: str, error: bool = False) -> None:
        raise NotImplementedError  # the window's

    def add_paths(self, paths: Sequence[str | Path]) -> int:
        """Queue ``paths`` (photos or folders); select the first photo if none is selected."""
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
