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

MODES = ("split", "side", "diff", "ai")
MODE_TITLES = {"split": "Split", "side": "Side by side", "diff": "Difference", "ai": "AI view"}
ZOOM_STEP = 1.25
ZOOM_RANGE = (1.0, 32.0)


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    """(H, W, 3) floats in [0, 1] -> QPixmap (device pixels; the canvas handles the ratio)."""
    arr = np.ascontiguousarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
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


class ScoresPanel(QLabel):
    """PSNR, SSIM and edit damage, direct and after simulated platform re-encodes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scores")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setMinimumWidth(230)
        self.setMaximumWidth(280)
        self.set_report(None)

    def set_report(self, report: Any, busy: str = "") -> None:
        if report is None:
            self.setText(f"<h3>Scores</h3><p>{busy or 'Protect a photo to see its scores.'}</p>")
            return
        rows = [
            "<h3>How it looks</h3>",
            "<table cellspacing='0' cellpadding='3'>",
            f"<tr><td>PSNR</td><td align='right'><b>{report.psnr:.1f} dB</b></td></tr>",
            f"<tr><td>SSIM</td><td align='right'><b>{report.ssim:.3f}</b></td></tr>",
            f"<tr><td>Largest change</td><td align='right'><b>{report.linf_255:.0f}/255</b>"
            "</td></tr></table>",
            "<h3>What an AI editor gets</h3>",
            "<p style='color:#555'>Edit damage in dB (higher = edits come out more wrong), "
            "directly and after a platform re-encode.</p>",
            "<table cellspacing='0' cellpadding='3'>",
            "<tr><th align='left'>Encoder</th><th align='left'>Posted as</th>"
            "<th align='right'>Damage</th></tr>",
        ]
        for s in report.scores:
            dmg = "n/a" if s.damage_db is None else f"{s.damage_db:+.1f} dB"
            colour = "#2b8a3e" if (s.damage_db or 0) >= 3 else "#c92a2a"
            where = (
                "original file" if s.scenario == "direct" else s.scenario.replace("/q", " px, q")
            )
            rows.append(
                f"<tr><td>{s.encoder}</td><td>{where}</td>"
                f"<td align='right' style='color:{colour}'><b>{dmg}</b></td></tr>"
            )
        rows.append("</table>")
        best = [s.damage_db for s in report.scores if s.damage_db is not None]
        if best:
            verdict = (
                "AI edits of this photo come out visibly wrong."
                if min(best) >= 3
                else "The protection is weak for some cases: try the High preset."
            )
            rows.append(f"<p><b>{verdict}</b></p>")
        self.setText("".join(rows))


class CompareView(QWidget):
    """Mode buttons, the canvases of each mode and the scores beside them."""

    mode_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ViewState(self)
        self._mode = "split"
        self._analysis: Any = None
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
        self.scores = ScoresPanel()

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
        self.set_analysis(None)

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def analysis(self) -> Any:
        return self._analysis

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown compare mode {mode!r}: use one of {', '.join(MODES)}")
        self._mode = mode
        self._buttons.button(MODES.index(mode)).setChecked(True)
        if self._analysis is not None:
            self._stack.setCurrentIndex(MODES.index(mode))
        self.mode_changed.emit(mode)

    def set_busy(self, message: str) -> None:
        self.scores.set_report(None, busy=message)

    def set_analysis(self, analysis: Any) -> None:
        """Show an :class:`~cloak.gui.state.Analysis` (None shows the empty state)."""
        self._analysis = analysis
        if analysis is None:
            self._stack.setCurrentWidget(self.empty)
            self.scores.set_report(None)
            return
        orig, prot = to_pixmap(analysis.original), to_pixmap(analysis.protected)
        self.split_canvas.set_pictures(orig, prot, ("Original", "Protected"))
        self.side_left.set_pictures(orig, labels=("Original", ""))
        self.side_right.set_pictures(prot, labels=("Protected", ""))
        self.diff_canvas.set_pictures(to_pixmap(analysis.heat), labels=("Change x10", ""))
        if analysis.ai_original is not None:
            enc = analysis.encoder
            self.ai_left.set_pictures(
                to_pixmap(analysis.ai_original), labels=(f"AI view of original ({enc})", "")
            )
            self.ai_right.set_pictures(
                to_pixmap(analysis.ai_protected), labels=(f"AI view of protected ({enc})", "")
            )
        else:
            none = "No encoder with a decoder"
            self.ai_left.set_pictures(orig, labels=(none, ""))
            self.ai_right.set_pictures(prot, labels=(none, ""))
        self.scores.set_report(analysis.report, busy="Scoring...")
        self._stack.setCurrentIndex(MODES.index(self._mode))

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
