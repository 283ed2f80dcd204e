"""One calm line about the encoders: what the app uses, and a Download button for the rest.

Shown from launch and kept until every chosen encoder is on this computer. Folder paths and
error details appear only when the person asks for them (Details).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from cloak.gui.worker import EncoderSource, LoadStatus, make_worker

if TYPE_CHECKING:
    from superqt.utils import GeneratorWorker

    from cloak.gui.settings_panel import SettingsPanel
    from cloak.gui.state import SettingsModel

QUEUED = Qt.ConnectionType.QueuedConnection


class EncoderBar(QFrame):
    """``Using taef2. Not on this computer: taesd.  [Download] [Details]``."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("encoders")
        self.text = QLabel()
        self.text.setObjectName("encoders-text")
        self.download_button = QPushButton("Download")
        self.download_button.setToolTip("Fetch the missing encoder weights (checked on arrival)")
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.hide()
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.text, 1)
        line.addWidget(self.download_button)
        line.addWidget(self.details_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.addLayout(line)
        lay.addWidget(self.details)
        self.details_button.toggled.connect(self.details.setVisible)
        self._missing: list[str] = []
        self.hide()

    @property
    def missing(self) -> list[str]:
        return list(self._missing)

    def set_state(
        self,
        used: Sequence[str],
        missing: Sequence[str],
        details: str = "",
        busy: str = "",
    ) -> None:
        """Say what is used and what is missing; hidden when nothing is missing."""
        self._missing = list(missing)
        if not missing:
            self.hide()
            return
        using = f"Using {', '.join(used)}. " if used else "No encoder is on this computer yet. "
        self.text.setText(busy or f"{using}Not on this computer: {', '.join(missing)}.")
        self.download_button.setEnabled(not busy)
        self.details.setText(details or "No more details.")
        self.details_button.setVisible(bool(details))
        self.show()


class EncoderState(QObject):
    """Which chosen encoders are missing, and their download, mirrored into the bar and the
    Advanced panel.

    Signals:
        downloaded: A download run ended (the window reloads encoders on its next run).
        status: A line for the window's status bar.
    """

    downloaded = Signal()
    status = Signal(str)

    def __init__(
        self,
        source: EncoderSource,
        settings: SettingsModel,
        bar: EncoderBar,
        panel: SettingsPanel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.source, self.settings, self.bar, self.panel = source, settings, bar, panel
        self.details = ""
        """Why encoders were left out (paths and errors), shown only under Details."""
        self.downloader: GeneratorWorker | None = None
        bar.download_button.clicked.connect(self.download_missing)
        settings.config_changed.connect(lambda _c: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        wanted = list(self.settings.config.encoders)
        details = self.details
        try:
            missing = self.source.missing(wanted)
        except Exception as exc:  # noqa: BLE001 - a broken cache folder must not stop the app
            missing, details = wanted, str(exc)
        used = [n for n in wanted if n not in missing]
        self.bar.set_state(used, missing, details)
        self.panel.set_missing(missing)

    def download_missing(self) -> GeneratorWorker | None:
        """Download the chosen encoders that are missing, in a worker."""
        names = self.bar.missing
        if not names or self.downloader is not None:
            return None
        source = self.source

        def task(cancel: Callable[[], bool]) -> Generator[Any, None, dict[str, str]]:
            failed: dict[str, str] = {}
            for i, name in enumerate(names):
                if cancel():
                    break
                yield LoadStatus(f"Downloading {name} ({i + 1} of {len(names)})...", i, len(names))
                try:
                    source.download(name)
                except Exception as exc:  # noqa: BLE001 - shown under Details
                    failed[name] = str(exc)
            return failed

        w = make_worker(task)
        w.yielded.connect(self._on_progress, QUEUED)
        w.returned.connect(self._on_returned, QUEUED)
        w.errored.connect(lambda exc: self._on_returned({"": str(exc)}), QUEUED)
        w.finished.connect(self._on_finished, QUEUED)
        self.downloader = w
        self.bar.download_button.setEnabled(False)
        w.start()
        return w

    def quit(self) -> None:
        if self.downloader is not None:
            self.downloader.quit()

    @Slot(object)
    def _on_progress(self, rec: LoadStatus) -> None:
        used = [n for n in self.settings.config.encoders if n not in self.bar.missing]
        self.bar.set_state(used, self.bar.missing, busy=rec.message)

    @Slot(object)
    def _on_returned(self, failed: dict[str, str]) -> None:
        self.details = "\n".join(f"{n}: {r}" if n else r for n, r in failed.items())
        if failed:
            self.status.emit("A download failed: see Details beside the encoders.")

    @Slot()
    def _on_finished(self) -> None:
        self.downloader = None
        self.refresh()
        self.downloaded.emit()
