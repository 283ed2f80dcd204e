"""The compare view: split slider, side by side, difference heatmap and the AI view.

Every canvas shares one :class:`ViewState` (zoom relative to "fit", centre in image fractions),
so zoom and pan stay in sync across views even when their pictures differ in resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cloak.verdict import LEVELS, level_of, verdict

MODES = ("split", "side", "diff", "ai")
MODE_TITLES = {"split": "Split", "side": "Side by side", "diff": "Difference", "ai": "AI view"}
ZOOM_STEP = 1.25
ZOOM_RANGE = (1.0, 32.0)
PREVIEW_LONG_SIDE = 1600
"""A photo not protected yet is previewed at most this large."""


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    """(H, W, 3) uint8, or floats in [0, 1] -> QPixmap (device pixels; the canvas handles the
    ratio)."""
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    arr = np.ascontiguousarray(rgb)
    h, w = arr.shape[:2]
    img = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img)


class ViewState(QObject):
    """Zoom (1 = fit) and centre (fractions of the picture) shared by every canvas."""

    view_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.zoom = 1.0
        self.center = QPointF(0.5, 0.5)
        self.split = 0.5

    def set_zoom(self, zoom: float) -> None:
        zoom = min(max(zoom, ZOOM_RANGE[0]), ZOOM_RANGE[1])
        if zoom != self.zoom:
            self.zoom = zoom
            if zoom == 1.0:
                self.center = QPointF(0.5, 0.5)
            self.view_changed.emit()

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def reset(self) -> None:
        self.zoom = 1.0
        self.center = QPointF(0.5, 0.5)
        self.view_changed.emit()

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the centre by fractions of the picture (clamped to stay on it)."""
        cx = min(max(self.center.x() + dx, 0.0), 1.0)
        cy = min(max(self.center.y() + dy, 0.0), 1.0)
        self.center = QPointF(cx, cy)
        self.view_changed.emit()

    def set_split(self, frac: float) -> None:
        self.split = min(max(frac, 0.0), 1.0)
        self.view_changed.emit()


