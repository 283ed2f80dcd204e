"""The app's art: icons rendered from the hand-drawn SVGs in ``assets/``, crisp on high-DPI."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap

ICON_SVG = "cloak-icon.svg"
ICON_PNG = "cloak-icon-256.png"
EMPTY_SVG = "empty-state.svg"

STYLE = """
QMainWindow { background: #f8f9fa; }
QPushButton#protect { background: #3b5bdb; color: white; font-weight: bold;
                      padding: 6px 18px; border-radius: 5px; }
QPushButton#protect:disabled { background: #a5b4fc; }
QFrame#banner { background: #fff3bf; border: 1px solid #f59f00; border-radius: 5px; }
QFrame#banner[level="error"] { background: #ffe3e3; border-color: #e03131; }
QLabel#preset-note { color: #495057; }
QLabel#empty-text { color: #495057; font-size: 15px; }
QPushButton[mode="true"] { padding: 4px 10px; border: 1px solid #adb5bd; border-radius: 4px;
                          background: white; }
QPushButton[mode="true"]:checked { background: #3b5bdb; color: white; border-color: #3b5bdb; }
QLabel#scores { background: white; border: 1px solid #dee2e6; border-radius: 5px; padding: 6px; }
"""


def asset(name: str) -> Path:
    """Path of a file in ``cloak.gui``'s assets."""
    return Path(str(resources.files("cloak.gui").joinpath("assets", name)))


def render_svg(name: str, size: QSize, dpr: float = 1.0) -> QPixmap:
    """An SVG asset rendered at ``size`` logical pixels for a screen of ratio ``dpr``."""
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(asset(name)))
    px = QSize(max(1, round(size.width() * dpr)), max(1, round(size.height() * dpr)))
    img = QImage(px, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(p, QRectF(0, 0, px.width(), px.height()))
    p.end()
    pm = QPixmap.fromImage(img)
    pm.setDevicePixelRatio(dpr)
    return pm


def app_icon() -> QIcon:
    """The window icon at several sizes (falls back to the 256 px PNG)."""
    icon = QIcon()
    try:
        for s in (16, 24, 32, 48, 64, 128, 256):
            icon.addPixmap(render_svg(ICON_SVG, QSize(s, s)))
    except ImportError:
        icon = QIcon(str(asset(ICON_PNG)))
    return icon


def write_icon_png(dest: Path, size: int = 256) -> Path:
    """Render the app icon to a PNG (how ``assets/cloak-icon-256.png`` was made)."""
    render_svg(ICON_SVG, QSize(size, size)).toImage().save(str(dest))
    return dest
