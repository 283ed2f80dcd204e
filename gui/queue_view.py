"""The queue: each photo's thumbnail, name, status and a thin progress bar."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from cloak.gui.state import DONE, FAILED, PROTECTING, THUMB_SIZE, QueueModel

ROW_HEIGHT = THUMB_SIZE + 12
STATUS_COLOURS = {
    DONE: "#2b8a3e",
    FAILED: "#c92a2a",
    PROTECTING: "#1c7ed6",
}


def thumbnail_pixmap(img: QImage, size: int, dpr: float) -> QPixmap:
    """A crisp square-fitted thumbnail for a screen with device pixel ratio ``dpr``."""
    px = max(1, round(size * dpr))
    pm = QPixmap.fromImage(
        img.scaled(
            px,
            px,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    )
    pm.setDevicePixelRatio(dpr)
    return pm


class QueueDelegate(QStyledItemDelegate):
    """Paints one queue row; thumbnails are cached per item and screen ratio."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._cache: dict[tuple[int, float], QPixmap] = {}

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        return QSize(220, ROW_HEIGHT)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        item = index.data(QueueModel.ItemRole)
        if item is None:
            return
        p.save()
        r: QRect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.fillRect(r, QColor("#dbe4ff") if selected else QColor("white"))
        p.setPen(QColor("#e9ecef"))
        p.drawLine(r.bottomLeft(), r.bottomRight())
        thumb_box = QRect(r.left() + 6, r.top() + 6, THUMB_SIZE, THUMB_SIZE)
        p.fillRect(thumb_box, QColor("#f1f3f5"))
        if item.thumbnail is not None:
            dpr = p.device().devicePixelRatioF() if p.device() else 1.0
            key = (id(item.thumbnail), dpr)
            pm = self._cache.get(key)
            if pm is None:
                pm = thumbnail_pixmap(item.thumbnail, THUMB_SIZE, dpr)
                self._cache[key] = pm
            w, h = pm.width() / dpr, pm.height() / dpr
            p.drawPixmap(
                int(thumb_box.left() + (THUMB_SIZE - w) / 2),
                int(thumb_box.top() + (THUMB_SIZE - h) / 2),
                pm,
            )
        text_left = thumb_box.right() + 10
        text_w = r.right() - text_left - 6
        f = p.font()
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor("#212529"))
        fm = p.fontMetrics()
        name = fm.elidedText(item.source.name, Qt.TextElideMode.ElideMiddle, text_w)
        p.drawText(QRect(text_left, r.top() + 6, text_w, fm.height()), 0, name)
        f.setBold(False)
        p.setFont(f)
        p.setPen(QColor(STATUS_COLOURS.get(item.status, "#495057")))
        fm = p.fontMetrics()
        status = fm.elidedText(item.status_text(), Qt.TextElideMode.ElideRight, text_w * 2 - 20)
        p.drawText(
            QRect(text_left, r.top() + 8 + fm.height(), text_w, fm.height() * 2),
            int(Qt.TextFlag.TextWordWrap),
            status,
        )
        if item.status == PROTECTING:
            bar = QRect(text_left, r.bottom() - 8, text_w, 4)
            p.fillRect(bar, QColor("#e9ecef"))
            p.fillRect(
                QRect(bar.left(), bar.top(), int(bar.width() * item.progress), bar.height()),
                QColor("#1c7ed6"),
            )
        p.restore()


class QueueView(QListView):
    """The list of queued photos."""

    def __init__(self, model: QueueModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queue")
        self.setModel(model)
        self.setItemDelegate(QueueDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        self.setMinimumWidth(250)
        self.setAcceptDrops(False)  # drops are handled by the window

    def selected_rows(self) -> list[int]:
        return sorted(i.row() for i in self.selectionModel().selectedIndexes())

    def current_row(self) -> int:
        idx: Any = self.currentIndex()
        return idx.row() if idx.isValid() else -1
