"""The compare view: split slider, side by side, difference heatmap and the AI view.

The canvases and their shared zoom/pan state live in :mod:`cloak.gui.canvas`, the scores beside
them in :mod:`cloak.gui.scores_panel`; this module picks what each canvas shows, for one photo
at a time.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cloak.gui.canvas import Canvas, ViewState, to_pixmap
from cloak.gui.scores_panel import ScoresPanel

MODES = ("split", "side", "diff", "ai")
MODE_TITLES = {"split": "Split", "side": "Side by side", "diff": "Difference", "ai": "AI view"}
PREVIEW_LONG_SIDE = 1600
"""A photo not protected yet is previewed at most this large."""


class CompareView(QWidget):
    """Mode buttons, the canvases of each mode and the scores beside them.

    It shows one photo at a time, named by its queue item's ``uid``: pictures and scores for
    any other uid are refused, so a late result never lands on the wrong photo.
    """

    mode_changed = Signal(str)
    reposts_requested = Signal(int)
    """The person asked for the platform re-post scores of the photo shown (its uid)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ViewState(self)
        self.reposts_pending = False
        self.ai_waits = False
        """The AI view waits for the protect run to end (it is not being measured yet)."""
        self._mode = "split"
        self._uid: int | None = None
        self._name = ""
        self._has_pictures = False
        self._result: Any = None
        self._attacked: tuple[str, ...] = ()
        self._ai: Any = None
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        self._buttons = QButtonGroup(self)
        self._buttons.setExclusive(True)
        for i, mode in enumerate(MODES):
            b = QPushButton(f"{MODE_TITLES[mode]}  ({i + 1})")
            b.setCheckable(True)
            b.setProperty("mode", True)
            b.setObjectName(f"mode-{mode}")
            b.setToolTip(f"Show the {MODE_TITLES[mode].lower()} view (key {i + 1})")
            self._buttons.addButton(b, i)
            bar.addWidget(b)
        bar.addStretch(1)
        self.zoom_label = QLabel("Fit")
        bar.addWidget(self.zoom_label)
        self._buttons.idClicked.connect(lambda i: self.set_mode(MODES[i]))

        self.split_canvas = Canvas(self.state, split=True)
        self.side_left, self.side_right = Canvas(self.state), Canvas(self.state)
        self.diff_canvas = Canvas(self.state)
        self.ai_left, self.ai_right = Canvas(self.state), Canvas(self.state)
        self._stack = QStackedWidget()
        self._stack.addWidget(self.split_canvas)
        self._stack.addWidget(_pair(self.side_left, self.side_right))
        self._stack.addWidget(self.diff_canvas)
        self._stack.addWidget(_pair(self.ai_left, self.ai_right))
        self.empty = EmptyState()
        self._stack.addWidget(self.empty)
        self.loading = QLabel()
        self.loading.setObjectName("empty-text")
        self.loading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.loading.setWordWrap(True)
        self._stack.addWidget(self.loading)
        self.preview_canvas = Canvas(self.state)
        self._stack.addWidget(self.preview_canvas)
        self.scores = ScoresPanel()
        self.scores.linkActivated.connect(self._link)

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self._stack, 1)
        body.addWidget(self.scores)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(bar)
        outer.addLayout(body, 1)
        self.state.view_changed.connect(self._show_zoom)
        self.set_mode("split")
        self.clear()

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def shown_uid(self) -> int | None:
        """The queue item whose pictures are on screen (None: none)."""
        return self._uid if self._has_pictures else None

    @property
    def current_uid(self) -> int | None:
        """The queue item this view is about (its pictures may still be loading)."""
        return self._uid

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown compare mode {mode!r}: use one of {', '.join(MODES)}")
        self._mode = mode
        self._buttons.button(MODES.index(mode)).setChecked(True)
        if self._has_pictures:
            self._stack.setCurrentIndex(MODES.index(mode))
        self.mode_changed.emit(mode)

    def clear(self) -> None:
        """The empty state: no photo."""
        self._uid, self._has_pictures, self._result = None, False, None
        for c in self._canvases():
            c.set_pictures(None)
        self._stack.setCurrentWidget(self.empty)
        self.scores.show_scores(None)

    def show_photo(
        self,
        uid: int,
        name: str,
        result: Any,
        pictures: Any = None,
        ai: Any = None,
        attacked: tuple[str, ...] = (),
    ) -> None:
        """Show queue item ``uid``: its pictures now if given, else a loading note for it."""
        if uid != self._uid:
            self._uid, self._has_pictures = uid, False
            self.reposts_pending = False
            for c in self._canvases():
                c.set_pictures(None)
        self._name, self._result, self._attacked = name, result, attacked
        if pictures is not None:
            self.set_pictures(uid, pictures)
        elif not self._has_pictures:
            self.loading.setText(f"Loading {name}\u2026")
            self._stack.setCurrentWidget(self.loading)
        self.set_ai(uid, ai)

    def show_failed(self, uid: int, name: str, reason: str) -> None:
        """A photo that could not be protected: why, and how to run it again."""
        self._uid, self._has_pictures, self._result = uid, False, None
        for c in self._canvases():
            c.set_pictures(None)
        self.loading.setText(f"{name} could not be protected:\n{reason}")
        self._stack.setCurrentWidget(self.loading)
        self.scores.show_scores(
            None, note=f"{name} failed. Protect > Retry failed runs it again once fixed."
        )

    def show_original(self, uid: int, path: Any) -> None:
        """A photo not protected yet: its original alone (read scaled down, which is cheap)."""
        from cloak.gui.worker import read_scaled_image

        if self._uid == uid and not self._has_pictures and self.preview_canvas._left is not None:
            return  # already shown (a re-read would block the window for nothing)
        self._uid, self._has_pictures, self._result = uid, False, None
        img, _ = read_scaled_image(path, PREVIEW_LONG_SIDE)
        for c in self._canvases():
            c.set_pictures(None)
        if img.isNull():
            self.loading.setText(f"{path.name}: not protected yet (no preview)")
            self._stack.setCurrentWidget(self.loading)
        else:
            self.preview_canvas.set_pictures(
                QPixmap.fromImage(img), labels=("Original: not protected yet", "")
            )
            self._stack.setCurrentWidget(self.preview_canvas)
        self.scores.show_scores(None, note=f"{path.name} is not protected yet. Press Protect.")

    def set_pictures(self, uid: int, pictures: Any) -> bool:
        """Show :class:`~cloak.gui.worker.Pictures` of ``uid``; False if another is shown."""
        if uid != self._uid:
            return False
        orig, prot = to_pixmap(pictures.original), to_pixmap(pictures.protected)
        self.split_canvas.set_pictures(orig, prot, ("Original", "Protected"))
        self.side_left.set_pictures(orig, labels=("Original", ""))
        self.side_right.set_pictures(prot, labels=("Protected", ""))
        if pictures.heat is not None:
            self.diff_canvas.set_pictures(to_pixmap(pictures.heat), labels=("Change x10", ""))
        else:
            self.diff_canvas.set_pictures(prot, labels=("Change x10: comes with the AI view", ""))
        if self.ai_left._left is None:
            wait = "AI view: when the run ends" if self.ai_waits else "AI view: measuring\u2026"
            self.ai_left.set_pictures(orig, labels=(wait, ""))
            self.ai_right.set_pictures(prot, labels=(wait, ""))
        self._has_pictures = True
        self._stack.setCurrentIndex(MODES.index(self._mode))
        return True

    def set_ai(self, uid: int, ai: Any) -> bool:
        """Show the AI view and scores of ``uid`` (None: still measuring)."""
        if uid != self._uid:
            return False
        if ai is not None and ai.original is not None:
            enc = ai.encoder
            self.ai_left.set_pictures(
                to_pixmap(ai.original), labels=(f"AI view of original ({enc})", "")
            )
            self.ai_right.set_pictures(
                to_pixmap(ai.protected), labels=(f"AI view of protected ({enc})", "")
            )
        elif ai is not None:
            none = "No encoder with a decoder"
            self.ai_left.set_pictures(self.side_left._left, labels=(none, ""))
            self.ai_right.set_pictures(self.side_right._left, labels=(none, ""))
        self._ai = ai
        self.scores.show_scores(
            self._result, ai, self._attacked, "", self.reposts_pending, self.ai_waits
        )
        return True

    def _link(self, href: str) -> None:
        if href == "reposts" and self._uid is not None:
            self.reposts_requested.emit(self._uid)

    def _canvases(self) -> list[Canvas]:
        return [
            self.split_canvas,
            self.side_left,
            self.side_right,
            self.diff_canvas,
            self.ai_left,
            self.ai_right,
            self.preview_canvas,
        ]

    def _show_zoom(self) -> None:
        z = self.state.zoom
        self.zoom_label.setText("Fit" if z == 1.0 else f"{z:.2f}x fit")


class EmptyState(QWidget):
    """What the compare view shows before a photo is protected."""

    TEXT = (
        "Open photos (Ctrl+O) or drop photos or folders here, then press Protect "
        "(Ctrl+Return).\nSelect a protected photo to compare it with the original."
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("empty")
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel(self.TEXT)
        self.text.setObjectName("empty-text")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(self.picture)
        lay.addWidget(self.text)
        lay.addStretch(1)

    def showEvent(self, event: Any) -> None:  # noqa: N802
        from PySide6.QtCore import QSize

        from cloak.gui.art import EMPTY_SVG, render_svg

        # Rendered for this screen's pixel ratio, so it stays sharp on high-DPI displays.
        self.picture.setPixmap(render_svg(EMPTY_SVG, QSize(240, 165), self.devicePixelRatioF()))
        super().showEvent(event)


def _pair(a: QWidget, b: QWidget) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(4)
    lay.addWidget(a)
    lay.addWidget(b)
    return w