class Canvas(QWidget):
    """Draws one picture, or two split by a draggable divider, through the shared view."""

    def __init__(self, state: ViewState, split: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self._state = state
        self._split = split
        self._left: QPixmap | None = None
        self._right: QPixmap | None = None
        self._labels = ("", "")
        self._drag: str | None = None
        self._last = QPointF()
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        state.view_changed.connect(self.update)

    def set_pictures(
        self, left: QPixmap | None, right: QPixmap | None = None, labels: tuple[str, str] = ("", "")
    ) -> None:
        self._left, self._right, self._labels = left, right, labels
        self.update()

    def _rect(self) -> QRectF:
        """Where the picture lands, in widget (device-independent) coordinates."""
        pm = self._left
        if pm is None or pm.width() == 0:
            return QRectF()
        w, h = self.width() - 8, self.height() - 8
        fit = min(w / pm.width(), h / pm.height())
        scale = fit * self._state.zoom
        pw, ph = pm.width() * scale, pm.height() * scale
        c = self._state.center
        x = self.width() / 2 - c.x() * pw
        y = self.height() / 2 - c.y() * ph
        if pw <= w:
            x = (self.width() - pw) / 2
        if ph <= h:
            y = (self.height() - ph) / 2
        return QRectF(x, y, pw, ph)

    def _divider_x(self) -> float:
        r = self._rect()
        return r.left() + r.width() * self._state.split

    def paintEvent(self, event: Any) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1f2430"))
        if self._left is None:
            p.end()
            return
        r = self._rect()
        zoomed = self._state.zoom * min(
            (self.width() - 8) / self._left.width(), (self.height() - 8) / self._left.height()
        )
        smooth = zoomed * self.devicePixelRatioF() < 2.0
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        p.drawPixmap(r, self._left, QRectF(self._left.rect()))
        if self._split and self._right is not None:
            dx = self._divider_x()
            p.save()
            p.setClipRect(QRectF(dx, 0, self.width() - dx, self.height()))
            p.drawPixmap(r, self._right, QRectF(self._right.rect()))
            p.restore()
            p.setPen(QPen(QColor("white"), 2))
            p.drawLine(QPointF(dx, 0), QPointF(dx, self.height()))
            p.setBrush(QColor("white"))
            p.drawEllipse(QPointF(dx, self.height() / 2), 9, 9)
            p.setPen(QPen(QColor("#1f2430"), 2))
            mid = self.height() / 2
            p.drawLine(QPointF(dx - 4, mid), QPointF(dx - 1, mid - 3))
            p.drawLine(QPointF(dx - 4, mid), QPointF(dx - 1, mid + 3))
            p.drawLine(QPointF(dx + 4, mid), QPointF(dx + 1, mid - 3))
            p.drawLine(QPointF(dx + 4, mid), QPointF(dx + 1, mid + 3))
        self._draw_label(p, self._labels[0], left=True)
        if self._split and self._labels[1]:
            self._draw_label(p, self._labels[1], left=False)
        p.end()

    def _draw_label(self, p: QPainter, text: str, left: bool) -> None:
        if not text:
            return
        f = QFont(self.font())
        f.setBold(True)
        p.setFont(f)
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 16, fm.height() + 8
        x = 8 if left else self.width() - w - 8
        box = QRectF(x, 8, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 160))
        p.drawRoundedRect(box, 6, 6)
        p.setPen(QColor("white"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if self._split and abs(pos.x() - self._divider_x()) < 12:
            self._drag = "split"
        else:
            self._drag = "pan"
        self._last = pos

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if self._drag is None:
            near = self._split and abs(pos.x() - self._divider_x()) < 12
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)
            return
        r = self._rect()
        if self._drag == "split" and r.width() > 0:
            self._state.set_split((pos.x() - r.left()) / r.width())
        elif r.width() > 0:
            d = pos - self._last
            self._state.pan_by(-d.x() / r.width(), -d.y() / r.height())
        self._last = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._drag = None

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        if event.angleDelta().y() > 0:
            self._state.zoom_in()
        elif event.angleDelta().y() < 0:
            self._state.zoom_out()


LEVEL_COLOURS = {
    LEVELS[2]: "#2b8a3e",  # visibly broken: the protection works
    LEVELS[1]: "#b35c00",  # degraded
    LEVELS[0]: "#c92a2a",  # barely changed: not protected
}
MEASURING = "<i style='color:#777'>measuring\u2026</i>"


def _where(scenario: str) -> str:
    return "as is" if scenario == "direct" else "re-post " + scenario.replace("/q", " px, q")


class ScoresPanel(QLabel):
    """How the protected photo looks, what an AI editor gets, and the verdict.

    The look figures of the saved file come with the result at once; the AI scores fill in
    as they are measured, each marked "measuring..." until then. The verdict's words come from
    :func:`cloak.verdict.verdict`, nothing here judges on its own.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scores")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setMinimumWidth(250)
        self.setMaximumWidth(300)
        self.setOpenExternalLinks(False)
        self.show_scores(None)

    def show_scores(
        self,
        result: Any,
        ai: Any = None,
        attacked: tuple[str, ...] = (),
        note: str = "",
        reposts_pending: bool = False,
        ai_waits: bool = False,
    ) -> None:
        """Show ``result`` (a :class:`~cloak.jobs.PhotoResult`) and ``ai`` (an
        :class:`~cloak.gui.worker.AiView`, or None while it is measured)."""
        if result is None:
            self.setText(f"<h3>Scores</h3><p>{note or 'Protect a photo to see its scores.'}</p>")
            return
        report = ai.report if ai is not None else None

        def num(value: Any, fmt: str) -> str:
            return MEASURING if value is None else f"<b>{value:{fmt}}</b>"

        rows = [
            "<h3>How it looks (saved file)</h3>",
            "<table cellspacing='0' cellpadding='3'>",
            f"<tr><td>PSNR</td><td align='right'>{num(result.psnr, '.1f')} dB</td></tr>",
            f"<tr><td>Largest change</td><td align='right'>{num(result.linf_255, '.0f')}/255"
            "</td></tr></table>",
            "<h3>What an AI editor gets</h3>",
        ]
        if report is None:
            wait = "measured when the run ends" if ai_waits else MEASURING
            rows.append(f"<p>AI view and edit damage: {wait}</p>")
            self.setText("".join(rows))
            return
        rows += [
            "<p style='color:#555'>Edit damage in dB (higher = AI edits come out more wrong), "
            f"at the attacker's size of {', '.join(f'{s} px' for s in report.sizes)}.</p>",
            "<table cellspacing='0' cellpadding='3'>",
            "<tr><th align='left'>Encoder</th><th align='left'>Posted</th>"
            "<th align='right'>Damage</th></tr>",
        ]
        for s in report.scores:
            if s.damage_db is None:
                cell = f"shift x{s.latent_shift:.1f}"
                colour = "#555"
            else:
                cell = f"{s.damage_db:+.1f} dB"
                colour = LEVEL_COLOURS[level_of(s.damage_db)]
            rows.append(
                f"<tr><td>{s.encoder}</td><td>{_where(s.scenario)}</td>"
                f"<td align='right' style='color:{colour}'><b>{cell}</b></td></tr>"
            )
        if not ai.reposts and reposts_pending:
            rows.append(f"<tr><td colspan='3'>Platform re-posts: {MEASURING}</td></tr>")
        elif not ai.reposts:
            rows.append(
                "<tr><td colspan='3'><a href='reposts'>Measure after platform re-posts</a> "
                "(1080 px and 720 px JPEG; about twice this measurement's time)</td></tr>"
            )
        rows.append("</table>")
        v = verdict(report, attacked=attacked or None)
        colour = LEVEL_COLOURS.get(v.level, "#555")
        rows.append(f"<p style='color:{colour}'><b>{v.sentence}</b></p>")
        if v.worst_db is not None:
            so_far = "" if ai.reposts else " (platform re-posts not measured)"
            rows.append(f"<p>Weakest case: {v.worst_case}, {v.worst_db:+.1f} dB{so_far}.</p>")
        if v.measured:
            rows.append(f"<p>Measured on: {', '.join(v.measured)}.</p>")
        if v.held_out:
            held = ", ".join(f"{n} (latent shift x{shift:.1f})" for n, shift in v.held_out)
            rows.append(f"<p>Not attacked, measured only: {held}.</p>")
        self.setText("".join(rows))


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
        from PySide6.QtGui import QImageReader

        if self._uid == uid and not self._has_pictures and self.preview_canvas._left is not None:
            return  # already shown (a re-read would block the window for nothing)
        self._uid, self._has_pictures, self._result = uid, False, None
        reader = QImageReader(str(path))
        reader.setAutoTransform(True)
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > PREVIEW_LONG_SIDE:
            reader.setScaledSize(size * (PREVIEW_LONG_SIDE / max(size.width(), size.height())))
        img = reader.read()
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
