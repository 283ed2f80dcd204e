"""The canvases of the compare view and the zoom/pan state they share.

Every canvas shares one :class:`ViewState` (zoom relative to "fit", centre in image fractions),
so zoom and pan stay in sync across views even when their pictures differ in resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

ZOOM_STEP = 1.25
ZOOM_RANGE = (1.0, 32.0)


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
