"""One calm line about the encoders: what the app uses, and a Download button for the rest.

Shown from launch and kept until every chosen encoder is on this computer. Folder paths and
error details appear only when the person asks for them (Details).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout


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
